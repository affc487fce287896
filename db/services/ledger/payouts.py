"""What a vendor's payout does in the ledger, and the balances a payout is made from.

One payout of 80,000 that reaches the vendor, and one that fails:

    sent      Dr vendor_available 80,000  | Cr payouts_in_transit 80,000   (payout made)
    paid      Dr payouts_in_transit 80,000 | Cr provider_clearing 80,000   (transfer.success)

    sent      Dr vendor_available 80,000  | Cr payouts_in_transit 80,000
    returned  Dr payouts_in_transit 80,000 | Cr vendor_available 80,000    (transfer.failed)

A transfer reversed after it succeeded comes back from the provider's balance instead:

    returned  Dr provider_clearing 80,000  | Cr vendor_available 80,000    (transfer.reversed)

Each is keyed by the payout (``payout:<id>:sent``, ``:paid``, ``:returned``): failing and
reversing share one key, so whatever the order of the provider's events a payout's money comes
back to the vendor at most once.
"""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import LedgerAccount, LedgerEntry, Payout
from db.services.ledger.accounts import (
    PAYOUTS_IN_TRANSIT,
    PROVIDER_CLEARING,
    Account,
    platform,
    vendor_available,
    vendor_pending,
)
from db.services.ledger.posting import Leg, Refs, post


async def balance_of(session: AsyncSession, account: Account, currency: str) -> int:
    """What a liability account owes (credits are negative: returned as a positive)."""
    total = await session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0))
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerAccount.code == account.code, LedgerAccount.currency == currency)
    )
    return -int(total or 0)


async def available_of(session: AsyncSession, vendor_id: UUID, currency: str) -> int:
    """The vendor's earnings that can be paid out now."""
    return await balance_of(session, vendor_available(vendor_id), currency)


async def pending_of(session: AsyncSession, vendor_id: UUID, currency: str) -> int:
    """The vendor's earnings still inside their return windows."""
    return await balance_of(session, vendor_pending(vendor_id), currency)


async def record_sent(session: AsyncSession, payout: Payout) -> None:
    """The payout was made: its amount leaves the vendor's available balance, in transit."""
    await post(
        session,
        key=f"payout:{payout.id}:sent",
        kind="payout_sent",
        currency=payout.currency,
        description=f"payout {payout.reference}",
        legs=[
            Leg(vendor_available(payout.vendor_id), payout.amount),
            Leg(platform(PAYOUTS_IN_TRANSIT), -payout.amount),
        ],
        refs=Refs(payout_id=payout.id),
    )


async def record_paid(session: AsyncSession, payout: Payout) -> None:
    """The provider confirmed the transfer: the money left our balance at the provider."""
    await post(
        session,
        key=f"payout:{payout.id}:paid",
        kind="payout_paid",
        currency=payout.currency,
        description=f"payout {payout.reference} paid",
        legs=[
            Leg(platform(PAYOUTS_IN_TRANSIT), payout.amount),
            Leg(platform(PROVIDER_CLEARING), -payout.amount),
        ],
        refs=Refs(payout_id=payout.id),
        occurred_at=payout.completed_at,
    )


async def record_returned(session: AsyncSession, payout: Payout, *, after_paid: bool) -> None:
    """The transfer failed (still in transit) or was reversed after it was paid (back at the
    provider): the amount is available to the vendor again. Once per payout, whichever it was."""
    source = platform(PROVIDER_CLEARING) if after_paid else platform(PAYOUTS_IN_TRANSIT)
    await post(
        session,
        key=f"payout:{payout.id}:returned",
        kind="payout_reversed" if payout.status == "reversed" else "payout_failed",
        currency=payout.currency,
        description=f"payout {payout.reference} {payout.status}: {payout.failure_reason or 'returned'}",
        legs=[Leg(source, payout.amount), Leg(vendor_available(payout.vendor_id), -payout.amount)],
        refs=Refs(payout_id=payout.id),
        occurred_at=payout.completed_at,
    )
