"""Bodies of the cart, order and payment endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec
from msgspec import Meta

from api.catalog.schemas import VendorRef
from api.common import Money

Quantity = Annotated[
    int, Meta(ge=1, le=1000, description="Units (capped per line by ORDER_LINE_MAX_QUANTITY)")
]


OrderStatus = Literal["pending_payment", "paid", "fulfilled", "delivered", "cancelled", "expired", "refunded"]
Line = Annotated[str, Meta(min_length=1, max_length=200, pattern=r"\S")]
Optional = Annotated[str, Meta(max_length=200)]


class CartItemIn(msgspec.Struct, forbid_unknown_fields=True):
    variant_id: UUID
    quantity: Quantity


class CartItemUpdate(msgspec.Struct, forbid_unknown_fields=True):
    quantity: Quantity


class CartItem(msgspec.Struct):
    id: UUID
    variant_id: UUID
    product_id: UUID
    title: str
    sku: str
    size: str
    color: str
    thumbnail_url: str | None
    vendor_id: UUID
    quantity: int
    unit_price: Money
    line_total: Money
    # Listed and enough stock for the quantity right now (stock is only reserved by an order).
    available: bool


class Cart(msgspec.Struct):
    items: list[CartItem]
    item_count: int
    subtotal: Money


class ShippingAddress(msgspec.Struct, forbid_unknown_fields=True):
    full_name: Line
    line1: Line
    city: Line
    country: Annotated[str, Meta(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")]
    line2: Optional | None = None
    state: Optional | None = None
    postal_code: Annotated[str, Meta(max_length=20)] | None = None
    phone: Annotated[str, Meta(max_length=21, pattern=r"^\+?[0-9 ()\-]{6,20}$")] | None = None


class OrderItemIn(msgspec.Struct, forbid_unknown_fields=True):
    variant_id: UUID
    quantity: Quantity


class OrderCreate(msgspec.Struct, forbid_unknown_fields=True):
    shipping_address: ShippingAddress
    # Omitted: the cart's items (the cart is emptied of them once the order is placed).
    items: Annotated[list[OrderItemIn], Meta(min_length=1, max_length=100)] | None = None


class OrderLine(msgspec.Struct):
    id: UUID
    variant_id: UUID
    product_id: UUID
    vendor: VendorRef
    title: str
    sku: str
    size: str
    color: str
    quantity: int
    unit_price: Money
    line_total: Money


class PaymentSummary(msgspec.Struct):
    provider: str
    reference: str
    status: str
    amount: Money
    created_at: datetime


class Order(msgspec.Struct):
    id: UUID
    status: OrderStatus
    lines: list[OrderLine]
    item_count: int
    subtotal: Money
    shipping: Money
    total: Money
    shipping_address: dict[str, str | None]
    # Until when the stock is held for an unpaid order.
    expires_at: datetime
    paid_at: datetime | None
    created_at: datetime
    payments: list[PaymentSummary] | None = None


class OrderList(msgspec.Struct):
    items: list[Order]
    next_cursor: str | None


class PaymentStarted(msgspec.Struct):
    provider: str
    reference: str
    authorization_url: str
    amount: Money


class StaffOrderMove(msgspec.Struct, forbid_unknown_fields=True):
    status: Literal["fulfilled", "delivered", "refunded", "cancelled"]
    reason: Annotated[str, Meta(max_length=500)] | None = None


class WebhookAck(msgspec.Struct):
    status: Literal["queued", "stored", "duplicate"]


class SandboxCheckout(msgspec.Struct):
    reference: str
    webhook_status: int
