"""Bodies of the fulfilment endpoints (vendors and staff), and the fulfilments shown in orders."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec
from msgspec import Meta

from api.catalog.schemas import VendorRef
from api.common import Money

FulfilmentStatus = Literal["pending", "packed", "shipped", "delivered", "cancelled"]
Reason = Annotated[str, Meta(min_length=1, max_length=500, pattern=r"\S")]


class ShippingMethodRef(msgspec.Struct):
    # Null for the platform's default method.
    id: UUID | None
    name: str
    kind: str
    days: tuple[int, int]


class FulfilmentLine(msgspec.Struct):
    order_line_id: UUID
    variant_id: UUID
    product_id: UUID
    title: str
    sku: str
    size: str
    color: str
    quantity: int
    cancelled_quantity: int
    returned_quantity: int
    unit_price: Money
    line_total: Money
    final_sale: bool


class Fulfilment(msgspec.Struct):
    id: UUID
    order_id: UUID
    vendor: VendorRef
    status: FulfilmentStatus
    lines: list[FulfilmentLine]
    shipping_method: ShippingMethodRef
    shipping: Money
    carrier: str | None
    tracking_number: str | None
    tracking_url: str | None
    return_window_days: int
    packed_at: datetime | None
    shipped_at: datetime | None
    delivered_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    # Until when its delivered lines may be returned (delivered fulfilments only).
    return_until: datetime | None = None


class VendorFulfilment(Fulfilment, kw_only=True):
    """A fulfilment as its vendor sees it: with the order's status and where to ship."""

    order_status: str
    order_created_at: datetime
    shipping_address: dict[str, str | None]


class FulfilmentList(msgspec.Struct):
    items: list[VendorFulfilment]
    next_cursor: str | None


class ShipIn(msgspec.Struct, forbid_unknown_fields=True):
    carrier: Annotated[str, Meta(min_length=1, max_length=60, pattern=r"\S")]
    tracking_number: Annotated[
        str, Meta(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._\-/]*$")
    ]
    tracking_url: Annotated[str, Meta(max_length=500, pattern=r"^https?://\S+$")] | None = None


class CancelLine(msgspec.Struct, forbid_unknown_fields=True):
    order_line_id: UUID
    quantity: Annotated[int, Meta(ge=1, le=1000)]


class CancelIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: Reason
    # Omitted: the whole fulfilment (everything not yet cancelled).
    lines: Annotated[list[CancelLine], Meta(min_length=1, max_length=100)] | None = None
