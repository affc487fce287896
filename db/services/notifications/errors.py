"""Errors of the notifications domain."""

from __future__ import annotations

from core.errors import InvalidInput, NotFound


class NotificationNotFound(NotFound):
    """No such notification, or someone else's (indistinguishably)."""

    code = "notification_not_found"
    title = "Notification not found"


class UnknownNotificationKind(InvalidInput):
    """A job asked for a notification kind that has no wording (a programming error; not retried)."""

    title = "Unknown notification kind"
    code = "unknown_notification_kind"

    def __init__(self, kind: str) -> None:
        super().__init__(
            f"There is no notification of kind {kind!r}.",
            errors=[{"field": "kind", "message": "unknown notification kind"}],
        )
