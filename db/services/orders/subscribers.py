"""What follows an order's placing and its status changes: mail, an in-app notice, analytics.

The subscribers only defer jobs, by task name (``tasks/orders.py`` holds the tasks), so they run
inside the unit of work that placed or moved the order: the jobs are sent only if it commits.
They are durable (written to the outbox in that transaction), so a crash between the commit and
the send cannot lose a shopper's confirmation.

Placing an order is on the shopper's request path, so it defers one job, the fan-out, which
defers the placement's three jobs (:func:`defer_placed_jobs`) from a worker: one outbox row and
one send per order instead of three. Status changes happen in workers already and defer theirs
directly.
"""

from __future__ import annotations

from core.events import EventBus
from core.jobs import defer
from core.rules.orders import SOLD
from core.task_names import (
    FAN_OUT_ORDER_PLACED,
    NOTIFY_ORDER_UPDATE,
    NOTIFY_VENDORS_OF_SALE,
    RECORD_ORDER_EVENT,
    REFRESH_SHOPPER_SIZES,
    SEND_ORDER_CONFIRMATION,
    SEND_ORDER_STATUS_UPDATE,
)
from db.services.notifications.orders import ORDER_PLACED, STATUS_KINDS
from db.services.orders.events import OrderPlaced, OrderStatusChanged

# Status changes worth an email to the shopper; shipments are mailed per vendor, with their
# tracking (db.services.fulfilment.subscribers), and the rest is told in the app only.
EMAILED_STATUSES = frozenset({"paid"})


def on_order_placed(event: OrderPlaced) -> None:
    defer(FAN_OUT_ORDER_PLACED, str(event.order_id), durable=True)


def defer_placed_jobs(order_id: str) -> None:
    """What follows a placed order: the shopper's confirmation mail, in-app notice and the
    analytics event (each idempotent, so a fan-out that runs twice is harmless)."""
    defer(SEND_ORDER_CONFIRMATION, order_id, durable=True)
    defer(NOTIFY_ORDER_UPDATE, order_id, ORDER_PLACED, durable=True)
    defer(RECORD_ORDER_EVENT, order_id, "order_placed", durable=True)


def on_order_status_changed(event: OrderStatusChanged) -> None:
    order_id = str(event.order_id)
    kind = STATUS_KINDS.get(event.to_status)
    if kind is not None:
        defer(NOTIFY_ORDER_UPDATE, order_id, kind, durable=True)
    if event.to_status in EMAILED_STATUSES:
        defer(SEND_ORDER_STATUS_UPDATE, order_id, event.to_status, durable=True)
    if event.to_status == "paid":
        # Each vendor with items in it learns of the sale (its own lines, the address).
        defer(NOTIFY_VENDORS_OF_SALE, order_id, durable=True)
    defer(RECORD_ORDER_EVENT, order_id, f"order_{event.to_status}", durable=True)
    if (event.from_status in SOLD) != (event.to_status in SOLD):
        # Kept or given back: "shoppers like me" counts this buyer's sizes again.
        defer(REFRESH_SHOPPER_SIZES, str(event.user_id), durable=True)


def register(bus: EventBus) -> None:
    """Subscribe the order handlers (again is harmless: the bus ignores duplicates)."""
    bus.subscribe(OrderPlaced, on_order_placed)
    bus.subscribe(OrderStatusChanged, on_order_status_changed)
