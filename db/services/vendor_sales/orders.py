"""The orders holding a vendor's lines, each cut down to those lines."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Order, OrderLine, Vendor
from db.pagination import Page, cursor_id, encode_cursor
from db.services.vendor_sales.errors import VendorOrderNotFound


@dataclass(frozen=True, slots=True)
class VendorOrder:
    """An order as one vendor may see it: their own lines and what those add up to."""

    order: Order
    lines: Sequence[OrderLine]

    @property
    def vendor_total(self) -> int:
        return sum(line.line_total_amount for line in self.lines)


async def list_vendor_orders(
    session: AsyncSession, store: Vendor, *, limit: int, cursor: str | None, status: str | None = None
) -> Page[VendorOrder]:
    """Orders holding ``store``'s lines, newest first, optionally only those in ``status``.

    Raises InvalidInput (422, field ``cursor``) for a cursor this function did not produce.
    """
    before = cursor_id(cursor) if cursor is not None else None
    order_ids = list((await session.scalars(page_ids_statement(store, status, before, limit + 1))).all())
    more = len(order_ids) > limit
    order_ids = order_ids[:limit]
    items = await _load(session, store, order_ids)
    next_cursor = encode_cursor([str(order_ids[-1])]) if more and order_ids else None
    return Page(items=items, next_cursor=next_cursor)


def page_ids_statement(store: Vendor, status: str | None, before: UUID | None, limit: int) -> Select[Any]:
    """Ids of the orders holding ``store``'s lines, newest first, older than ``before``."""
    # Walks ix_order_lines_vendor_order backwards: order ids are UUIDv7, so id order is time
    # order, and the page is found without touching other vendors' lines.
    stmt = select(OrderLine.order_id).where(OrderLine.vendor_id == store.id)
    if status is not None:
        stmt = stmt.join(Order, Order.id == OrderLine.order_id).where(Order.status == status)
    if before is not None:
        stmt = stmt.where(OrderLine.order_id < before)
    return stmt.distinct().order_by(OrderLine.order_id.desc()).limit(limit)


async def get_vendor_order(session: AsyncSession, store: Vendor, order_id: UUID) -> VendorOrder:
    """One order with only ``store``'s lines.

    Raises VendorOrderNotFound (404) when the order does not exist or holds none of its lines.
    """
    found = await _load(session, store, [order_id])
    if not found:
        raise VendorOrderNotFound()
    return found[0]


async def _load(session: AsyncSession, store: Vendor, order_ids: list[UUID]) -> list[VendorOrder]:
    """The orders ``order_ids`` with ``store``'s lines, in the given order (two queries)."""
    if not order_ids:
        return []
    lines = (
        await session.scalars(
            select(OrderLine)
            .where(OrderLine.vendor_id == store.id, OrderLine.order_id.in_(order_ids))
            .order_by(OrderLine.order_id, OrderLine.id)
        )
    ).all()
    by_order: dict[UUID, list[OrderLine]] = defaultdict(list)
    for line in lines:
        by_order[line.order_id].append(line)
    if not by_order:
        return []
    orders = {
        order.id: order
        for order in (await session.scalars(select(Order).where(Order.id.in_(list(by_order))))).all()
    }
    return [VendorOrder(order=orders[oid], lines=by_order[oid]) for oid in order_ids if oid in by_order]
