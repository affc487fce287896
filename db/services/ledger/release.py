"""Earnings become payable when their return window is over: the scheduled release.

A fulfilment's pending earnings move to its vendor's available balance once it was delivered
``return_window_days`` ago and no return of it is still open (requested or approved: the vendor
may still have to refund it). Each fulfilment is released once (the posting's key), and rows are
claimed with ``SKIP LOCKED``, so overlapping runs release nothing twice.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import exists, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from core.logging import get_logger
from db.models import Fulfilment, LedgerTransaction, Return
from db.services.ledger.earnings import release

log = get_logger(__name__)


async def release_due(session: AsyncSession, *, now: datetime | None = None, batch: int = 200) -> int:
    """Release the earnings of up to ``batch`` fulfilments whose return window is over; how many."""
    now = now or datetime.now(UTC)
    released_key = func.concat("fulfilment:", Fulfilment.id, ":released")
    due = (
        await session.scalars(
            select(Fulfilment)
            .where(
                Fulfilment.status == "delivered",
                Fulfilment.delivered_at + Fulfilment.return_window_days * text("interval '1 day'") <= now,
                ~exists().where(LedgerTransaction.key == released_key),
                ~exists().where(
                    Return.fulfilment_id == Fulfilment.id, Return.status.in_(("requested", "approved"))
                ),
            )
            .order_by(Fulfilment.delivered_at)
            .limit(batch)
            .with_for_update(skip_locked=True, of=Fulfilment)
        )
    ).all()
    moved = 0
    for fulfilment in due:
        moved += 1 if await release(session, fulfilment) > 0 else 0
    if due:
        log.info("earnings released", fulfilments=len(due), with_earnings=moved)
    return len(due)
