"""What shoppers and vendors are told about fulfilments and refunds (in-app notices).

Shoppers hear of each shipment (with its tracking), delivery, cancellation of items and refund;
each vendor hears of every paid order it has items in. Every notice has a ``dedupe_key`` unique
per user, so a job that runs twice adds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.ids import new_id
from db.models import Fulfilment, Notification, Order, OrderLine, Refund, User, Vendor
from db.services.fulfilment.errors import FulfilmentNotFound
from db.services.notifications.errors import UnknownNotificationKind
from db.services.notifications.orders import format_money, items_text, order_number
from db.services.payments.errors import PaymentNotFound

# Fulfilment status -> the shopper's notice; "lines_cancelled" is a cancellation of some items.
FULFILMENT_KINDS = {
    "shipped": "fulfilment_shipped",
    "delivered": "fulfilment_delivered",
    "cancelled": "fulfilment_cancelled",
    "lines_cancelled": "lines_cancelled",
}


@dataclass(frozen=True, slots=True)
class FulfilmentForMessage:
    fulfilment: Fulfilment
    order: Order
    lines: list[OrderLine]
    buyer: User
    vendor: Vendor
    vendor_owner: User


async def fulfilment_for_message(session: AsyncSession, fulfilment_id: UUID) -> FulfilmentForMessage:
    """A fulfilment with its order, lines, buyer, store and the store's owner.

    Raises:
        FulfilmentNotFound: no such fulfilment.
    """
    fulfilment = await session.get(Fulfilment, fulfilment_id)
    if fulfilment is None:
        raise FulfilmentNotFound()
    order = await session.get(Order, fulfilment.order_id)
    vendor = await session.get(Vendor, fulfilment.vendor_id)
    if order is None or vendor is None:
        raise FulfilmentNotFound()
    buyer = await session.get(User, order.user_id)
    owner = await session.get(User, vendor.owner_id)
    if buyer is None or owner is None:
        raise FulfilmentNotFound()
    lines = list(
        await session.scalars(
            select(OrderLine).where(OrderLine.fulfilment_id == fulfilment_id).order_by(OrderLine.id)
        )
    )
    return FulfilmentForMessage(fulfilment, order, lines, buyer, vendor, owner)


def _shopper_notice(found: FulfilmentForMessage, kind: str) -> tuple[str, str]:
    f, number, vendor = found.fulfilment, order_number(found.order.id), found.vendor.name
    units = sum(line.quantity - line.cancelled_quantity for line in found.lines)
    if kind == "fulfilment_shipped":
        return (
            f"{vendor} shipped part of order {number}",
            f"{items_text(units)} shipped with {f.carrier}, tracking number {f.tracking_number}.",
        )
    if kind == "fulfilment_delivered":
        return f"Delivered: {vendor}'s items of order {number}", "Enjoy them! You can now review them."
    if kind == "fulfilment_cancelled":
        return (
            f"{vendor} cancelled its items of order {number}",
            f"Reason: {f.cancel_reason}. What you paid for them and their shipping is refunded.",
        )
    if kind == "lines_cancelled":
        return (
            f"{vendor} cancelled some items of order {number}",
            "What you paid for the cancelled items is refunded; the rest of the order is on its way.",
        )
    raise UnknownNotificationKind(kind)


async def _notify(
    session: AsyncSession, user_id: UUID, kind: str, title: str, body: str, data: dict[str, Any], dedupe: str
) -> bool:
    now = datetime.now(UTC)
    inserted = await session.scalar(
        insert(Notification)
        .values(
            id=new_id(),
            user_id=user_id,
            kind=kind,
            title=title,
            body=body,
            data=data,
            dedupe_key=dedupe,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(constraint="uq_notifications_user_dedupe")
        .returning(Notification.id)
    )
    return inserted is not None


async def notify_fulfilment(session: AsyncSession, fulfilment_id: UUID, kind: str, change: str) -> bool:
    """The shopper's ``kind`` notice about a fulfilment, once per ``change`` (its audit row id).

    Raises:
        FulfilmentNotFound; UnknownNotificationKind.
    """
    found = await fulfilment_for_message(session, fulfilment_id)
    title, body = _shopper_notice(found, kind)
    f = found.fulfilment
    data = {
        "order_id": str(f.order_id),
        "fulfilment_id": str(f.id),
        "status": f.status,
        "carrier": f.carrier,
        "tracking_number": f.tracking_number,
        "tracking_url": f.tracking_url,
    }
    return await _notify(
        session, found.buyer.id, kind, title, body, data, f"fulfilment:{f.id}:{kind}:{change}"
    )


async def notify_vendor_of_sale(session: AsyncSession, fulfilment_id: UUID) -> bool:
    """The store owner's notice that a paid order holds items of theirs to ship (once).

    Raises:
        FulfilmentNotFound.
    """
    found = await fulfilment_for_message(session, fulfilment_id)
    f, order = found.fulfilment, found.order
    units = sum(line.quantity - line.cancelled_quantity for line in found.lines)
    subtotal = sum(line.line_total_amount for line in found.lines)
    place = ", ".join(
        str(order.shipping_address.get(k)) for k in ("city", "country") if order.shipping_address.get(k)
    )
    title = f"New order {order_number(order.id)}: {items_text(units)} to ship"
    body = f"{format_money(subtotal, order.currency)} of your items, to {place}. Pack and ship them."
    data = {"order_id": str(order.id), "fulfilment_id": str(f.id), "status": f.status}
    return await _notify(
        session, found.vendor_owner.id, "vendor_new_order", title, body, data, f"fulfilment:{f.id}:sold"
    )


async def live_fulfilment_ids(session: AsyncSession, order_id: UUID) -> list[UUID]:
    """The order's fulfilments that are not cancelled, in order."""
    rows = await session.scalars(
        select(Fulfilment.id)
        .where(Fulfilment.order_id == order_id, Fulfilment.status != "cancelled")
        .order_by(Fulfilment.id)
    )
    return list(rows)


async def notify_refund(session: AsyncSession, refund_id: UUID) -> bool:
    """The shopper's notice that a refund went through (once).

    Raises:
        PaymentNotFound: no such refund.
    """
    refund = await session.get(Refund, refund_id)
    if refund is None:
        raise PaymentNotFound()
    order = await session.get(Order, refund.order_id)
    if order is None:
        raise PaymentNotFound()
    title = f"Refund of {format_money(refund.amount, refund.currency)} for order {order_number(order.id)}"
    body = f"{refund.reason[:1].upper()}{refund.reason[1:]}. It reaches your account in a few working days."
    data = {"order_id": str(order.id), "refund_id": str(refund.id), "amount": refund.amount}
    return await _notify(session, order.user_id, "refund_sent", title, body, data, f"refund:{refund.id}")
