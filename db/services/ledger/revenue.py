"""The platform's revenue report: commission earned, provider fees paid and promotions funded,
by day, by vendor or by category, over a range of days (UTC, inclusive).

Day and vendor come straight from the ledger (commission, fee and promotion legs carry the
fulfilment, so the vendor). By category, commission is the order lines' own (their snapshotted
rate on what was paid for the units not cancelled or returned) for orders paid in the range, since
the ledger keeps commission per vendor's part rather than per line; fees and promotions are
then shared over the lines by what was paid for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

GroupBy = Literal["day", "vendor", "category"]


@dataclass(frozen=True, slots=True)
class RevenueRow:
    key: str
    label: str
    commission: int
    provider_fees: int
    promotions: int


_BY_LEDGER = """
    SELECT {key} AS key, {label} AS label,
           -coalesce(sum(e.amount) FILTER (WHERE a.code = 'platform_commission'), 0),
           coalesce(sum(e.amount) FILTER (WHERE a.code = 'provider_fees'), 0),
           coalesce(sum(e.amount) FILTER (WHERE a.code = 'platform_promotions'), 0)
    FROM ledger_entries e
    JOIN ledger_accounts a ON a.id = e.account_id
    JOIN ledger_transactions t ON t.id = e.transaction_id
    LEFT JOIN fulfilments f ON f.id = e.fulfilment_id
    LEFT JOIN vendors v ON v.id = f.vendor_id
    WHERE a.code IN ('platform_commission', 'provider_fees', 'platform_promotions')
      AND t.currency = :currency AND t.occurred_at >= :start AND t.occurred_at < :end
    GROUP BY 1, 2 ORDER BY 1
"""
_GROUPS = {
    "day": (
        "to_char(t.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
        "to_char(t.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
    ),
    "vendor": ("coalesce(v.id::text, '')", "coalesce(v.name, 'not attributed')"),
}
_BY_CATEGORY = """
    SELECT c.id::text, c.name,
           sum((l.unit_price_amount * (l.quantity - l.cancelled_quantity - l.returned_quantity))
               * l.commission_bps / 10000),
           0, 0
    FROM order_lines l
    JOIN orders o ON o.id = l.order_id
    JOIN products p ON p.id = l.product_id
    JOIN categories c ON c.id = p.category_id
    WHERE o.paid_at >= :start AND o.paid_at < :end AND o.currency = :currency
      AND o.status IN ('paid', 'partially_shipped', 'shipped', 'delivered', 'refunded', 'cancelled')
    GROUP BY 1, 2 ORDER BY 2
"""


async def revenue(
    session: AsyncSession, *, currency: str, start: date, end: date, group_by: GroupBy
) -> list[RevenueRow]:
    """One row per day, vendor or category with anything in the range."""
    params = {
        "currency": currency,
        "start": datetime.combine(start, time.min, UTC),
        "end": datetime.combine(end + timedelta(days=1), time.min, UTC),
    }
    if group_by == "category":
        sql = _BY_CATEGORY
    else:
        key, label = _GROUPS[group_by]
        sql = _BY_LEDGER.format(key=key, label=label)
    rows = await session.execute(text(sql), params)
    return [RevenueRow(str(k), str(lbl), int(c), int(f), int(p)) for k, lbl, c, f, p in rows.all()]
