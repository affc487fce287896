"""Reading fulfilments: a vendor's own (staff: anyone's), one in full, or all of an order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.rules.orders import SOLD
from db.models import Fulfilment, Order, OrderLine
from db.pagination import Page, keyset_page
from db.services.fulfilment.errors import FulfilmentNotFound


@dataclass(frozen=True, slots=True)
class FulfilmentView:
    fulfilment: Fulfilment
    lines: list[OrderLine]
    order: Order


async def _views(session: AsyncSession, fulfilments: Sequence[Fulfilment]) -> list[FulfilmentView]:
    ids = [f.id for f in fulfilments]
    if not ids:
        return []
    lines: dict[UUID, list[OrderLine]] = {}
    for line in await session.scalars(
        select(OrderLine).where(OrderLine.fulfilment_id.in_(ids)).order_by(OrderLine.id)
    ):
        lines.setdefault(line.fulfilment_id, []).append(line)
    orders = {
        o.id: o
        for o in await session.scalars(select(Order).where(Order.id.in_({f.order_id for f in fulfilments})))
    }
    return [FulfilmentView(f, lines.get(f.id, []), orders[f.order_id]) for f in fulfilments]


async def list_fulfilments(
    session: AsyncSession,
    vendor_id: UUID | None,
    *,
    status: str | None,
    order_id: UUID | None = None,
    limit: int,
    cursor: str | None,
) -> Page[FulfilmentView]:
    """Fulfilments of paid orders, newest first; ``vendor_id`` None (staff) means every vendor's.

    Unpaid orders' fulfilments are not shown: there is nothing to ship until the money is in.

    Raises:
        InvalidInput: a cursor this did not make (422).
    """
    stmt = select(Fulfilment).join(Order, Order.id == Fulfilment.order_id).where(Order.paid_at.is_not(None))
    if vendor_id is not None:
        stmt = stmt.where(Fulfilment.vendor_id == vendor_id)
    if status is not None:
        stmt = stmt.where(Fulfilment.status == status)
    if order_id is not None:
        stmt = stmt.where(Fulfilment.order_id == order_id)
    page = await keyset_page(session, stmt, Fulfilment.id, limit=limit, cursor=cursor)
    return Page(items=await _views(session, page.items), next_cursor=page.next_cursor)


async def get_fulfilment(
    session: AsyncSession, fulfilment_id: UUID, vendor_id: UUID | None
) -> FulfilmentView:
    """One fulfilment of a paid order with its lines; another vendor's is not found.

    Raises:
        FulfilmentNotFound (404).
    """
    stmt = (
        select(Fulfilment)
        .join(Order, Order.id == Fulfilment.order_id)
        .where(Fulfilment.id == fulfilment_id, Order.paid_at.is_not(None))
    )
    if vendor_id is not None:
        stmt = stmt.where(Fulfilment.vendor_id == vendor_id)
    found = await session.scalar(stmt)
    if found is None:
        raise FulfilmentNotFound()
    return (await _views(session, [found]))[0]


async def of_order(session: AsyncSession, order_id: UUID) -> list[Fulfilment]:
    """An order's fulfilments, in the order they were made."""
    return list(
        (
            await session.scalars(
                select(Fulfilment).where(Fulfilment.order_id == order_id).order_by(Fulfilment.id)
            )
        ).all()
    )


def is_sold(order: Order) -> bool:
    return order.status in SOLD
