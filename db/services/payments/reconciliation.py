"""Reconciliation: settling payments whose webhook never came, from the provider's own records.

A payment attempt still ``initialized`` ``PAYMENT_RECONCILE_AFTER_SECONDS`` after it started, and
not older than ``PAYMENT_RECONCILE_MAX_AGE_HOURS``, is verified with its provider. A successful
charge is recorded as the ``charge.success`` event its webhook would have stored (same table,
same uniqueness on provider, reference and type) and queued for ``critical.payments.process_event``
exactly as the webhook queues it (durably, after commit), so the order is settled by the same code
(``processing.py``) and only once: a webhook that comes later, or at the same moment, finds the
event stored and is a duplicate; one that came first makes this run's record a duplicate.

Anything else (abandoned, failed, still pending, unknown to the provider) is left alone: the
attempt stays ``initialized`` and is verified again by later runs while it is young enough, and
its order expires as unpaid orders do. A provider that keeps no records (the sandbox) gives
nothing to reconcile. A provider that cannot be asked ends the run; the next run is the retry.

Attempts are claimed oldest first, in batches, with ``FOR UPDATE SKIP LOCKED``, each batch in its
own transaction, so two runs at once never handle the same attempt. A batch locks payment rows
only (never their orders) while it waits for the provider.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from core.adapters.payments import PaymentProvider, PaymentProviderError, TransactionNotFound, VerifiedPayment
from core.logging import get_logger
from core.settings import Settings
from db.models import Payment
from db.services.payments.webhooks import record_event

log = get_logger(__name__)

BATCH = 50
CHARGE_SUCCESS = "charge.success"

# Where a batch stopped: (created_at, id) of the last attempt it claimed.
Cursor = tuple[datetime, UUID]


@dataclass(frozen=True, slots=True)
class Window:
    """Attempts started in [oldest, newest] are due for verification."""

    oldest: datetime
    newest: datetime

    @classmethod
    def of(cls, settings: Settings, now: datetime | None = None) -> Window:
        now = now or datetime.now(UTC)
        return cls(
            oldest=now - timedelta(hours=settings.payment_reconcile_max_age_hours),
            newest=now - timedelta(seconds=settings.payment_reconcile_after_seconds),
        )


@dataclass(slots=True)
class Reconciled:
    """What a run (or one batch) found, attempt by attempt."""

    claimed: int = 0
    # Paid at the provider: recorded as its charge.success and queued for processing.
    settled: int = 0
    # Paid at the provider, and its charge.success was already stored (the webhook came).
    already_recorded: int = 0
    # Abandoned, failed, pending or unknown at the provider: left to expire.
    not_paid: int = 0
    # The provider keeps no records (the sandbox).
    no_record: int = 0
    # The provider could not be asked; the run stopped there.
    provider_failed: int = 0

    def add(self, other: Reconciled) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)

    def counts(self) -> dict[str, int]:
        return asdict(self)


async def _claim(
    session: AsyncSession, provider: str, window: Window, after: Cursor | None, limit: int
) -> list[Payment]:
    """The next due attempts of ``provider`` after ``after``, oldest first, row-locked; attempts
    another transaction holds (another run, or their webhook being applied) are skipped."""
    stmt = select(Payment).where(
        Payment.status == "initialized",
        Payment.provider == provider,
        Payment.created_at >= window.oldest,
        Payment.created_at <= window.newest,
    )
    if after is not None:
        stmt = stmt.where(tuple_(Payment.created_at, Payment.id) > tuple_(*after))
    stmt = stmt.order_by(Payment.created_at, Payment.id).limit(limit).with_for_update(skip_locked=True)
    return list((await session.scalars(stmt)).all())


def _charge_payload(verified: VerifiedPayment) -> dict[str, Any]:
    """A ``charge.success`` event as Paystack's webhook shapes it, from the verified record."""
    return {
        "event": CHARGE_SUCCESS,
        "data": {
            "reference": verified.reference,
            "status": "success",
            "amount": verified.amount,
            "currency": verified.currency,
        },
        # Not the provider's: this event was made from its verify API, not delivered by it.
        "source": "reconciliation",
    }


async def _reconcile_one(
    session: AsyncSession, provider: PaymentProvider, payment: Payment, result: Reconciled
) -> None:
    """Verify one attempt and record its charge when it succeeded.

    Raises:
        PaymentProviderError: the provider could not be asked.
    """
    try:
        verified = await provider.verify(payment.reference)
    except TransactionNotFound:
        result.not_paid += 1
        return
    if verified is None:
        result.no_record += 1
        return
    if not verified.succeeded:
        result.not_paid += 1
        return
    payload = _charge_payload(verified)
    if await record_event(session, payment.provider, payment.reference, CHARGE_SUCCESS, payload) == "queued":
        result.settled += 1
        log.info("payment reconciled: charge recorded", reference=payment.reference)
    else:
        result.already_recorded += 1


async def reconcile_batch(
    session: AsyncSession,
    provider: PaymentProvider,
    window: Window,
    *,
    after: Cursor | None = None,
    limit: int = BATCH,
) -> tuple[Reconciled, Cursor | None]:
    """Claim up to ``limit`` due attempts after ``after`` and reconcile each, in the caller's
    transaction; returns what was found and where the next batch starts (None: nothing left, or
    the provider could not be asked)."""
    payments = await _claim(session, provider.name, window, after, limit)
    result = Reconciled(claimed=len(payments))
    for payment in payments:
        try:
            await _reconcile_one(session, provider, payment, result)
        except PaymentProviderError as exc:
            # Down or refusing: asking about the rest now would only wait on it again.
            result.provider_failed += 1
            log.warning("payment reconciliation stopped: provider failed", error=str(exc))
            return result, None
    if len(payments) < limit:
        return result, None
    return result, (payments[-1].created_at, payments[-1].id)


async def reconcile_payments(
    transaction: Callable[[], AbstractAsyncContextManager[AsyncSession]],
    provider: PaymentProvider,
    settings: Settings,
    *,
    now: datetime | None = None,
    batch: int = BATCH,
) -> Reconciled:
    """Reconcile every due attempt, ``batch`` at a time, each batch in a ``transaction()`` of its
    own (its recorded events and their queued jobs commit with it).

    Raises:
        Whatever ``transaction()`` raises (a database failure); batches done before it stay done.
    """
    window = Window.of(settings, now)
    total = Reconciled()
    cursor: Cursor | None = None
    while True:
        async with transaction() as session:
            result, cursor = await reconcile_batch(session, provider, window, after=cursor, limit=batch)
        total.add(result)
        if cursor is None:
            break
    log.info("payments reconciled", **total.counts())
    return total
