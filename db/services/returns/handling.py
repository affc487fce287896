"""A vendor decides on a return, then receives the items: the shopper is refunded what they paid
for those units (less their share of any discount), and the units go back on sale unless the
vendor says they cannot be resold.

``requested -> approved | rejected``; ``approved -> received`` (refund asked of the provider,
after commit) ``-> refunded`` (when the provider confirmed: ``db.services.payments.refunds``).
The order is locked first, as for every other change of an order.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.rules.fulfilment import share
from core.rules.orders import SOLD
from db.models import Return
from db.services.orders import stock
from db.services.orders.transitions import load_for_update, transition
from db.services.payments import refunds
from db.services.returns.errors import InvalidReturnMove, ReturnNotFound
from db.services.returns.views import ReturnView, views

MOVES = {"requested": {"approved", "rejected"}, "approved": {"received"}}


async def _lock(session: AsyncSession, return_id: UUID, vendor_id: UUID, target: str) -> Return:
    """The vendor's return, row-locked after its order.

    Raises:
        ReturnNotFound: not this vendor's (404). InvalidReturnMove: not allowed from its status (409).
    """
    order_id = await session.scalar(
        select(Return.order_id).where(Return.id == return_id, Return.vendor_id == vendor_id)
    )
    if order_id is None:
        raise ReturnNotFound()
    await load_for_update(session, order_id)
    ret = await session.scalar(select(Return).where(Return.id == return_id).with_for_update())
    if ret is None:
        raise ReturnNotFound()
    if target not in MOVES.get(ret.status, set()):
        raise InvalidReturnMove(f"A return that is {ret.status} cannot be {target}.")
    return ret


async def decide(
    session: AsyncSession, return_id: UUID, vendor_id: UUID, *, approve: bool, note: str | None
) -> ReturnView:
    """Approve or reject a requested return, with a note for the shopper.

    Raises:
        ReturnNotFound (404); InvalidReturnMove (409).
    """
    target = "approved" if approve else "rejected"
    ret = await _lock(session, return_id, vendor_id, target)
    ret.status = target
    ret.vendor_note = note
    ret.decided_at = datetime.now(UTC)
    await session.flush()
    return (await views(session, [ret]))[0]


async def receive(session: AsyncSession, return_id: UUID, vendor_id: UUID, *, restock: bool) -> ReturnView:
    """The vendor has the items back: refund them, restock them if they can be sold again.

    Raises:
        ReturnNotFound (404); InvalidReturnMove (409).
    """
    ret = await _lock(session, return_id, vendor_id, "received")
    view = (await views(session, [ret]))[0]
    amount = 0
    back: dict[UUID, int] = {}
    for return_line, line in view.lines:
        units = return_line.quantity
        line.returned_quantity += units
        amount += line.unit_price_amount * units - share(line.discount_amount, units, line.quantity)
        back[line.variant_id] = back.get(line.variant_id, 0) + units
    if restock:
        await stock.restock(session, back)
    ret.status = "received"
    ret.restocked = restock
    ret.received_at = datetime.now(UTC)
    ret.refund_amount = await refunds.refund_order_amount(
        session, ret.order_id, amount, refunds.RefundFor(reason="returned items", return_id=ret.id)
    )
    if ret.refund_amount == 0:  # nothing was left to give back (already refunded another way)
        ret.status, ret.refunded_at = "refunded", ret.received_at
    await _close_if_refunded(session, ret.order_id)
    await session.flush()
    return (await views(session, [ret]))[0]


async def _close_if_refunded(session: AsyncSession, order_id: UUID) -> None:
    """An order whose payments were given back in full becomes ``refunded``."""
    order = await load_for_update(session, order_id)
    if order.status in SOLD and order.paid_at is not None and await refunds.remaining(session, order_id) == 0:
        await transition(session, order, "refunded", "system", reason="everything was refunded")
