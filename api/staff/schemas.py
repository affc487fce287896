"""Bodies of the staff endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from msgspec import Meta

from api.catalog.schemas import VendorRef
from api.common import Money
from api.identity.schemas import User
from core.rules.fulfilment import FulfilmentStatus
from core.rules.orders import Actor, OrderStatus


class RoleChange(msgspec.Struct, forbid_unknown_fields=True):
    role: Literal["client", "vendor", "staff"]


class UserStatus(msgspec.Struct, forbid_unknown_fields=True):
    status: Literal["active", "suspended"]


class UserList(msgspec.Struct):
    items: list[User]
    next_cursor: str | None


class AuditEvent(msgspec.Struct):
    id: UUID
    event_type: str
    created_at: datetime
    user_id: UUID | None
    actor_id: UUID | None
    ip: str | None
    user_agent: str | None
    request_id: str | None
    details: dict[str, Any]


class AuditEventList(msgspec.Struct):
    items: list[AuditEvent]
    next_cursor: str | None


# --- the order console ------------------------------------------------------------------------


class Buyer(msgspec.Struct):
    id: UUID
    email: str
    full_name: str


class StaffOrderSummary(msgspec.Struct):
    id: UUID
    status: OrderStatus
    buyer: Buyer
    # The stores the order holds lines of, named as the order recorded them.
    vendors: list[VendorRef]
    item_count: int
    subtotal: Money
    shipping_total: Money
    discount_total: Money
    total: Money
    created_at: datetime
    paid_at: datetime | None


class StaffOrderList(msgspec.Struct):
    items: list[StaffOrderSummary]
    next_cursor: str | None


class StaffOrderLine(msgspec.Struct):
    id: UUID
    fulfilment_id: UUID
    vendor: VendorRef
    product_id: UUID
    variant_id: UUID
    title: str
    sku: str
    size: str
    color: str
    quantity: int
    cancelled_quantity: int
    returned_quantity: int
    unit_price: Money
    line_total: Money
    discount: Money
    final_sale: bool


class ShippingMethodSnapshot(msgspec.Struct):
    """The shipping method as it was when the order was placed (``id`` null: the platform's
    default method)."""

    id: UUID | None
    name: str
    kind: str
    min_days: int
    max_days: int


class StaffFulfilment(msgspec.Struct):
    id: UUID
    status: FulfilmentStatus
    vendor: VendorRef
    shipping_method: ShippingMethodSnapshot
    shipping: Money
    carrier: str | None
    tracking_number: str | None
    tracking_url: str | None
    created_at: datetime
    packed_at: datetime | None
    shipped_at: datetime | None
    delivered_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None


class StaffPayment(msgspec.Struct):
    id: UUID
    provider: str
    reference: str
    status: str
    amount: Money
    refunded_amount: Money
    flag_reason: str | None
    created_at: datetime
    paid_at: datetime | None


class StaffRefund(msgspec.Struct):
    id: UUID
    payment_id: UUID
    amount: Money
    status: str
    reason: str
    fulfilment_id: UUID | None
    return_id: UUID | None
    created_at: datetime
    processed_at: datetime | None


class StaffReturnLine(msgspec.Struct):
    order_line_id: UUID
    quantity: int
    reason: str


class StaffReturn(msgspec.Struct):
    id: UUID
    status: str
    fulfilment_id: UUID
    vendor_id: UUID
    lines: list[StaffReturnLine]
    note: str | None
    vendor_note: str | None
    restocked: bool | None
    refund_amount: Money | None
    created_at: datetime
    decided_at: datetime | None
    received_at: datetime | None
    refunded_at: datetime | None


class WebhookEvent(msgspec.Struct):
    id: UUID
    provider: str
    reference: str
    event_type: str
    outcome: str | None
    received_at: datetime
    processed_at: datetime | None


class TimelineEntry(msgspec.Struct):
    """One move of the order (``fulfilment_id`` null) or of one of its fulfilments (the statuses
    are then the fulfilment's); ``from_status`` null is the order being placed."""

    from_status: str | None
    to_status: str
    actor: Actor
    actor_id: UUID | None
    reason: str | None
    fulfilment_id: UUID | None
    request_id: str | None
    at: datetime


class StaffOrderDetail(StaffOrderSummary):
    """The summary's fields, then everything else about the order."""

    shipping_address: dict[str, Any]
    expires_at: datetime
    closed_at: datetime | None
    lines: list[StaffOrderLine]
    fulfilments: list[StaffFulfilment]
    payments: list[StaffPayment]
    refunds: list[StaffRefund]
    returns: list[StaffReturn]
    webhook_events: list[WebhookEvent]
    timeline: list[TimelineEntry]


class DeadLetterError(msgspec.Struct):
    """A failed attempt of a parked job."""

    at: Annotated[float, Meta(description="When it failed (Unix time, seconds)")]
    attempt: int
    error: str


class DeadLetter(msgspec.Struct):
    id: str
    queue: str
    task_name: str
    task_id: str
    reason: Annotated[
        str,
        Meta(
            description="`deliveries`: never acknowledged (its workers died); `failed`: last attempt failed"
        ),
    ]
    deliveries: Annotated[int, Meta(description="Deliveries (`deliveries`) or attempts (`failed`)")]
    consumers: Annotated[list[str], Meta(description="Workers that took it and did not finish, oldest first")]
    errors: list[DeadLetterError]
    sent_at: Annotated[float | None, Meta(description="When it was sent (Unix time), if known")]
    parked_at: float


class DeadLetterList(msgspec.Struct):
    items: list[DeadLetter]
    next_cursor: str | None
    total: int


class Replayed(msgspec.Struct):
    queue: str
    task_id: str
    message_id: str
