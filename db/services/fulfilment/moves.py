"""Packing, shipping and delivering a fulfilment.

Every move locks the order first, then the fulfilment (the order in which every other change of
an order takes its locks: buyer cancel, expiry, payments), checks the move against the state
machine (``core.rules.fulfilment``), writes the audit row and lets the order follow its
fulfilments (``transitions.follow_fulfilments``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.events import get_event_bus
from core.rules.fulfilment import check_move
from core.rules.orders import SOLD, Actor
from db.models import Fulfilment, Order
from db.services.fulfilment.errors import FulfilmentNotFound, OrderNotPaid
from db.services.fulfilment.events import FulfilmentMoved
from db.services.orders.transitions import follow_fulfilments, load_for_update, record


@dataclass(frozen=True, slots=True)
class Acting:
    """Who moves a fulfilment: a vendor (their own only) or staff (``vendor_id`` None)."""

    actor: Actor
    user_id: UUID
    vendor_id: UUID | None


@dataclass(frozen=True, slots=True)
class Tracking:
    carrier: str
    tracking_number: str
    tracking_url: str | None = None


async def lock_fulfilment(
    session: AsyncSession, fulfilment_id: UUID, acting: Acting
) -> tuple[Order, Fulfilment]:
    """The fulfilment and its order, both row-locked (order first); only a paid order's.

    Raises:
        FulfilmentNotFound: no such fulfilment, another vendor's, or one of an order never paid (404).
        OrderNotPaid: the order was paid once but is cancelled or refunded now (409).
    """
    stmt = select(Fulfilment.order_id).where(Fulfilment.id == fulfilment_id)
    if acting.vendor_id is not None:
        stmt = stmt.where(Fulfilment.vendor_id == acting.vendor_id)
    order_id = await session.scalar(stmt)
    if order_id is None:
        raise FulfilmentNotFound()
    order = await load_for_update(session, order_id)
    if order.paid_at is None:
        raise FulfilmentNotFound()
    fulfilment = await session.scalar(
        select(Fulfilment).where(Fulfilment.id == fulfilment_id).with_for_update()
    )
    if fulfilment is None:
        raise FulfilmentNotFound()
    if order.status not in SOLD:
        raise OrderNotPaid(
            f"The order is {order.status.replace('_', ' ')}; its fulfilments can no longer change."
        )
    return order, fulfilment


async def _move(
    session: AsyncSession, order: Order, fulfilment: Fulfilment, target: str, acting: Acting, reason: str
) -> None:
    current = fulfilment.status
    check_move(current, target)
    fulfilment.status = target
    change = record(
        session, order, current, acting.actor, actor_id=acting.user_id, reason=reason, fulfilment=fulfilment
    )
    await session.flush()
    await follow_fulfilments(session, order, acting.actor, actor_id=acting.user_id, reason=reason)
    get_event_bus().publish(
        FulfilmentMoved(
            fulfilment_id=fulfilment.id,
            order_id=order.id,
            user_id=order.user_id,
            to_status=target,
            change_id=change.id,
        )
    )


async def pack(session: AsyncSession, fulfilment_id: UUID, acting: Acting) -> Fulfilment:
    """``pending -> packed``.

    Raises:
        FulfilmentNotFound (404); OrderNotPaid, InvalidFulfilmentMove (409).
    """
    order, fulfilment = await lock_fulfilment(session, fulfilment_id, acting)
    fulfilment.packed_at = datetime.now(UTC)
    await _move(session, order, fulfilment, "packed", acting, "packed")
    return fulfilment


async def ship(session: AsyncSession, fulfilment_id: UUID, acting: Acting, tracking: Tracking) -> Fulfilment:
    """``pending | packed -> shipped`` with the carrier and tracking number.

    Raises:
        FulfilmentNotFound (404); OrderNotPaid, InvalidFulfilmentMove (409).
    """
    order, fulfilment = await lock_fulfilment(session, fulfilment_id, acting)
    fulfilment.carrier = tracking.carrier
    fulfilment.tracking_number = tracking.tracking_number
    fulfilment.tracking_url = tracking.tracking_url
    fulfilment.shipped_at = datetime.now(UTC)
    await _move(session, order, fulfilment, "shipped", acting, f"shipped with {tracking.carrier}")
    return fulfilment


async def deliver(session: AsyncSession, fulfilment_id: UUID, acting: Acting) -> Fulfilment:
    """``shipped -> delivered``; the return window starts now.

    Raises:
        FulfilmentNotFound (404); OrderNotPaid, InvalidFulfilmentMove (409).
    """
    order, fulfilment = await lock_fulfilment(session, fulfilment_id, acting)
    fulfilment.delivered_at = datetime.now(UTC)
    await _move(session, order, fulfilment, "delivered", acting, "delivered")
    return fulfilment
