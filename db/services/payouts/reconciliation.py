"""Payouts whose outcome never came: settled from the provider's records, or sent again.

A webhook can be lost, and a transfer job can run out of attempts. The scheduler's
``critical.payouts.reconcile`` (every ``PAYMENT_RECONCILE_INTERVAL_SECONDS``) therefore looks at
payouts still open ``PAYMENT_RECONCILE_AFTER_SECONDS`` after they were sent or made:

- ``processing``: the transfer is verified by reference with the provider; a final record
  settles the payout exactly as its webhook would (``transfers.settle``, under the row lock, so a
  webhook applied at the same moment makes one of them a no-op); one still under way is asked
  again on later runs. The sandbox keeps no records: its payouts are left to their webhook.
- ``pending`` and not held: the transfer job is queued again (durably). It is idempotent: having
  counted an attempt before, it asks the provider by reference before sending.

Payouts are claimed oldest first in batches with ``FOR UPDATE SKIP LOCKED``, each batch its own
transaction; a provider that cannot be asked ends the run (the next run is the retry).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.adapters.payments import PaymentProvider, PaymentProviderError
from core.jobs import defer
from core.logging import get_logger
from core.task_names import SEND_PAYOUT
from db.models import Payout, Vendor
from db.services.payouts.transfers import FINAL, look_up, record_transfer

log = get_logger(__name__)

BATCH = 50


async def _verify_batch(
    session: AsyncSession,
    provider: PaymentProvider,
    sent_before: datetime,
    limit: int,
    counts: dict[str, int],
) -> bool:
    """Verify up to ``limit`` processing payouts sent before ``sent_before`` (the oldest first);
    whether there may be more."""
    payouts = list(
        (
            await session.scalars(
                select(Payout)
                .where(
                    Payout.status == "processing",
                    Payout.provider == provider.name,
                    Payout.sent_at <= sent_before,
                    Payout.updated_at <= sent_before,
                )
                .order_by(Payout.sent_at, Payout.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
    )
    for payout in payouts:
        found = await look_up(provider, payout.reference)
        if found is None:
            counts["no_record"] += 1
        elif FINAL.get(found.status) is None:
            counts["under_way"] += 1
        else:
            await record_transfer(session, payout, found, verified=True)
            counts["settled"] += 1
        # Asked now: the next batch (and run) moves on to the others.
        payout.updated_at = datetime.now(UTC)
    return len(payouts) == limit


async def _resend_pending(session: AsyncSession, provider: str, made_before: datetime) -> int:
    """Queue the transfer job again for pending payouts of vendors not on hold (each at most once
    per reconciliation delay: the payout is touched when its job is queued)."""
    payouts = list(
        (
            await session.scalars(
                select(Payout)
                .join(Vendor, Vendor.id == Payout.vendor_id)
                .where(
                    Payout.status == "pending",
                    Payout.provider == provider,
                    Payout.updated_at <= made_before,
                    Vendor.payouts_on_hold.is_(False),
                )
                .order_by(Payout.id)
                .limit(BATCH * 10)
                .with_for_update(of=Payout, skip_locked=True)
            )
        ).all()
    )
    for payout in payouts:
        payout.updated_at = datetime.now(UTC)
        defer(SEND_PAYOUT, str(payout.id), durable=True)
    return len(payouts)


async def reconcile_payouts(
    transaction: Callable[[], AbstractAsyncContextManager[AsyncSession]],
    provider: PaymentProvider,
    after: timedelta,
    *,
    now: datetime | None = None,
    batch: int = BATCH,
) -> dict[str, int]:
    """Settle or resend every payout open longer than ``after`` (see the module's docstring);
    its counts (``settled``, ``under_way``, ``no_record``, ``resent``, ``provider_failed``)."""
    before = (now or datetime.now(UTC)) - after
    counts = {"settled": 0, "under_way": 0, "no_record": 0, "resent": 0, "provider_failed": 0}
    try:
        more = True
        while more:
            async with transaction() as session:
                more = await _verify_batch(session, provider, before, batch, counts)
    except PaymentProviderError as exc:
        counts["provider_failed"] += 1
        log.warning("payout reconciliation stopped: provider failed", error=str(exc))
    async with transaction() as session:
        counts["resent"] = await _resend_pending(session, provider.name, before)
    log.info("payouts reconciled", **counts)
    return counts
