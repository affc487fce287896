"""Bodies of the notifications endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec


class Notification(msgspec.Struct):
    id: UUID
    # "order_placed", "order_paid", "order_shipped", "order_delivered", "order_cancelled", ...
    kind: str
    title: str
    body: str
    # What it is about, e.g. {"order_id": ..., "status": "paid"}.
    data: dict[str, Any]
    read_at: datetime | None
    created_at: datetime


class NotificationList(msgspec.Struct):
    items: list[Notification]
    next_cursor: str | None
    # All unread notifications of the caller, whatever this page shows.
    unread_count: int
