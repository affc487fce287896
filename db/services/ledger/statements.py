"""A vendor's statement: the entries of its pending and available accounts, newest first.

Amounts are from the vendor's side: what it earned is positive, what was taken back (refunds,
payouts) negative. Pages are keyset pages on the entry id (time-ordered); ``from``/``to`` are
days (UTC, inclusive) of when the money moved.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import LedgerAccount, LedgerEntry, LedgerTransaction
from db.pagination import Page, cursor_id, encode_cursor
from db.services.vendor_sales.errors import InvalidDateRange


@dataclass(frozen=True, slots=True)
class StatementLine:
    id: UUID
    occurred_at: datetime
    kind: str
    description: str
    account: str  # "pending" | "available"
    amount: int  # the vendor's side: earned positive
    currency: str
    order_id: UUID | None
    fulfilment_id: UUID | None
    payout_id: UUID | None


# In StatementLine's order (see _line).
_COLUMNS: list[Any] = [
    LedgerEntry.id,
    LedgerTransaction.occurred_at,
    LedgerTransaction.kind,
    LedgerTransaction.description,
    LedgerAccount.code,
    LedgerEntry.amount,
    LedgerEntry.currency,
    LedgerTransaction.order_id,
    LedgerEntry.fulfilment_id,
    LedgerTransaction.payout_id,
]


def _statement(vendor_id: UUID, start: date | None, end: date | None) -> Select[Any]:
    stmt = (
        select(*_COLUMNS)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .where(LedgerAccount.vendor_id == vendor_id)
    )
    if start is not None:
        stmt = stmt.where(LedgerTransaction.occurred_at >= datetime.combine(start, time.min, UTC))
    if end is not None:
        stmt = stmt.where(
            LedgerTransaction.occurred_at < datetime.combine(end + timedelta(days=1), time.min, UTC)
        )
    return stmt


def _line(row: Any) -> StatementLine:
    entry_id, at, kind, description, code, amount, currency, order_id, fulfilment_id, payout_id = row
    return StatementLine(
        id=entry_id,
        occurred_at=at,
        kind=kind,
        description=description,
        account="pending" if code.startswith("vendor_pending:") else "available",
        amount=-amount,
        currency=currency,
        order_id=order_id,
        fulfilment_id=fulfilment_id,
        payout_id=payout_id,
    )


def check_range(start: date | None, end: date | None) -> None:
    """Raises InvalidDateRange (422, field ``from``) when ``from`` is after ``to``."""
    if start is not None and end is not None and start > end:
        raise InvalidDateRange("from", "`from` must be on or before `to`.")


async def statement_page(
    session: AsyncSession,
    vendor_id: UUID,
    *,
    start: date | None,
    end: date | None,
    limit: int,
    cursor: str | None,
) -> Page[StatementLine]:
    """One page of the vendor's statement, newest first.

    Raises:
        InvalidDateRange, InvalidInput (a cursor this did not make): 422.
    """
    check_range(start, end)
    stmt = _statement(vendor_id, start, end)
    if cursor is not None:
        stmt = stmt.where(LedgerEntry.id < cursor_id(cursor))
    rows = (await session.execute(stmt.order_by(LedgerEntry.id.desc()).limit(limit + 1))).all()
    lines = [_line(row) for row in rows[:limit]]
    more = len(rows) > limit
    return Page(items=lines, next_cursor=encode_cursor([str(lines[-1].id)]) if more and lines else None)


async def statement_rows(
    session: AsyncSession, vendor_id: UUID, *, start: date | None, end: date | None, batch: int = 1_000
) -> AsyncIterator[StatementLine]:
    """Every line of the range, oldest first, read a batch at a time (the CSV export)."""
    check_range(start, end)
    after: UUID | None = None
    while True:
        stmt = _statement(vendor_id, start, end)
        if after is not None:
            stmt = stmt.where(LedgerEntry.id > after)
        rows = (await session.execute(stmt.order_by(LedgerEntry.id).limit(batch))).all()
        for row in rows:
            yield _line(row)
        if len(rows) < batch:
            return
        after = rows[-1][0]
