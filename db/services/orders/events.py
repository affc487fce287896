"""Domain events of orders. Published inside the unit of work that made the change; subscribers
(``db.services.orders.subscribers``) only defer jobs, so they share that transaction's fate."""

from __future__ import annotations

from uuid import UUID

from core.events import Event


class OrderPlaced(Event, frozen=True, kw_only=True):
    order_id: UUID
    user_id: UUID


class OrderStatusChanged(Event, frozen=True, kw_only=True):
    order_id: UUID
    user_id: UUID
    from_status: str
    to_status: str
