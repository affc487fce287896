"""A shopper asks to return delivered lines of one vendor's fulfilment.

Rules: the lines belong to the caller's order and to one fulfilment, which was delivered no
longer ago than its return window (the store's policy when the order was placed); no line is
final sale; no more units than were delivered and are not already returned or in an open
return. The order is row-locked meanwhile, so two requests cannot return the same units twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Fulfilment, OrderLine, Return, ReturnLine
from db.models.returns import OPEN_OR_DONE
from db.services.orders.transitions import load_for_update
from db.services.returns.errors import ReturnNotAllowed
from db.services.returns.views import ReturnView, views


@dataclass(frozen=True, slots=True)
class LineIn:
    order_line_id: UUID
    quantity: int
    reason: str


async def _already(session: AsyncSession, line_ids: list[UUID]) -> dict[UUID, int]:
    """Units of each line in returns that are open or done (rejected ones do not count)."""
    rows = await session.execute(
        select(ReturnLine.order_line_id, func.sum(ReturnLine.quantity))
        .join(Return, Return.id == ReturnLine.return_id)
        .where(ReturnLine.order_line_id.in_(line_ids), Return.status.in_(OPEN_OR_DONE))
        .group_by(ReturnLine.order_line_id)
    )
    return {line_id: int(units) for line_id, units in rows.all()}


def _check_lines(
    wanted: Sequence[LineIn], lines: dict[UUID, OrderLine], taken: dict[UUID, int]
) -> list[dict[str, str]]:
    errors = []
    seen: set[UUID] = set()
    for index, item in enumerate(wanted):
        field = f"lines[{index}]"
        line = lines.get(item.order_line_id)
        if line is None:
            errors.append({"field": f"{field}.order_line_id", "message": "not a line of this order"})
        elif item.order_line_id in seen:
            errors.append({"field": f"{field}.order_line_id", "message": "listed twice"})
        elif line.final_sale:
            errors.append({"field": f"{field}.order_line_id", "message": "final sale: not returnable"})
        else:
            left = line.quantity - line.cancelled_quantity - taken.get(line.id, 0)
            if item.quantity > left:
                errors.append(
                    {"field": f"{field}.quantity", "message": f"only {max(left, 0)} can be returned"}
                )
        seen.add(item.order_line_id)
    return errors


def _check_fulfilment(fulfilment: Fulfilment, now: datetime) -> None:
    if fulfilment.status != "delivered" or fulfilment.delivered_at is None:
        raise ReturnNotAllowed(
            "Items can be returned once they are delivered.",
            errors=[{"field": "lines", "message": f"this part of the order is {fulfilment.status}"}],
        )
    deadline = fulfilment.delivered_at + timedelta(days=fulfilment.return_window_days)
    if now > deadline:
        raise ReturnNotAllowed(
            f"The return window closed on {deadline:%d %b %Y}.",
            errors=[{"field": "lines", "message": "the return window has closed"}],
        )


async def request_return(
    session: AsyncSession, user_id: UUID, order_id: UUID, wanted: Sequence[LineIn], note: str | None
) -> ReturnView:
    """Open a return of ``wanted`` lines of the caller's order.

    Raises:
        OrderNotFound: not the caller's order (404).
        ReturnNotAllowed: see the module (422, naming the line).
    """
    order = await load_for_update(session, order_id, user_id=user_id)
    ids = [item.order_line_id for item in wanted]
    lines = {
        line.id: line
        for line in await session.scalars(
            select(OrderLine).where(OrderLine.order_id == order.id, OrderLine.id.in_(ids))
        )
    }
    errors = _check_lines(wanted, lines, await _already(session, list(lines)))
    if errors:
        raise ReturnNotAllowed("Some items cannot be returned.", errors=errors)
    fulfilment_ids = {line.fulfilment_id for line in lines.values()}
    if len(fulfilment_ids) != 1:
        raise ReturnNotAllowed(
            "Return the items of one seller at a time.",
            errors=[{"field": "lines", "message": "these items came from different sellers"}],
        )
    fulfilment = await session.get(Fulfilment, fulfilment_ids.pop())
    assert fulfilment is not None  # order lines reference their fulfilment
    _check_fulfilment(fulfilment, datetime.now(UTC))
    ret = Return(
        order_id=order.id,
        fulfilment_id=fulfilment.id,
        vendor_id=fulfilment.vendor_id,
        user_id=user_id,
        status="requested",
        note=note,
        currency=order.currency,
    )
    session.add(ret)
    await session.flush()
    session.add_all(
        ReturnLine(return_id=ret.id, order_line_id=i.order_line_id, quantity=i.quantity, reason=i.reason)
        for i in wanted
    )
    await session.flush()
    return (await views(session, [ret]))[0]
