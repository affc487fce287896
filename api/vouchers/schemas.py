"""Bodies of the voucher endpoints: a code applied to the cart, and codes issued by stores and staff."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec
from msgspec import Meta

from api.common import Currency, Money

Code = Annotated[
    str,
    Meta(
        min_length=3,
        max_length=40,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Letters, digits, '-' and '_'; kept upper-cased and unique without regard to case",
    ),
]
Kind = Literal["percent", "fixed"]
Scope = Literal["cart", "vendor", "category", "products"]
FundedBy = Literal["platform", "vendor"]
Uses = Annotated[int, Meta(ge=1, le=10_000_000)]
Moment = Annotated[datetime, Meta(tz=True, description="RFC 3339 with an offset")]


class CodeIn(msgspec.Struct, forbid_unknown_fields=True):
    code: Annotated[str, Meta(min_length=1, max_length=40)]


class Amount(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An amount in minor units of the marketplace currency."""

    amount: Annotated[int, Meta(ge=0, le=10**10, description="Integer minor units (kobo, cents)")]
    currency: Currency


class VoucherCreate(msgspec.Struct, forbid_unknown_fields=True):
    code: Code
    kind: Kind
    value: Annotated[
        int,
        Meta(
            ge=1,
            le=10**10,
            description="percent: basis points, 100 (1 %) to 10000 (100 %); fixed: minor units of the "
            "marketplace currency",
        ),
    ]
    # What the code covers: the whole cart (no ids), stores, categories (sub-categories included)
    # or products. A store's code covers only the store's own items whatever its scope.
    scope: Scope = "cart"
    scope_ids: Annotated[list[UUID], Meta(max_length=100)] = msgspec.field(default_factory=list)
    # On the subtotal of the items the code covers.
    min_subtotal: Amount | None = None
    max_discount: Amount | None = None
    # Omitted: from now; ends_at omitted: no end.
    starts_at: Moment | None = None
    ends_at: Moment | None = None
    per_customer_limit: Uses | None = None
    total_cap: Uses | None = None
    active: bool = True


class VoucherUpdate(msgspec.Struct, forbid_unknown_fields=True):
    # False stops the code (uses already taken stay with their orders); true starts it again.
    active: bool


class Voucher(msgspec.Struct):
    id: UUID
    code: str
    funded_by: FundedBy
    vendor_id: UUID | None
    kind: Kind
    value: int
    scope: Scope
    scope_ids: list[UUID]
    min_subtotal: Money
    max_discount: Money | None
    starts_at: datetime
    ends_at: datetime | None
    per_customer_limit: int | None
    total_cap: int | None
    # Orders placed with the code so far.
    redeemed_count: int
    active: bool
    created_at: datetime


class VoucherList(msgspec.Struct):
    items: list[Voucher]
    next_cursor: str | None
