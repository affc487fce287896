"""Ledger accounts by code, created on first use (one set per currency; vendors' per vendor)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.ids import new_id
from db.models import LedgerAccount

PROVIDER_CLEARING = "provider_clearing"
PLATFORM_COMMISSION = "platform_commission"
PLATFORM_PROMOTIONS = "platform_promotions"
PROVIDER_FEES = "provider_fees"
PAYOUTS_IN_TRANSIT = "payouts_in_transit"
# Refunds asked of the provider and not yet confirmed.
REFUNDS_PAYABLE = "refunds_payable"

_KINDS = {
    PROVIDER_CLEARING: "asset",
    PLATFORM_COMMISSION: "revenue",
    PLATFORM_PROMOTIONS: "expense",
    PROVIDER_FEES: "expense",
    PAYOUTS_IN_TRANSIT: "liability",
    REFUNDS_PAYABLE: "liability",
}


@dataclass(frozen=True, slots=True)
class Account:
    """An account as postings name it: its code, and the vendor for vendors' accounts."""

    code: str
    vendor_id: UUID | None = None

    @property
    def kind(self) -> str:
        return "liability" if self.vendor_id is not None else _KINDS[self.code]


def vendor_pending(vendor_id: UUID) -> Account:
    return Account(f"vendor_pending:{vendor_id}", vendor_id)


def vendor_available(vendor_id: UUID) -> Account:
    return Account(f"vendor_available:{vendor_id}", vendor_id)


def platform(code: str) -> Account:
    if code not in _KINDS:
        raise ValueError(f"no platform account {code!r}")
    return Account(code)


async def account_ids(
    session: AsyncSession, currency: str, accounts: Iterable[Account]
) -> dict[Account, UUID]:
    """The ids of ``accounts`` in ``currency``, creating the missing ones (concurrency-safe)."""
    wanted = list(dict.fromkeys(accounts))
    if not wanted:
        return {}
    await session.execute(
        insert(LedgerAccount)
        .values(
            [
                {
                    "id": new_id(),
                    "code": a.code,
                    "kind": a.kind,
                    "currency": currency,
                    "vendor_id": a.vendor_id,
                }
                for a in wanted
            ]
        )
        .on_conflict_do_nothing(constraint="uq_ledger_accounts_code_currency")
    )
    rows = await session.execute(
        select(LedgerAccount.code, LedgerAccount.id).where(
            LedgerAccount.currency == currency, LedgerAccount.code.in_([a.code for a in wanted])
        )
    )
    by_code = dict(rows.all())
    return {a: by_code[a.code] for a in wanted}
