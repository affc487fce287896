"""Cancelling, expiring and staff moves of orders (the state machine is in ``core.rules.orders``)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.logging import get_logger
from core.rules.orders import Actor, can_transition
from db.models import Order
from db.services.orders.errors import OrderNotCancellable
from db.services.orders.transitions import load_for_update, transition

log = get_logger(__name__)


async def cancel(session: AsyncSession, order_id: UUID, *, user_id: UUID, actor: Actor = "buyer") -> Order:
    """Cancel an order before fulfilment: its stock goes back on sale; a paid order is refunded.

    Raises:
        OrderNotFound: not the caller's order (404).
        OrderNotCancellable: fulfilled, delivered or already closed (409).
    """
    order = await load_for_update(session, order_id, user_id=user_id)
    if not can_transition(order.status, "cancelled", actor):
        raise OrderNotCancellable(f"An order that is {order.status.replace('_', ' ')} cannot be cancelled.")
    await transition(session, order, "cancelled", actor, actor_id=user_id, reason="cancelled by the buyer")
    return order


async def staff_move(
    session: AsyncSession, order_id: UUID, target: str, *, staff_id: UUID, reason: str | None
) -> Order:
    """A staff member moves an order (fulfilled, delivered, refunded, cancelled).

    Raises:
        OrderNotFound (404); InvalidTransition (409) when the state machine does not allow it.
    """
    order = await load_for_update(session, order_id)
    await transition(session, order, target, "staff", actor_id=staff_id, reason=reason)
    return order


async def expire_due(session: AsyncSession, *, now: datetime | None = None, batch: int = 200) -> int:
    """Expire unpaid orders past their reservation deadline, releasing their stock.

    Safe to run concurrently and repeatedly: rows are claimed with ``FOR UPDATE SKIP LOCKED`` and
    re-checked under the lock, so each order's stock is released exactly once.
    """
    now = now or datetime.now(UTC)
    orders = (
        await session.scalars(
            select(Order)
            .where(Order.status == "pending_payment", Order.expires_at <= now)
            .order_by(Order.expires_at)
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
    ).all()
    for order in orders:
        await transition(session, order, "expired", "system", reason="unpaid reservation timed out")
    if orders:
        log.info("orders expired", count=len(orders))
    return len(orders)
