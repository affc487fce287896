"""Returns with their lines, as the shopper, the vendor and staff read them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import OrderLine, Return, ReturnLine
from db.pagination import Page, keyset_page


@dataclass(frozen=True, slots=True)
class ReturnView:
    ret: Return
    # (return line, the order line it returns)
    lines: list[tuple[ReturnLine, OrderLine]]


async def views(session: AsyncSession, returns: Sequence[Return]) -> list[ReturnView]:
    ids = [r.id for r in returns]
    if not ids:
        return []
    rows = await session.execute(
        select(ReturnLine, OrderLine)
        .join(OrderLine, OrderLine.id == ReturnLine.order_line_id)
        .where(ReturnLine.return_id.in_(ids))
        .order_by(ReturnLine.id)
    )
    lines: dict[UUID, list[tuple[ReturnLine, OrderLine]]] = {}
    for return_line, order_line in rows.all():
        lines.setdefault(return_line.return_id, []).append((return_line, order_line))
    return [ReturnView(r, lines.get(r.id, [])) for r in returns]


async def of_order(session: AsyncSession, order_id: UUID) -> list[ReturnView]:
    found = await session.scalars(select(Return).where(Return.order_id == order_id).order_by(Return.id))
    return await views(session, list(found))


async def of_vendor(
    session: AsyncSession, vendor_id: UUID, *, status: str | None, limit: int, cursor: str | None
) -> Page[ReturnView]:
    """A vendor's returns, newest first.

    Raises:
        InvalidInput: a cursor this did not make (422).
    """
    stmt = select(Return).where(Return.vendor_id == vendor_id)
    if status is not None:
        stmt = stmt.where(Return.status == status)
    page = await keyset_page(session, stmt, Return.id, limit=limit, cursor=cursor)
    return Page(items=await views(session, page.items), next_cursor=page.next_cursor)
