"""Bodies of the payout endpoints (vendors' payout account, balance and payouts; staff's console)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec
from msgspec import Meta

from api.catalog.schemas import VendorRef
from api.common import Money, SignedMoney

PayoutStatus = Literal["pending", "processing", "paid", "failed", "reversed"]
Requester = Literal["vendor", "schedule", "staff"]


class PayoutAccountIn(msgspec.Struct, forbid_unknown_fields=True):
    # The bank's code as the provider lists it (Paystack: "058", "044", ...).
    bank_code: Annotated[str, Meta(pattern=r"^[0-9]{3,6}$", description="The bank's code")]
    # Digits only; the provider decides whether it resolves (a NUBAN is 10 digits).
    account_number: Annotated[str, Meta(pattern=r"^[0-9]{6,20}$", description="The account number")]


class PayoutAccount(msgspec.Struct):
    """The account payouts go to; its number is never shown again, only its last 4 digits."""

    bank_code: str
    account_number: str  # masked: "******6789"
    account_last4: str
    account_name: str  # as the provider resolved it
    currency: str
    updated_at: datetime


PayoutAmount = Annotated[int, Meta(ge=1, le=10**13, description="Minor units; at most what is available")]


class PayoutIn(msgspec.Struct, forbid_unknown_fields=True):
    # Left out: the whole available balance.
    amount: PayoutAmount | None = None


class Balance(msgspec.Struct):
    # Earnings inside their return windows, not yet payable.
    pending: SignedMoney
    # What can be paid out now.
    available: SignedMoney
    # Payouts made and not yet settled (pending or processing).
    in_transit: Money


class Payout(msgspec.Struct):
    id: UUID
    amount: Money
    status: PayoutStatus
    reference: str
    requested_by: Requester
    bank_code: str
    account_last4: str
    transfer_code: str | None
    failure_reason: str | None
    created_at: datetime
    sent_at: datetime | None
    completed_at: datetime | None


class PayoutList(msgspec.Struct):
    items: list[Payout]
    next_cursor: str | None


class StaffPayout(msgspec.Struct):
    payout: Payout
    vendor: VendorRef
    vendor_payouts_on_hold: bool


class StaffPayoutList(msgspec.Struct):
    items: list[StaffPayout]
    next_cursor: str | None


class HoldIn(msgspec.Struct, forbid_unknown_fields=True):
    # Kept with the hold and in the audit log.
    reason: Annotated[str, Meta(min_length=1, max_length=500, pattern=r"\S")]


class PayoutHold(msgspec.Struct):
    vendor_id: UUID
    payouts_on_hold: bool
    reason: str | None
    held_at: datetime | None
