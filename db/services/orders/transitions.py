"""The one place that changes an order's status.

It checks the move against the state machine (``core.rules.orders``), moves the stock that goes with
it, closes or reopens the fulfilments that go with it, asks for the refund that goes with it,
writes the audit row (``order_events``) and publishes :class:`OrderStatusChanged`. Once paid, an
order follows its fulfilments (:func:`follow_fulfilments`). Callers must hold the order's row lock
(``load_for_update``) so two moves of one order serialise; fulfilment moves take it too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.context import get_request_id
from core.events import get_event_bus
from core.rules.fulfilment import CANCELLABLE, derive_order_status
from core.rules.orders import FINAL, RESERVING, SOLD, Actor, check_transition
from db.models import Fulfilment, Order, OrderEvent, OrderLine
from db.services.orders import stock
from db.services.orders.errors import OrderNotFound
from db.services.orders.events import OrderStatusChanged
from db.services.payments.refunds import refund_order_remaining


async def load_for_update(session: AsyncSession, order_id: UUID, *, user_id: UUID | None = None) -> Order:
    """The order, row-locked until the transaction ends; ``user_id`` restricts it to its buyer.

    Raises:
        OrderNotFound: no such order (or someone else's).
    """
    stmt = select(Order).where(Order.id == order_id).with_for_update()
    if user_id is not None:
        stmt = stmt.where(Order.user_id == user_id)
    order = await session.scalar(stmt)
    if order is None:
        raise OrderNotFound()
    return order


async def line_quantities(session: AsyncSession, order_id: UUID) -> dict[UUID, int]:
    rows = await session.execute(
        select(OrderLine.variant_id, OrderLine.quantity).where(OrderLine.order_id == order_id)
    )
    return dict(rows.all())


def record(
    session: AsyncSession,
    order: Order,
    from_status: str | None,
    actor: Actor,
    *,
    actor_id: UUID | None = None,
    reason: str | None = None,
    fulfilment: Fulfilment | None = None,
) -> OrderEvent:
    """Write the audit row of a status change (or of the order's creation, ``from_status`` None);
    with ``fulfilment``, of that fulfilment's move (its statuses)."""
    event = OrderEvent(
        order_id=order.id,
        fulfilment_id=fulfilment.id if fulfilment is not None else None,
        from_status=from_status,
        to_status=fulfilment.status if fulfilment is not None else order.status,
        actor=actor,
        actor_id=actor_id,
        reason=reason,
        request_id=get_request_id(),
    )
    session.add(event)
    return event


async def _fulfilments(session: AsyncSession, order_id: UUID) -> list[Fulfilment]:
    return list(
        (
            await session.scalars(
                select(Fulfilment)
                .where(Fulfilment.order_id == order_id)
                .order_by(Fulfilment.id)
                .with_for_update()
            )
        ).all()
    )


async def _unshipped_quantities(session: AsyncSession, fulfilments: list[Fulfilment]) -> dict[UUID, int]:
    """Units of the fulfilments still with their vendors, less those already cancelled."""
    ids = [f.id for f in fulfilments if f.status in CANCELLABLE]
    if not ids:
        return {}
    rows = await session.execute(
        select(OrderLine.variant_id, OrderLine.quantity - OrderLine.cancelled_quantity).where(
            OrderLine.fulfilment_id.in_(ids)
        )
    )
    return {variant_id: units for variant_id, units in rows.all() if units > 0}


async def _move_stock(session: AsyncSession, order: Order, current: str, target: str) -> None:
    """The stock that goes with ``current -> target``, and the fulfilments it closes or reopens."""
    if current in RESERVING or (current == "expired" and target == "paid"):
        quantities = await line_quantities(session, order.id)
        if target in SOLD:
            await stock.sell(session, quantities)
        else:
            await stock.release(session, quantities)
    elif current in SOLD and target in FINAL:
        # What has not left the vendors goes back on sale; shipped goods come back by returns.
        await stock.restock(
            session, await _unshipped_quantities(session, await _fulfilments(session, order.id))
        )
    if target in FINAL:
        for fulfilment in await _fulfilments(session, order.id):
            if fulfilment.status in CANCELLABLE:
                close_fulfilment(session, fulfilment, reason=f"order {target}")
    elif current == "expired" and target == "paid":
        for fulfilment in await _fulfilments(session, order.id):
            fulfilment.status, fulfilment.cancelled_at, fulfilment.cancel_reason = "pending", None, None


def close_fulfilment(session: AsyncSession, fulfilment: Fulfilment, *, reason: str) -> None:
    """Mark a fulfilment that never left its vendor cancelled (its stock is moved by the caller)."""
    fulfilment.status = "cancelled"
    fulfilment.cancelled_at = datetime.now(UTC)
    fulfilment.cancel_reason = reason


async def transition(
    session: AsyncSession,
    order: Order,
    target: str,
    actor: Actor,
    *,
    actor_id: UUID | None = None,
    reason: str | None = None,
) -> None:
    """Move ``order`` (row-locked by the caller) to ``target`` with its stock movement.

    Stock: leaving ``pending_payment`` for ``paid`` sells the reserved units; for ``cancelled``
    or ``expired`` it releases them. Leaving a paid status for ``cancelled`` or ``refunded`` puts
    the units that have not shipped back on sale and cancels their fulfilments. ``expired ->
    paid`` must have taken the stock again first (:func:`stock.reserve`); this sells it and
    reopens the fulfilments.

    Money: leaving a paid status (paid, partially shipped, shipped, delivered) for ``cancelled``
    or ``refunded`` gives back whatever the order's payments still hold (queued durably, after
    commit), whoever moved it.

    Raises:
        InvalidTransition: the state machine does not allow it for ``actor`` (409).
    """
    current = order.status
    check_transition(current, target, actor)
    await _move_stock(session, order, current, target)
    now = datetime.now(UTC)
    order.status = target
    if target == "paid":
        order.paid_at = now
    if target in FINAL:
        order.closed_at = now
    if current in SOLD and target in ("cancelled", "refunded"):
        await refund_order_remaining(session, order.id, reason or f"order {target}")
    record(session, order, current, actor, actor_id=actor_id, reason=reason)
    await session.flush()
    get_event_bus().publish(
        OrderStatusChanged(order_id=order.id, user_id=order.user_id, from_status=current, to_status=target)
    )


async def follow_fulfilments(
    session: AsyncSession,
    order: Order,
    actor: Actor,
    *,
    actor_id: UUID | None = None,
    reason: str | None = None,
) -> None:
    """Give a paid order (row-locked) the status its fulfilments add up to, when that changed."""
    if order.status not in SOLD:
        return
    statuses = (await session.scalars(select(Fulfilment.status).where(Fulfilment.order_id == order.id))).all()
    target = derive_order_status(statuses)
    if target != order.status:
        await transition(session, order, target, actor, actor_id=actor_id, reason=reason)


async def request_refunds(session: AsyncSession, order_id: UUID) -> int:
    """Give back everything the order's payments still hold (queued after commit)."""
    return await refund_order_remaining(session, order_id, "order refunded")
