"""A vendor's sales over a range of days: revenue, orders, units, best sellers, day by day.

Only orders that were paid for and not taken back count (``core.rules.orders.SOLD``), each on the UTC
day it was paid. Revenue is the sum of the vendor's own line totals, never the order's total.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, ColumnElement, Date, Select, cast, distinct, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.rules.orders import SOLD
from db.models import Order, OrderLine, Product, Vendor
from db.services.vendor_sales.errors import InvalidDateRange

DEFAULT_RANGE_DAYS = 30
MAX_RANGE_DAYS = 366
TOP_PRODUCTS = 10
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True, slots=True)
class ProductSales:
    product_id: UUID
    title: str
    units: int
    revenue: int


@dataclass(frozen=True, slots=True)
class DaySales:
    day: date
    revenue: int
    orders: int
    units: int


@dataclass(frozen=True, slots=True)
class SalesStats:
    start: date
    end: date
    currency: str
    revenue: int
    orders: int
    units: int
    top_products: list[ProductSales]
    daily: list[DaySales]


def parse_day(value: str | None, field: str) -> date | None:
    """A ``YYYY-MM-DD`` query value as a date. Raises InvalidDateRange (422, naming ``field``)."""
    if value is None:
        return None
    # fromisoformat also reads "20250301" and week dates; only the one spelling is accepted.
    if _DAY.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:  # 2025-02-30
            pass
    raise InvalidDateRange(field, f"`{field}` must be a date written YYYY-MM-DD.")


def resolve_range(start: date | None, end: date | None, *, today: date) -> tuple[date, date]:
    """The inclusive day range asked for; by default the last 30 days up to ``today``.

    Raises InvalidDateRange (422, field ``from``): ``from`` after ``to``, or more than 366 days.
    """
    end = end or today
    start = start or end - timedelta(days=DEFAULT_RANGE_DAYS - 1)
    if start > end:
        raise InvalidDateRange("from", "`from` must be on or before `to`.")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise InvalidDateRange("from", f"The range may span at most {MAX_RANGE_DAYS} days.")
    return start, end


def _paid_day() -> ColumnElement[date]:
    # The zone is written into the SQL rather than bound: GROUP BY must repeat the select
    # expression exactly, and two bind parameters never compare equal.
    return cast(func.timezone(literal_column("'UTC'"), Order.paid_at), Date)


def _sold_lines(store: Vendor, currency: str, start: date, end: date) -> list[ColumnElement[bool]]:
    """Conditions on ``order_lines`` joined with ``orders``: ``store``'s lines of orders sold and
    paid within [start, end]."""
    return [
        # Leads with vendor_id so the planner walks ix_order_lines_vendor_order.
        OrderLine.vendor_id == store.id,
        Order.status.in_(sorted(SOLD)),
        # Amounts in different currencies cannot be summed; the marketplace sells in one.
        Order.currency == currency,
        Order.paid_at >= datetime.combine(start, time.min, tzinfo=UTC),
        Order.paid_at < datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC),
    ]


def daily_statement(store: Vendor, currency: str, start: date, end: date) -> Select[Any]:
    """Per paid day, plus one grand-total row (``is_total``), in a single pass."""
    day = _paid_day()
    return (
        select(
            day.label("day"),
            func.grouping(day).label("is_total"),
            cast(func.coalesce(func.sum(OrderLine.line_total_amount), 0), BigInteger).label("revenue"),
            func.count(distinct(OrderLine.order_id)).label("orders"),
            func.coalesce(func.sum(OrderLine.quantity), 0).label("units"),
        )
        .select_from(OrderLine)
        .join(Order, Order.id == OrderLine.order_id)
        .where(*_sold_lines(store, currency, start, end))
        .group_by(func.rollup(day))
    )


def top_products_statement(store: Vendor, currency: str, start: date, end: date) -> Select[Any]:
    """The best sellers by revenue, then units, with their current titles."""
    revenue = cast(func.sum(OrderLine.line_total_amount), BigInteger).label("revenue")
    units = func.sum(OrderLine.quantity).label("units")
    top = (
        select(OrderLine.product_id, revenue, units)
        .join(Order, Order.id == OrderLine.order_id)
        .where(*_sold_lines(store, currency, start, end))
        .group_by(OrderLine.product_id)
        .order_by(revenue.desc(), units.desc(), OrderLine.product_id)
        .limit(TOP_PRODUCTS)
        .subquery()
    )
    return (
        select(top.c.product_id, Product.title, top.c.revenue, top.c.units)
        .join(Product, Product.id == top.c.product_id)
        .order_by(top.c.revenue.desc(), top.c.units.desc(), top.c.product_id)
    )


async def sales_stats(
    session: AsyncSession,
    store: Vendor,
    *,
    currency: str,
    start: date | None = None,
    end: date | None = None,
    today: date | None = None,
) -> SalesStats:
    """``store``'s sales from ``start`` to ``end`` (inclusive UTC days; see :func:`resolve_range`).

    ``daily`` has one entry for every day of the range, zeros included, oldest first.

    Raises InvalidDateRange (422, field ``from``) for an inverted or too long range.
    """
    start, end = resolve_range(start, end, today=today or datetime.now(UTC).date())
    by_day: dict[date, DaySales] = {}
    totals = DaySales(day=start, revenue=0, orders=0, units=0)
    for row in (await session.execute(daily_statement(store, currency, start, end))).all():
        sales = DaySales(day=row.day, revenue=int(row.revenue), orders=int(row.orders), units=int(row.units))
        if row.is_total:
            totals = sales
        else:
            by_day[row.day] = sales
    top = [
        ProductSales(
            product_id=row.product_id, title=row.title, units=int(row.units), revenue=int(row.revenue)
        )
        for row in (await session.execute(top_products_statement(store, currency, start, end))).all()
    ]
    days = (end - start).days + 1
    daily = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        daily.append(by_day.get(day) or DaySales(day=day, revenue=0, orders=0, units=0))
    return SalesStats(
        start=start,
        end=end,
        currency=currency,
        revenue=totals.revenue,
        orders=totals.orders,
        units=totals.units,
        top_products=top,
        daily=daily,
    )
