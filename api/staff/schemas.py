"""Bodies of the staff endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import msgspec

from api.identity.schemas import User


class RoleChange(msgspec.Struct, forbid_unknown_fields=True):
    role: Literal["client", "vendor", "staff"]


class UserList(msgspec.Struct):
    items: list[User]
    next_cursor: str | None


class AuditEvent(msgspec.Struct):
    id: UUID
    event_type: str
    created_at: datetime
    user_id: UUID | None
    actor_id: UUID | None
    ip: str | None
    user_agent: str | None
    request_id: str | None
    details: dict[str, Any]


class AuditEventList(msgspec.Struct):
    items: list[AuditEvent]
    next_cursor: str | None
