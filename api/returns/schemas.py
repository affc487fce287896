"""Bodies of the return endpoints (shoppers ask, vendors decide and receive)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec
from msgspec import Meta

from api.catalog.schemas import VendorRef
from api.common import Money

ReturnStatus = Literal["requested", "approved", "rejected", "received", "refunded"]
Note = Annotated[str, Meta(min_length=1, max_length=1000, pattern=r"\S")]


class ReturnLineIn(msgspec.Struct, forbid_unknown_fields=True):
    order_line_id: UUID
    quantity: Annotated[int, Meta(ge=1, le=1000)]
    reason: Annotated[str, Meta(min_length=1, max_length=500, pattern=r"\S")]


class ReturnIn(msgspec.Struct, forbid_unknown_fields=True):
    lines: Annotated[list[ReturnLineIn], Meta(min_length=1, max_length=100)]
    note: Note | None = None


class DecisionIn(msgspec.Struct, forbid_unknown_fields=True):
    note: Note | None = None


class RejectionIn(msgspec.Struct, forbid_unknown_fields=True):
    # The shopper is told why.
    note: Note


class ReceiptIn(msgspec.Struct, forbid_unknown_fields=True):
    # False when the items cannot be sold again (damaged, worn): they stay out of stock.
    restock: bool


class ReturnLine(msgspec.Struct):
    order_line_id: UUID
    title: str
    size: str
    color: str
    quantity: int
    reason: str
    unit_price: Money


class Return(msgspec.Struct):
    id: UUID
    order_id: UUID
    fulfilment_id: UUID
    vendor: VendorRef
    status: ReturnStatus
    lines: list[ReturnLine]
    note: str | None
    vendor_note: str | None
    # What was (or is being) refunded: set when the vendor received the items.
    refund: Money | None
    restocked: bool | None
    created_at: datetime
    decided_at: datetime | None
    received_at: datetime | None
    refunded_at: datetime | None


class ReturnList(msgspec.Struct):
    items: list[Return]
    next_cursor: str | None = None
