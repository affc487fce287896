"""The security audit log."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.context import get_request_id
from db.models import AuditEvent
from db.pagination import Page, keyset_page


class ClientInfo(msgspec.Struct, frozen=True):
    """Where a request came from (and who sent it, when logged in), for the audit log and limits."""

    ip: str | None = None
    user_agent: str | None = None
    user_id: UUID | None = None

    @property
    def caller(self) -> str | None:
        """Whom a per-caller limit counts against: a logged-in user's account (never the address,
        which thousands may share), else the address; None when neither is known."""
        if self.user_id is not None:
            return f"user:{self.user_id}"
        return f"ip:{self.ip}" if self.ip else None


# Event types (stable strings: dashboards and alerts key on them).
LOGIN_SUCCEEDED = "login_succeeded"
LOGIN_FAILED = "login_failed"
LOGIN_THROTTLED = "login_throttled"
LOGIN_UNVERIFIED = "login_unverified"
REFRESH_REUSED = "refresh_token_reused"
LOGGED_OUT = "logged_out"
SESSION_REVOKED = "session_revoked"
LOGGED_OUT_EVERYWHERE = "logged_out_everywhere"
REGISTERED = "registered"
EMAIL_VERIFIED = "email_verified"
CODE_BURNED = "one_time_code_burned"
PASSWORD_RESET = "password_reset"  # noqa: S105  # an event name
ROLE_CHANGED = "role_changed"
USER_SUSPENDED = "user_suspended"
USER_REINSTATED = "user_reinstated"
LOGIN_SUSPENDED = "login_suspended"
PROFILE_UPDATED = "profile_updated"


class AuditLog:
    def __init__(self, session: AsyncSession, client: ClientInfo | None = None) -> None:
        self.session = session
        self.client = client or ClientInfo()

    def record(
        self, event_type: str, *, user_id: UUID | None = None, actor_id: UUID | None = None, **details: Any
    ) -> AuditEvent:
        event = AuditEvent(
            event_type=event_type,
            user_id=user_id,
            actor_id=actor_id,
            ip=self.client.ip,
            user_agent=(self.client.user_agent or "")[:300] or None,
            request_id=get_request_id(),
            details=msgspec.to_builtins(details),
        )
        self.session.add(event)
        return event

    async def list(
        self,
        *,
        limit: int,
        cursor: str | None,
        user_id: UUID | None = None,
        event_type: str | None = None,
    ) -> Page[AuditEvent]:
        """Newest first, keyset-paginated."""
        stmt = select(AuditEvent)
        if user_id is not None:
            stmt = stmt.where(AuditEvent.user_id == user_id)
        if event_type is not None:
            stmt = stmt.where(AuditEvent.event_type == event_type)
        return await keyset_page(self.session, stmt, AuditEvent.id, limit=limit, cursor=cursor)
