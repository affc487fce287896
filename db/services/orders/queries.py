"""Reading a shopper's own orders."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Fulfilment, Order, OrderLine, Payment
from db.pagination import Page, keyset_page
from db.services.orders.errors import OrderNotFound


@dataclass(frozen=True, slots=True)
class OrderView:
    order: Order
    lines: list[OrderLine]
    payments: list[Payment]
    fulfilments: list[Fulfilment]


async def _lines_by_order(session: AsyncSession, order_ids: list[UUID]) -> dict[UUID, list[OrderLine]]:
    grouped: dict[UUID, list[OrderLine]] = {order_id: [] for order_id in order_ids}
    if order_ids:
        lines = await session.scalars(
            select(OrderLine).where(OrderLine.order_id.in_(order_ids)).order_by(OrderLine.id)
        )
        for line in lines:
            grouped[line.order_id].append(line)
    return grouped


async def _fulfilments_by_order(session: AsyncSession, order_ids: list[UUID]) -> dict[UUID, list[Fulfilment]]:
    grouped: dict[UUID, list[Fulfilment]] = {order_id: [] for order_id in order_ids}
    if order_ids:
        found = await session.scalars(
            select(Fulfilment).where(Fulfilment.order_id.in_(order_ids)).order_by(Fulfilment.id)
        )
        for fulfilment in found:
            grouped[fulfilment.order_id].append(fulfilment)
    return grouped


async def own_order(session: AsyncSession, user_id: UUID, order_id: UUID) -> OrderView:
    """Raises OrderNotFound for a missing order or someone else's (indistinguishably)."""
    order = await session.scalar(select(Order).where(Order.id == order_id, Order.user_id == user_id))
    if order is None:
        raise OrderNotFound()
    return await order_view(session, order)


async def order_view(session: AsyncSession, order: Order) -> OrderView:
    lines = (await _lines_by_order(session, [order.id]))[order.id]
    payments = list(
        (
            await session.scalars(select(Payment).where(Payment.order_id == order.id).order_by(Payment.id))
        ).all()
    )
    fulfilments = (await _fulfilments_by_order(session, [order.id]))[order.id]
    return OrderView(order=order, lines=lines, payments=payments, fulfilments=fulfilments)


async def list_own_orders(
    session: AsyncSession, user_id: UUID, *, limit: int, cursor: str | None, status: str | None = None
) -> Page[OrderView]:
    """The shopper's orders, newest first, with their lines and fulfilments (three queries per page)."""
    stmt = select(Order).where(Order.user_id == user_id)
    if status is not None:
        stmt = stmt.where(Order.status == status)
    page = await keyset_page(session, stmt, Order.id, limit=limit, cursor=cursor)
    orders: list[Order] = list(page.items)
    ids = [o.id for o in orders]
    lines = await _lines_by_order(session, ids)
    fulfilments = await _fulfilments_by_order(session, ids)
    return Page(
        items=[
            OrderView(order=o, lines=lines[o.id], payments=[], fulfilments=fulfilments[o.id]) for o in orders
        ],
        next_cursor=page.next_cursor,
    )
