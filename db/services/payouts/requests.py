"""Making payouts: on demand (``POST /vendor/payouts``) and by the scheduled payout run.

A payout takes the vendor's whole available balance (or, on demand, a part of it), at least
``PAYOUT_MINIMUM``, to the vendor's payout account. Making it moves its amount from the vendor's
available balance into transit in the ledger and queues the transfer job (durably, after commit);
the job sends it (``transfers.py``). Everything that makes a payout for a vendor takes the
vendor's row lock first, so two requests (or a request and the run) cannot both pay out the same
balance, and a hold placed by staff is seen by every payout made after it.

The scheduled run (``critical.payouts.run``) pays every vendor that has a payout account of the
configured provider, is not on hold, has at least the minimum available and has had no scheduled
payout in the last ``PAYOUT_INTERVAL_SECONDS``. That last rule, not the scheduler's clock, makes
the run weekly: the job is sent more often (hourly at most) and a restarted scheduler, or two
runs at once, pay nobody twice.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.ids import new_id
from core.jobs import defer
from core.logging import get_logger
from core.settings import Settings
from core.task_names import SEND_PAYOUT
from db.models import LedgerAccount, LedgerEntry, Payout, PayoutAccount, Vendor
from db.services.catalog.errors import VendorNotFound
from db.services.ledger import payouts as ledger
from db.services.payouts.accounts import account_of, lock_vendor
from db.services.payouts.errors import PayoutAccountRequired, PayoutNotAllowed, PayoutsOnHold

log = get_logger(__name__)

Requester = Literal["vendor", "schedule", "staff"]


@dataclass(frozen=True, slots=True)
class Terms:
    """What payouts are made under: the marketplace currency, the provider and the minimum."""

    provider: str
    currency: str
    minimum: int
    interval: timedelta

    @classmethod
    def of(cls, settings: Settings, provider: str) -> Terms:
        return cls(
            provider=provider,
            currency=settings.currency,
            minimum=settings.payout_minimum,
            interval=timedelta(seconds=settings.payout_interval_seconds),
        )


def _refused(detail: str) -> PayoutNotAllowed:
    return PayoutNotAllowed(detail, errors=[{"field": "amount", "message": detail}])


async def request_payout(
    session: AsyncSession, terms: Terms, vendor_id: UUID, *, amount: int | None, requested_by: Requester
) -> Payout:
    """Pay out ``amount`` (None: everything available) to the vendor's payout account.

    Raises:
        VendorNotFound: no such vendor (404).
        PayoutsOnHold: staff hold the vendor's payouts (409).
        PayoutAccountRequired: no payout account with the current provider (422).
        PayoutNotAllowed: below ``PAYOUT_MINIMUM``, or more than is available (422, ``amount``).
    """
    vendor = await lock_vendor(session, vendor_id)
    if vendor is None:
        raise VendorNotFound()
    if vendor.payouts_on_hold:
        raise PayoutsOnHold("Your payouts are on hold; contact support.")
    account = await account_of(session, vendor_id)
    if account is None or (account.provider, account.currency) != (terms.provider, terms.currency):
        raise PayoutAccountRequired(
            "Register the bank account to pay out to first (PUT /api/v1/vendor/payout-account).",
            errors=[{"field": "payout_account", "message": "required"}],
        )
    available = await ledger.available_of(session, vendor_id, terms.currency)
    wanted = available if amount is None else amount
    if wanted < terms.minimum:
        raise _refused(f"The smallest payout is {terms.minimum}; {wanted} asked, {available} available.")
    if wanted > available:
        raise _refused(f"Only {available} is available to pay out; {wanted} asked.")
    return await _make(session, account, wanted, requested_by)


async def _make(
    session: AsyncSession, account: PayoutAccount, amount: int, requested_by: Requester
) -> Payout:
    payout_id = new_id()
    payout = Payout(
        id=payout_id,
        vendor_id=account.vendor_id,
        provider=account.provider,
        amount=amount,
        currency=account.currency,
        status="pending",
        # Lower-case letters, digits and dashes, as Paystack asks of transfer references.
        reference=f"fs-po-{payout_id.hex}",
        recipient_code=account.recipient_code,
        bank_code=account.bank_code,
        account_last4=account.account_last4,
        requested_by=requested_by,
        attempts=0,
    )
    session.add(payout)
    await session.flush()
    await ledger.record_sent(session, payout)
    defer(SEND_PAYOUT, str(payout.id), durable=True)
    log.info("payout made", payout_id=str(payout.id), vendor_id=str(account.vendor_id), amount=amount)
    return payout


async def due_vendors(session: AsyncSession, terms: Terms, now: datetime) -> list[UUID]:
    """Vendors the scheduled run pays now (see the module's docstring), in id order."""
    available = -func.sum(LedgerEntry.amount)
    balances = (
        select(LedgerAccount.vendor_id, available.label("available"))
        .join(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id)
        .where(LedgerAccount.code.startswith("vendor_available:"), LedgerAccount.currency == terms.currency)
        .group_by(LedgerAccount.vendor_id)
        .having(available >= terms.minimum)
        .subquery()
    )
    recent = select(Payout.vendor_id).where(
        Payout.requested_by == "schedule", Payout.created_at > now - terms.interval
    )
    stmt = (
        select(Vendor.id)
        .join(PayoutAccount, PayoutAccount.vendor_id == Vendor.id)
        .join(balances, balances.c.vendor_id == Vendor.id)
        .where(
            Vendor.payouts_on_hold.is_(False),
            PayoutAccount.provider == terms.provider,
            PayoutAccount.currency == terms.currency,
            Vendor.id.not_in(recent),
        )
        .order_by(Vendor.id)
    )
    return list((await session.scalars(stmt)).all())


async def pay_scheduled(session: AsyncSession, terms: Terms, vendor_id: UUID, now: datetime) -> Payout | None:
    """The scheduled payout of one vendor, if it is still due once the vendor's row is locked
    (another run, a hold or an on-demand payout may have come first)."""
    vendor = await lock_vendor(session, vendor_id)
    if vendor is None or vendor.payouts_on_hold:
        return None
    already = await session.scalar(
        select(Payout.id).where(
            Payout.vendor_id == vendor_id,
            Payout.requested_by == "schedule",
            Payout.created_at > now - terms.interval,
        )
    )
    account = await account_of(session, vendor_id)
    if already is not None or account is None:
        return None
    available = await ledger.available_of(session, vendor_id, terms.currency)
    if available < terms.minimum:
        return None
    return await _make(session, account, available, "schedule")


async def run_scheduled(
    transaction: Callable[[], AbstractAsyncContextManager[AsyncSession]],
    terms: Terms,
    *,
    now: datetime | None = None,
) -> dict[str, int]:
    """The payout run: every due vendor paid out, each in a ``transaction()`` of its own (so one
    vendor's lock is held only for its own payout, and payouts made stay made if the run stops
    part way; the next run picks up the rest). Returns its counts."""
    now = now or datetime.now(UTC)
    async with transaction() as session:
        due = await due_vendors(session, terms, now)
    paid = 0
    for vendor_id in due:
        async with transaction() as session:
            paid += await pay_scheduled(session, terms, vendor_id, now) is not None
    counts = {"due": len(due), "paid_out": paid}
    log.info("payout run", **counts)
    return counts
