"""Payout test data and checks: vendors with money to pay out, and the ledger's invariants."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.adapters.tokens import TokenSigner
from core.settings import Settings
from db.models import LedgerAccount, LedgerEntry, LedgerTransaction, Payout, User, Vendor
from db.services.ledger import checks
from db.services.ledger.accounts import PAYOUTS_IN_TRANSIT, PROVIDER_CLEARING, platform, vendor_available
from db.services.ledger.posting import Leg, post
from tests.support.catalog import make_store
from tests.support.identity import make_user

API = "/api/v1"
ACCOUNT = {"bank_code": "058", "account_number": "0123456789"}


@dataclass
class Seller:
    user: User
    store: Vendor
    headers: dict[str, str]
    # Read once: the rows above may be expired by the time a test needs it.
    vendor_id: uuid.UUID


async def make_seller(session: AsyncSession, settings: Settings) -> Seller:
    user = await make_user(session, role="vendor")
    store = await make_store(session, user)
    token = TokenSigner(settings).issue(user.id, user.role)
    return Seller(user, store, {"Authorization": f"Bearer {token}"}, store.id)


async def earn(session: AsyncSession, vendor_id: uuid.UUID, amount: int, *, currency: str = "NGN") -> None:
    """Earnings of ``vendor_id`` released to its available balance, as a paid order's capture and
    the release after its return window leave them (netted into one transaction)."""
    await post(
        session,
        key=f"test:earned:{uuid.uuid4()}",
        kind="earnings_released",
        currency=currency,
        description="test earnings",
        legs=[Leg(platform(PROVIDER_CLEARING), amount), Leg(vendor_available(vendor_id), -amount)],
    )
    await session.commit()


async def available(session: AsyncSession, vendor_id: uuid.UUID, currency: str = "NGN") -> int:
    total = await session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0))
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerAccount.code == vendor_available(vendor_id).code, LedgerAccount.currency == currency)
    )
    return -int(total or 0)


async def _payout_problems(session: AsyncSession) -> list[str]:
    """Each payout's amount left its vendor's available balance exactly once, and came back at
    most once: net of its transactions, the vendor's available balance is down by its amount
    while it is open or paid, and not at all once it failed or was reversed."""
    wrong = []
    for payout in (await session.scalars(select(Payout).execution_options(populate_existing=True))).all():
        rows = await session.execute(
            select(LedgerTransaction.key, func.sum(LedgerEntry.amount))
            .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
            .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            .where(
                LedgerTransaction.payout_id == payout.id,
                LedgerAccount.code == vendor_available(payout.vendor_id).code,
            )
            .group_by(LedgerTransaction.key)
        )
        moved = dict(rows.all())
        if moved.get(f"payout:{payout.id}:sent") != payout.amount:
            wrong.append(f"payout {payout.id} left available {moved}, not {payout.amount} once")
        expected = 0 if payout.status in ("failed", "reversed") else payout.amount
        if sum(moved.values()) != expected:
            wrong.append(f"payout {payout.id} ({payout.status}) moved {moved} net of available")
    return wrong


async def ledger_problems(session: AsyncSession) -> list[str]:
    """Every broken invariant of the ledger and the payouts (empty: all hold)."""
    unbalanced = (
        await session.scalars(
            select(LedgerEntry.transaction_id)
            .group_by(LedgerEntry.transaction_id)
            .having(func.sum(LedgerEntry.amount) != 0)
        )
    ).all()
    wrong = [f"transaction {t} does not balance" for t in unbalanced]
    negative = await session.execute(
        select(LedgerAccount.code, -func.sum(LedgerEntry.amount))
        .join(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id)
        .where(LedgerAccount.code.startswith("vendor_available:"))
        .group_by(LedgerAccount.code)
        .having(func.sum(LedgerEntry.amount) > 0)
    )
    wrong += [f"{code} is negative: {amount}" for code, amount in negative.all()]
    wrong += await _payout_problems(session)
    in_transit = await session.scalar(
        select(-func.coalesce(func.sum(LedgerEntry.amount), 0))
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerAccount.code == platform(PAYOUTS_IN_TRANSIT).code)
    )
    open_total = await session.scalar(
        select(func.coalesce(func.sum(Payout.amount), 0)).where(Payout.status.in_(("pending", "processing")))
    )
    if int(in_transit or 0) != int(open_total or 0):
        wrong.append(f"payouts_in_transit holds {in_transit}, open payouts {open_total}")
    # The product's own checks (just ledger-check) must agree.
    wrong += [f"{b.invariant}: {b.detail}" for b in await checks.check(session)]
    return wrong


def payout_of(body: dict[str, Any]) -> tuple[str, int, str]:
    """(status, amount, requested_by) of a payout as the API shows it."""
    return body["status"], body["amount"]["amount"], body["requested_by"]
