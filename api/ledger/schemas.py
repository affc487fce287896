"""Bodies of the vendor statement and the staff revenue report."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

import msgspec

from api.common import Money, SignedMoney


class StatementLine(msgspec.Struct):
    id: UUID
    at: datetime
    kind: str
    description: str
    # Which balance it moved: earnings wait in "pending" until their return window is over.
    account: Literal["pending", "available"]
    # What the vendor earned (positive) or was taken back (negative: refunds, payouts).
    amount: SignedMoney
    order_id: UUID | None
    fulfilment_id: UUID | None
    payout_id: UUID | None


class Statement(msgspec.Struct):
    items: list[StatementLine]
    next_cursor: str | None


class RevenueRow(msgspec.Struct):
    key: str
    label: str
    commission: Money
    provider_fees: Money
    promotions: Money


class RevenueReport(msgspec.Struct):
    group_by: Literal["day", "vendor", "category"]
    # Inclusive days (UTC).
    start: str
    end: str
    rows: list[RevenueRow]
    total: RevenueRow
