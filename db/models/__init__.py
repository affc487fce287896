"""Tables, one aggregate per module. Importing this package registers every table's metadata."""

from db.models.audit_event import AuditEvent
from db.models.base import Base, metadata
from db.models.one_time_code import OneTimeCode
from db.models.outbox import OutboxMessage
from db.models.refresh_token import RefreshToken
from db.models.user import ROLES, Role, User

__all__ = [
    "ROLES",
    "AuditEvent",
    "Base",
    "OneTimeCode",
    "OutboxMessage",
    "RefreshToken",
    "Role",
    "User",
    "metadata",
]
