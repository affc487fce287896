"""Posting a balanced transaction: legs of (account, amount), debits positive, credits negative.

A transaction is keyed by the event it records (``payment:<id>:captured``, ...): posting the
same key twice writes nothing the second time, so a job that runs again cannot move money twice.
The database checks at commit that the entries balance and refuses any change to them after.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.ids import new_id
from db.models import LedgerEntry, LedgerTransaction
from db.services.ledger.accounts import Account, account_ids


@dataclass(frozen=True, slots=True)
class Leg:
    account: Account
    amount: int
    fulfilment_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class Refs:
    """What a transaction is about (for statements, reports and the checks)."""

    order_id: UUID | None = None
    payment_id: UUID | None = None
    refund_id: UUID | None = None
    payout_id: UUID | None = None


async def post(
    session: AsyncSession,
    *,
    key: str,
    kind: str,
    currency: str,
    description: str,
    legs: Sequence[Leg],
    refs: Refs = Refs(),  # an immutable value
    occurred_at: datetime | None = None,
) -> UUID | None:
    """Write one balanced transaction; its id, or None when ``key`` was posted already.

    Raises:
        ValueError: the legs do not sum to zero (a bug: nothing is written).
    """
    legs = [leg for leg in legs if leg.amount != 0]
    if sum(leg.amount for leg in legs) != 0:
        raise ValueError(f"unbalanced {kind} {key}: {[(leg.account.code, leg.amount) for leg in legs]}")
    transaction_id: UUID | None = await session.scalar(
        insert(LedgerTransaction)
        .values(
            id=new_id(),
            key=key,
            kind=kind,
            currency=currency,
            description=description,
            order_id=refs.order_id,
            payment_id=refs.payment_id,
            refund_id=refs.refund_id,
            payout_id=refs.payout_id,
            occurred_at=occurred_at or datetime.now(UTC),
            created_at=datetime.now(UTC),
            updated_at=datetime.now(UTC),
        )
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(LedgerTransaction.id)
    )
    if transaction_id is None or not legs:
        return transaction_id
    ids = await account_ids(session, currency, [leg.account for leg in legs])
    now = datetime.now(UTC)
    await session.execute(
        insert(LedgerEntry).values(
            [
                {
                    "id": new_id(),
                    "transaction_id": transaction_id,
                    "account_id": ids[leg.account],
                    "amount": leg.amount,
                    "currency": currency,
                    "fulfilment_id": leg.fulfilment_id,
                    "created_at": now,
                    "updated_at": now,
                }
                for leg in legs
            ]
        )
    )
    return transaction_id
