"""What shoppers are told about their orders: order numbers, amounts, and the in-app notices.

The jobs deferred by ``db.services.orders.subscribers`` use these: the notification job writes
one notice per order and kind, the mail tasks (``tasks/orders.py``) word their emails with the
same helpers, so a shopper reads the same order number and amounts everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from string import Template
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.ids import new_id
from db.models import Notification, Order, OrderLine, User
from db.services.notifications.errors import UnknownNotificationKind
from db.services.orders.errors import OrderNotFound

# Order status -> the kind of notice the shopper gets. Shipments and deliveries are told per
# vendor, with their tracking (db.services.notifications.fulfilments), not per order.
STATUS_KINDS: dict[str, str] = {
    "paid": "order_paid",
    "cancelled": "order_cancelled",
    "expired": "order_expired",
    "refunded": "order_refunded",
}
ORDER_PLACED = "order_placed"


@dataclass(frozen=True, slots=True)
class Notice:
    status: str  # the order status the notice is about (``data.status``)
    title: str  # string.Template with $number, $total, $items
    body: str


NOTICES: dict[str, Notice] = {
    ORDER_PLACED: Notice(
        "pending_payment",
        "Order $number placed",
        "We are holding your $items for you. Pay $total to confirm the order.",
    ),
    "order_paid": Notice(
        "paid", "Payment received for order $number", "We received $total. Your order is being prepared."
    ),
    "order_cancelled": Notice(
        "cancelled",
        "Order $number was cancelled",
        "The order is cancelled. If you had paid, $total is refunded to you.",
    ),
    "order_expired": Notice(
        "expired",
        "Order $number expired",
        "Payment did not arrive in time, so the items were released. You can order them again.",
    ),
    "order_refunded": Notice("refunded", "Order $number was refunded", "$total is on its way back to you."),
}

# Currencies whose minor unit is not a hundredth (ISO 4217); every other one has two decimals.
_MINOR_DIGITS = {"BHD": 3, "JOD": 3, "KWD": 3, "OMR": 3, "TND": 3, "JPY": 0, "KRW": 0, "RWF": 0, "UGX": 0}
_MINOR_DIGITS |= {"XAF": 0, "XOF": 0, "VND": 0, "CLP": 0, "ISK": 0}


def order_number(order_id: UUID) -> str:
    """The short number shoppers see: the last 8 hex digits of the id.

    The front of a UUIDv7 is its timestamp (orders placed together share it); the end is random.
    """
    return order_id.hex[-8:].upper()


def format_money(amount: int, currency: str) -> str:
    """``amount`` in minor units as people read it: ``format_money(1500000, "NGN")`` is
    ``"NGN 15,000.00"``."""
    code = currency.upper()
    digits = _MINOR_DIGITS.get(code, 2)
    major, minor = divmod(abs(amount), 10**digits)
    sign = "-" if amount < 0 else ""
    fraction = f".{minor:0{digits}d}" if digits else ""
    return f"{code} {sign}{major:,}{fraction}"


def items_text(count: int) -> str:
    return "1 item" if count == 1 else f"{count} items"


@dataclass(frozen=True, slots=True)
class OrderForMessage:
    order: Order
    lines: list[OrderLine]
    buyer: User


async def order_for_message(session: AsyncSession, order_id: UUID) -> OrderForMessage:
    """The order with its lines (in the order they were added) and its buyer.

    Raises:
        OrderNotFound: no such order.
    """
    order = await session.get(Order, order_id)
    if order is None:
        raise OrderNotFound()
    lines = list(
        await session.scalars(select(OrderLine).where(OrderLine.order_id == order_id).order_by(OrderLine.id))
    )
    buyer = await session.get(User, order.user_id)
    if buyer is None:  # orders restrict the deletion of their buyer; a missing one is corrupt data
        raise OrderNotFound()
    return OrderForMessage(order=order, lines=lines, buyer=buyer)


def notice_for(order: Order, kind: str) -> tuple[str, str, dict[str, Any]]:
    """(title, body, data) of the ``kind`` notice about ``order``.

    Raises:
        UnknownNotificationKind: ``kind`` has no wording.
    """
    notice = NOTICES.get(kind)
    if notice is None:
        raise UnknownNotificationKind(kind)
    values = {
        "number": order_number(order.id),
        "total": format_money(order.total_amount, order.currency),
        "items": items_text(order.item_count),
    }
    title = Template(notice.title).substitute(values)
    body = Template(notice.body).substitute(values)
    return title, body, {"order_id": str(order.id), "status": notice.status}


async def add_order_notification(session: AsyncSession, order_id: UUID, kind: str) -> bool:
    """Write the ``kind`` notice about an order for its buyer, once: True if it is new.

    Its ``dedupe_key`` (``order:<id>:<kind>``) is unique per user, so a job that runs again
    adds nothing (INSERT ... ON CONFLICT DO NOTHING; concurrent runs included).

    Raises:
        OrderNotFound: no such order.
        UnknownNotificationKind: ``kind`` has no wording.
    """
    order = await session.get(Order, order_id)
    if order is None:
        raise OrderNotFound()
    title, body, data = notice_for(order, kind)
    now = datetime.now(UTC)
    inserted = await session.scalar(
        insert(Notification)
        .values(
            id=new_id(),
            user_id=order.user_id,
            kind=kind,
            title=title,
            body=body,
            data=data,
            dedupe_key=f"order:{order.id}:{kind}",
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(constraint="uq_notifications_user_dedupe")
        .returning(Notification.id)
    )
    return inserted is not None
