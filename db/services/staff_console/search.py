"""Searching every order: newest first, in keyset pages, narrowed by any of the filters.

Each filter walks an index: ``status`` ix_orders_status, the buyer ix_orders_user (after the
unique email), ``vendor`` ix_order_lines_vendor_order, ``reference`` the unique payment
reference, ``from``/``to`` ix_orders_created_at. A page costs three queries whatever its size:
the orders, their buyers, and the stores they hold lines of.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from sqlalchemy import Select, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Order, OrderLine, Payment, User
from db.pagination import Page, keyset_page
from db.services.identity.users import normalise_email
from db.services.staff_console.errors import InvalidOrderSearch

# RFC 3339 with its offset: a time without one would be read in some unknown zone.
_Moment = Annotated[datetime, msgspec.Meta(tz=True)]


@dataclass(frozen=True, slots=True)
class OrderSearch:
    """What to narrow the orders to; every filter given must hold (``None``: any)."""

    status: str | None = None
    vendor_id: UUID | None = None
    buyer_email: str | None = None
    reference: str | None = None
    # Half-open: created_at in [created_from, created_to).
    created_from: datetime | None = None
    created_to: datetime | None = None


@dataclass(frozen=True, slots=True)
class VendorName:
    id: UUID
    name: str


@dataclass(frozen=True, slots=True)
class OrderSummary:
    """One order of a search page, with its buyer and the stores it holds lines of (their names
    as the order recorded them), in the order those stores first appear in it."""

    order: Order
    buyer: User
    vendors: list[VendorName]


def parse_moment(value: str | None, name: str) -> datetime | None:
    """An RFC 3339 time with its offset (``2026-12-01T09:30:00Z``).

    Raises:
        InvalidOrderSearch: anything else (422, naming ``name``).
    """
    if value is None:
        return None
    try:
        return msgspec.convert(value, _Moment)
    except msgspec.ValidationError:
        raise InvalidOrderSearch(
            name, f"`{name}` must be an RFC 3339 time with its offset, such as 2026-12-01T09:30:00Z."
        ) from None


def order_search(
    *,
    status: str | None = None,
    vendor_id: UUID | None = None,
    buyer_email: str | None = None,
    reference: str | None = None,
    created_from: str | None = None,
    created_to: str | None = None,
) -> OrderSearch:
    """The search the query asked for, its times parsed (``from`` and ``to`` in the errors).

    Raises:
        InvalidOrderSearch: a time that is not RFC 3339 with an offset, or ``from`` not before
            ``to`` (422, naming the field).
    """
    start = parse_moment(created_from, "from")
    end = parse_moment(created_to, "to")
    if start is not None and end is not None and start >= end:
        raise InvalidOrderSearch("from", "`from` must be before `to` (the range includes `from`, not `to`).")
    return OrderSearch(
        status=status,
        vendor_id=vendor_id,
        buyer_email=normalise_email(buyer_email) if buyer_email is not None else None,
        reference=reference,
        created_from=start,
        created_to=end,
    )


def search_statement(search: OrderSearch) -> Select[Any]:
    """The orders ``search`` matches (unordered; the page orders them newest first by id)."""
    stmt = select(Order)
    if search.status is not None:
        stmt = stmt.where(Order.status == search.status)
    if search.vendor_id is not None:
        stmt = stmt.where(
            exists().where(OrderLine.order_id == Order.id, OrderLine.vendor_id == search.vendor_id)
        )
    if search.buyer_email is not None:
        stmt = stmt.where(Order.user_id.in_(select(User.id).where(User.email == search.buyer_email)))
    if search.reference is not None:
        stmt = stmt.where(Order.id.in_(select(Payment.order_id).where(Payment.reference == search.reference)))
    if search.created_from is not None:
        stmt = stmt.where(Order.created_at >= search.created_from)
    if search.created_to is not None:
        stmt = stmt.where(Order.created_at < search.created_to)
    return stmt


async def search_orders(
    session: AsyncSession, search: OrderSearch, *, limit: int, cursor: str | None
) -> Page[OrderSummary]:
    """The orders ``search`` matches, newest first (UUIDv7 ids are time-ordered), ``limit`` after
    ``cursor``; an order placed while someone pages never shifts the pages after it.

    Raises:
        InvalidInput: a cursor this did not make (422, field ``cursor``).
    """
    page = await keyset_page(session, search_statement(search), Order.id, limit=limit, cursor=cursor)
    orders: Sequence[Order] = page.items
    buyers = await _buyers(session, {order.user_id for order in orders})
    vendors = await _vendors(session, [order.id for order in orders])
    return Page(
        items=[OrderSummary(order, buyers[order.user_id], vendors.get(order.id, [])) for order in orders],
        next_cursor=page.next_cursor,
    )


async def _buyers(session: AsyncSession, user_ids: set[UUID]) -> dict[UUID, User]:
    if not user_ids:
        return {}
    return {user.id: user for user in await session.scalars(select(User).where(User.id.in_(user_ids)))}


async def _vendors(session: AsyncSession, order_ids: list[UUID]) -> dict[UUID, list[VendorName]]:
    """Order id -> the stores it holds lines of, in the order of their first line."""
    if not order_ids:
        return {}
    rows = await session.execute(
        select(OrderLine.order_id, OrderLine.vendor_id, OrderLine.vendor_name)
        .where(OrderLine.order_id.in_(order_ids))
        .order_by(OrderLine.order_id, OrderLine.id)
    )
    found: dict[UUID, list[VendorName]] = {}
    for order_id, vendor_id, name in rows.all():
        names = found.setdefault(order_id, [])
        if all(known.id != vendor_id for known in names):
            names.append(VendorName(vendor_id, name))
    return found
