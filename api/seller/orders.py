"""A vendor's sales: the orders holding their lines (only those lines) and sales statistics."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import requires_role
from api.common import Cursor, Limit, Money, money
from api.resources import AppResources
from api.seller import schemas
from api.seller.controllers import provide_store
from core.rules.orders import OrderStatus
from db.models import Vendor
from db.services.vendor_sales import orders, stats

# Dates arrive as text and are parsed by the service, so a bad one is reported under its query
# name (`from`, which cannot be a Python parameter name).
Day = Annotated[str | None, QueryParameter(description="YYYY-MM-DD, inclusive, UTC")]
FromDay = Annotated[str | None, QueryParameter(name="from", description="YYYY-MM-DD, inclusive, UTC")]


def _order_out(found: orders.VendorOrder) -> schemas.VendorOrder:
    order = found.order
    currency = order.currency
    return schemas.VendorOrder(
        id=order.id,
        status=order.status,  # type: ignore[arg-type]  # the column's CHECK constraint keeps it an OrderStatus
        created_at=order.created_at,
        paid_at=order.paid_at,
        currency=currency,
        lines=[
            schemas.VendorOrderLine(
                id=line.id,
                product_id=line.product_id,
                variant_id=line.variant_id,
                title=line.title,
                sku=line.sku,
                size=line.size,
                color=line.color,
                quantity=line.quantity,
                unit_price=money(line.unit_price_amount, currency),
                line_total=money(line.line_total_amount, currency),
            )
            for line in found.lines
        ],
        vendor_total=money(found.vendor_total, currency),
        shipping_address=order.shipping_address,
    )


def _stats_out(result: stats.SalesStats) -> schemas.SalesStats:
    def total(amount: int) -> Money:
        return money(amount, result.currency)

    return schemas.SalesStats(
        from_=result.start,
        to=result.end,
        currency=result.currency,
        revenue=total(result.revenue),
        orders=result.orders,
        units=result.units,
        top_products=[
            schemas.ProductSales(
                product_id=row.product_id, title=row.title, units=row.units, revenue=total(row.revenue)
            )
            for row in result.top_products
        ],
        daily=[
            schemas.DaySales(date=day.day, revenue=total(day.revenue), orders=day.orders, units=day.units)
            for day in result.daily
        ],
    )


class VendorOrdersController(Controller):
    path = "/vendor"
    tags = ["vendor"]
    guards = [requires_role("vendor")]
    dependencies = {"store": Provide(provide_store)}

    @get(
        "/orders",
        summary="Orders holding your items, newest first",
        description="Each order shows only your lines and their total (`vendor_total`); other "
        "vendors' lines, the order's grand total and the buyer's email are never included.",
    )
    async def list_orders(
        self,
        db_session: NamedDependency[AsyncSession],
        store: NamedDependency[Vendor],
        status: FromQuery[OrderStatus | None] = None,
        limit: Limit = 20,
        cursor: Cursor = None,
    ) -> schemas.VendorOrderList:
        page = await orders.list_vendor_orders(db_session, store, limit=limit, cursor=cursor, status=status)
        return schemas.VendorOrderList(
            items=[_order_out(found) for found in page.items], next_cursor=page.next_cursor
        )

    @get("/orders/{order_id:uuid}", summary="One order holding your items (only your lines)")
    async def read_order(
        self,
        order_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        store: NamedDependency[Vendor],
    ) -> schemas.VendorOrder:
        return _order_out(await orders.get_vendor_order(db_session, store, order_id))

    @get(
        "/stats",
        summary="Your sales over a range of days",
        description="Paid, fulfilled and delivered orders, each counted on the UTC day it was paid. "
        "`from`/`to` are inclusive (default: the last 30 days); at most 366 days. `daily` has an "
        "entry for every day of the range.",
    )
    async def sales_stats(
        self,
        db_session: NamedDependency[AsyncSession],
        store: NamedDependency[Vendor],
        resources: NamedDependency[AppResources],
        from_: FromDay = None,
        to: Day = None,
    ) -> schemas.SalesStats:
        result = await stats.sales_stats(
            db_session,
            store,
            currency=resources.settings.currency,
            start=stats.parse_day(from_, "from"),
            end=stats.parse_day(to, "to"),
        )
        return _stats_out(result)
