"""Response bodies of a vendor's sales view: their orders (own lines only) and statistics."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

import msgspec

from api.common import Money
from core.rules.orders import OrderStatus


class VendorOrderLine(msgspec.Struct):
    id: UUID
    product_id: UUID
    variant_id: UUID
    title: str
    sku: str
    size: str
    color: str
    quantity: int
    unit_price: Money
    line_total: Money


class VendorOrder(msgspec.Struct):
    """An order as this vendor sees it: only their lines, and ``vendor_total`` = what those add up to.

    The order's grand total, other vendors' lines and the buyer's email are never included.
    """

    id: UUID
    status: OrderStatus
    created_at: datetime
    paid_at: datetime | None
    currency: str
    lines: list[VendorOrderLine]
    vendor_total: Money
    shipping_address: dict[str, Any]


class VendorOrderList(msgspec.Struct):
    items: list[VendorOrder]
    next_cursor: str | None


class ProductSales(msgspec.Struct):
    product_id: UUID
    title: str
    units: int
    revenue: Money


class DaySales(msgspec.Struct):
    date: date
    revenue: Money
    orders: int
    units: int


class SalesStats(msgspec.Struct):
    """Sales of paid, fulfilled and delivered orders, each on the UTC day it was paid."""

    from_: date = msgspec.field(name="from")
    to: date
    currency: str
    revenue: Money
    orders: int
    units: int
    top_products: list[ProductSales]
    daily: list[DaySales]
