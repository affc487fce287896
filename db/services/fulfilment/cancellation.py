"""Cancelling a fulfilment before it ships: whole, or some units of some lines.

Cancelled units go back on sale and their paid amount (less their share of any discount) is
refunded; when nothing is left of the fulfilment it is cancelled and its shipping refunded too.
An order whose every fulfilment is cancelled is cancelled itself (``follow_fulfilments``), which
gives back whatever its payments still hold, so nothing is refunded twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.events import get_event_bus
from core.rules.fulfilment import CANCELLABLE, InvalidFulfilmentMove, share
from db.models import Fulfilment, Order, OrderLine
from db.services.fulfilment.errors import InvalidCancellation
from db.services.fulfilment.events import FulfilmentMoved
from db.services.fulfilment.moves import Acting, lock_fulfilment
from db.services.orders import stock
from db.services.orders.transitions import close_fulfilment, follow_fulfilments, record
from db.services.payments.refunds import RefundFor, refund_order_amount


def _units_to_cancel(
    lines: Sequence[OrderLine], wanted: Sequence[tuple[UUID, int]] | None
) -> dict[UUID, int]:
    """Order line id -> units to cancel (everything left when ``wanted`` is None).

    Raises:
        InvalidCancellation: a line not in this fulfilment, listed twice, or more units than are left.
    """
    left = {line.id: line.quantity - line.cancelled_quantity - line.returned_quantity for line in lines}
    if wanted is None:
        return {line_id: units for line_id, units in left.items() if units > 0}
    errors = []
    chosen: dict[UUID, int] = {}
    for index, (line_id, units) in enumerate(wanted):
        field = f"lines[{index}]"
        if line_id not in left:
            errors.append({"field": f"{field}.order_line_id", "message": "not a line of this fulfilment"})
        elif line_id in chosen:
            errors.append({"field": f"{field}.order_line_id", "message": "listed twice"})
        elif units > left[line_id]:
            errors.append({"field": f"{field}.quantity", "message": f"only {left[line_id]} left to cancel"})
        else:
            chosen[line_id] = units
    if errors:
        raise InvalidCancellation("Some lines cannot be cancelled.", errors=errors)
    return chosen


def _line_refund(line: OrderLine, units: int) -> int:
    """What ``units`` of ``line`` were paid: their price less their share of the line's discount."""
    return line.unit_price_amount * units - share(line.discount_amount, units, line.quantity)


async def cancel(
    session: AsyncSession,
    fulfilment_id: UUID,
    acting: Acting,
    *,
    lines: Sequence[tuple[UUID, int]] | None,
    reason: str,
) -> Fulfilment:
    """Cancel ``lines`` (order line id, units) of a fulfilment that has not shipped, or all of it.

    Raises:
        FulfilmentNotFound (404); OrderNotPaid, InvalidFulfilmentMove (409, shipped or cancelled);
        InvalidCancellation (422).
    """
    order, fulfilment = await lock_fulfilment(session, fulfilment_id, acting)
    if fulfilment.status not in CANCELLABLE:
        raise InvalidFulfilmentMove(f"A fulfilment that is {fulfilment.status} cannot be cancelled.")
    own = list(
        (
            await session.scalars(
                select(OrderLine).where(OrderLine.fulfilment_id == fulfilment.id).with_for_update()
            )
        ).all()
    )
    units = _units_to_cancel(own, lines)
    by_id = {line.id: line for line in own}
    refund = 0
    for line_id, count in units.items():
        line = by_id[line_id]
        line.cancelled_quantity += count
        refund += _line_refund(line, count)
    await stock.restock(session, {by_id[i].variant_id: n for i, n in units.items() if n > 0})
    whole = all(line.quantity - line.cancelled_quantity - line.returned_quantity == 0 for line in own)
    current = fulfilment.status
    if whole:
        close_fulfilment(session, fulfilment, reason=reason)
        refund += fulfilment.shipping_amount
    change = record(
        session, order, current, acting.actor, actor_id=acting.user_id, reason=reason, fulfilment=fulfilment
    )
    await _refund(session, order, fulfilment, refund, reason)  # flushes: the audit row gets its id
    await follow_fulfilments(session, order, acting.actor, actor_id=acting.user_id, reason=reason)
    get_event_bus().publish(
        FulfilmentMoved(
            fulfilment_id=fulfilment.id,
            order_id=order.id,
            user_id=order.user_id,
            to_status="cancelled",
            change_id=change.id,
            partial=not whole,
        )
    )
    return fulfilment


async def _refund(
    session: AsyncSession, order: Order, fulfilment: Fulfilment, amount: int, reason: str
) -> None:
    if amount > 0:
        await refund_order_amount(
            session, order.id, amount, RefundFor(reason=f"cancelled: {reason}", fulfilment_id=fulfilment.id)
        )
    await session.flush()
