"""The one place that changes an order's status.

It checks the move against the state machine (``core.rules.orders``), moves the stock that goes with
it, asks for the refund that goes with it, writes the audit row (``order_events``) and publishes
:class:`OrderStatusChanged`. Callers
must hold the order's row lock (``load_for_update``) so two moves of one order serialise.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.context import get_request_id
from core.events import get_event_bus
from core.jobs import defer
from core.rules.orders import FINAL, RESERVING, SOLD, Actor, check_transition
from core.task_names import REFUND_PAYMENT
from db.models import Order, OrderEvent, OrderLine, Payment
from db.services.orders import stock
from db.services.orders.errors import OrderNotFound
from db.services.orders.events import OrderStatusChanged


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
) -> None:
    """Write the audit row of a status change (or of the order's creation, ``from_status`` None)."""
    session.add(
        OrderEvent(
            order_id=order.id,
            from_status=from_status,
            to_status=order.status,
            actor=actor,
            actor_id=actor_id,
            reason=reason,
            request_id=get_request_id(),
        )
    )


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
    or ``expired`` it releases them. Leaving ``paid`` for ``cancelled`` or ``refunded`` (nothing
    shipped yet) puts the units back on sale. ``expired -> paid`` must have taken the stock again
    first (:func:`stock.reserve`); this sells it.

    Money: leaving a paid status (paid, fulfilled, delivered) for ``cancelled`` or ``refunded``
    marks the order's successful payments for refund and queues the refunds (durable, after
    commit), whoever moved it.

    Raises:
        InvalidTransition: the state machine does not allow it for ``actor`` (409).
    """
    current = order.status
    check_transition(current, target, actor)
    quantities = await line_quantities(session, order.id)
    if current in RESERVING or (current == "expired" and target == "paid"):
        if target in SOLD:
            await stock.sell(session, quantities)
        else:
            await stock.release(session, quantities)
    elif current == "paid" and target in FINAL:
        await stock.restock(session, quantities)
    now = datetime.now(UTC)
    order.status = target
    if target == "paid":
        order.paid_at = now
    if target in FINAL:
        order.closed_at = now
    if current in SOLD and target in ("cancelled", "refunded"):
        await request_refunds(session, order.id)
    record(session, order, current, actor, actor_id=actor_id, reason=reason)
    await session.flush()
    get_event_bus().publish(
        OrderStatusChanged(order_id=order.id, user_id=order.user_id, from_status=current, to_status=target)
    )


async def request_refunds(session: AsyncSession, order_id: UUID) -> int:
    """Mark the order's successful payments for refund and queue the refunds (after commit)."""
    payments = (
        await session.scalars(
            select(Payment)
            .where(Payment.order_id == order_id, Payment.status == "succeeded")
            .with_for_update()
        )
    ).all()
    for payment in payments:
        payment.status = "refund_pending"
        defer(REFUND_PAYMENT, str(payment.id), durable=True)
    return len(payments)
