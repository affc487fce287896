"""Bodies of the cart, order and payment endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec
from msgspec import Meta

from api.catalog.schemas import VendorRef
from api.common import Money
from api.fulfilment.schemas import Fulfilment

Quantity = Annotated[
    int, Meta(ge=1, le=1000, description="Units (capped per line by ORDER_LINE_MAX_QUANTITY)")
]


OrderStatus = Literal[
    "pending_payment", "paid", "partially_shipped", "shipped", "delivered", "cancelled", "expired", "refunded"
]
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


class CartVoucher(msgspec.Struct):
    """The code applied to the cart (POST /cart/voucher) and what it takes off the cart now."""

    code: str
    discount: Money
    # Why it takes nothing off now (the cart changed, it expired, ...): it stays applied, and
    # ordering the cart with it is refused until it applies again or is removed.
    problem: str | None


class Cart(msgspec.Struct):
    items: list[CartItem]
    item_count: int
    subtotal: Money
    # What the applied code takes off the subtotal (0 without one); total = subtotal - discount,
    # before shipping (chosen at checkout).
    discount: Money
    total: Money
    voucher: CartVoucher | None = None


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


class ShippingChoice(msgspec.Struct, forbid_unknown_fields=True):
    vendor_id: UUID
    method_id: UUID


class OrderCreate(msgspec.Struct, forbid_unknown_fields=True):
    shipping_address: ShippingAddress
    # Omitted: the cart's items (the cart is emptied of them once the order is placed).
    items: Annotated[list[OrderItemIn], Meta(min_length=1, max_length=100)] | None = None
    # The method per vendor (GET /cart/shipping-options lists them); a vendor left out ships
    # with its cheapest method for the address.
    shipping: Annotated[list[ShippingChoice], Meta(max_length=100)] | None = None
    # A voucher code; omitted when ordering the cart, the code applied to the cart (if any).
    voucher_code: Annotated[str, Meta(min_length=1, max_length=40)] | None = None


class OrderLine(msgspec.Struct):
    id: UUID
    fulfilment_id: UUID
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
    cancelled_quantity: int
    returned_quantity: int
    final_sale: bool
    # The line's share of the order's voucher discount (refunds give back the line less it).
    discount: Money | None = None


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
    # shipping_total (v1.1); `shipping` is the same amount, kept for v1.0 clients.
    shipping: Money
    shipping_total: Money
    discount_total: Money
    total: Money
    # One per vendor: its lines, shipping method and price, status and tracking.
    fulfilments: list[Fulfilment]
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
    # Shipping and delivery move per fulfilment (POST /staff/fulfilments/{id}/...).
    status: Literal["refunded", "cancelled"]
    reason: Annotated[str, Meta(max_length=500)] | None = None


class WebhookAck(msgspec.Struct):
    status: Literal["queued", "stored", "duplicate"]


class SandboxCheckout(msgspec.Struct):
    reference: str
    webhook_status: int
