"""The ledger: the database keeps it balanced and append-only; an order's money is posted as it
moves (capture, fee, refunds, release), commission rules are resolved and snapshotted at
placement, and the invariants hold after every step."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from core.jobs import job_buffer
from core.rules.money import commission, split
from db.models import (
    CommissionRule,
    Fulfilment,
    LedgerAccount,
    LedgerEntry,
    Order,
    OrderLine,
    Payment,
    Refund,
)
from db.services.fulfilment import cancellation, moves
from db.services.fulfilment.moves import Acting
from db.services.ledger import checks, earnings
from db.services.ledger.accounts import PROVIDER_CLEARING, platform, vendor_available, vendor_pending
from db.services.ledger.posting import Leg, post
from db.services.ledger.release import release_due
from tests.support.catalog import category, make_product, make_store
from tests.support.identity import make_user
from tests.support.orders import captured_payment, make_order, variants_of

pytestmark = pytest.mark.anyio


def test_money_arithmetic() -> None:
    assert commission(1_000_000, 1_000) == 100_000
    assert commission(999, 1_000) == 99  # rounded down: never in the platform's favour
    assert split(100, [1, 1, 1]) == [34, 33, 33]
    assert split(10, [0, 0]) == [10, 0]
    assert sum(split(1_234_567, [3, 7, 11, 0])) == 1_234_567


async def balance(session: AsyncSession, code: str) -> int:
    total = await session.scalar(
        select(text("coalesce(sum(e.amount), 0)"))
        .select_from(LedgerEntry.__table__.alias("e"))
        .join(LedgerAccount.__table__.alias("a"), text("a.id = e.account_id"))
        .where(text("a.code = :code"))
        .params(code=code)
    )
    return int(total or 0)


async def test_the_database_refuses_unbalanced_or_edited_entries(session: AsyncSession) -> None:
    clearing, fees = platform(PROVIDER_CLEARING), platform("provider_fees")
    with pytest.raises(ValueError, match="unbalanced"):
        await post(session, key="t:1", kind="x", currency="NGN", description="x", legs=[Leg(clearing, 5)])
    posted = await post(
        session, key="t:2", kind="x", currency="NGN", description="x", legs=[Leg(clearing, 5), Leg(fees, -5)]
    )
    assert posted is not None
    assert await post(session, key="t:2", kind="x", currency="NGN", description="x", legs=[]) is None
    entry = await session.scalar(select(LedgerEntry).where(LedgerEntry.transaction_id == posted).limit(1))
    assert entry is not None
    for statement in (
        update(LedgerEntry).where(LedgerEntry.id == entry.id).values(amount=6),
        text("DELETE FROM ledger_entries WHERE id = :id").bindparams(id=entry.id),
        text("UPDATE ledger_transactions SET description = 'y' WHERE id = :id").bindparams(id=posted),
    ):
        savepoint = await session.begin_nested()
        with pytest.raises(DBAPIError, match="append-only"):
            await session.execute(statement)
        await savepoint.rollback()
    # An entry written around the posting code that leaves its transaction unbalanced is refused
    # when checked (at commit; here at once).
    savepoint = await session.begin_nested()
    await session.execute(
        text(
            "INSERT INTO ledger_entries (id, transaction_id, account_id, amount, currency, created_at, "
            "updated_at) VALUES (:id, :tx, :account, 7, 'NGN', now(), now())"
        ),
        {"id": uuid.uuid4(), "tx": posted, "account": entry.account_id},
    )
    with pytest.raises(DBAPIError, match="does not balance"):
        await session.execute(text("SET CONSTRAINTS ledger_entries_balance IMMEDIATE"))
    await savepoint.rollback()


async def test_commission_rules_resolve_and_are_fixed_at_placement(session: AsyncSession) -> None:
    store, other = await make_store(session), await make_store(session)
    now = datetime.now(UTC)
    tops = await category(session, "women-tops")
    session.add_all(
        [
            CommissionRule(category_id=tops.id, rate_bps=1_500, effective_from=now - timedelta(days=1)),
            CommissionRule(vendor_id=other.id, rate_bps=500, effective_from=now - timedelta(days=1)),
            # Not in force yet.
            CommissionRule(vendor_id=store.id, rate_bps=2_500, effective_from=now + timedelta(days=1)),
        ]
    )
    tee = await make_product(session, store, variants=[("M", "red", 5)])  # a women's top
    other_tee = await make_product(session, other, variants=[("M", "red", 5)])
    buyer = await make_user(session)
    order = await make_order(
        session,
        buyer,
        [((await variants_of(session, tee))[0], 1), ((await variants_of(session, other_tee))[0], 1)],
        status="pending_payment",
    )
    rates = {
        line.vendor_id: line.commission_bps
        for line in await session.scalars(select(OrderLine).where(OrderLine.order_id == order.id))
    }
    # The store falls under the category's ancestor rule; the other store has its own rule.
    assert rates == {store.id: 1_500, other.id: 500}
    await session.execute(
        update(CommissionRule).where(CommissionRule.vendor_id == other.id).values(rate_bps=4_000)
    )
    line = await session.scalar(
        select(OrderLine).where(OrderLine.order_id == order.id, OrderLine.vendor_id == other.id)
    )
    assert line is not None
    assert line.commission_bps == 500  # a placed order keeps its rate


async def paid_order(session: AsyncSession) -> tuple[Order, Payment, list[Fulfilment]]:
    """A paid order of 2 x 20,000 (store A, no rule: 10 %) and 1 x 10,000 (store B), captured."""
    variants = []
    for price in (2_000_000, 1_000_000):
        store = await make_store(session)
        product = await make_product(session, store, price=price, variants=[("M", "red", 5)])
        variants.append((await variants_of(session, product))[0])
    order = await make_order(
        session, await make_user(session), [(variants[0], 2), (variants[1], 1)], status="paid"
    )
    payment = await captured_payment(session, order, provider="paystack", fee=75_000)
    await earnings.record_capture(session, payment, order)
    fulfilments = list(
        (
            await session.scalars(
                select(Fulfilment).where(Fulfilment.order_id == order.id).order_by(Fulfilment.id)
            )
        ).all()
    )
    return order, payment, fulfilments


async def test_an_orders_money_through_capture_refund_and_release(session: AsyncSession) -> None:
    order, payment, (first, second) = await paid_order(session)
    assert await checks.check(session) == []
    assert await balance(session, PROVIDER_CLEARING) == 5_000_000 - 75_000
    assert await balance(session, vendor_pending(first.vendor_id).code) == -(4_000_000 - 400_000)
    assert await balance(session, "platform_commission") == -500_000
    # Capturing again (a job run twice) posts nothing new.
    await earnings.record_capture(session, payment, order)
    assert await balance(session, "platform_commission") == -500_000

    # Store A cancels one of its two units: 20,000 back to the shopper, 2,000 of commission undone.
    staff = Acting(actor="staff", user_id=order.user_id, vendor_id=None)
    line = await session.scalar(select(OrderLine).where(OrderLine.fulfilment_id == first.id))
    assert line is not None
    with job_buffer():
        await cancellation.cancel(session, first.id, staff, lines=[(line.id, 1)], reason="damaged")
    assert await balance(session, vendor_pending(first.vendor_id).code) == -(2_000_000 - 200_000)
    assert await balance(session, "platform_commission") == -300_000
    assert await balance(session, "refunds_payable") == -2_000_000
    refund = await session.scalar(select(Refund).where(Refund.order_id == order.id))
    assert refund is not None
    refund.status, refund.processed_at = "succeeded", datetime.now(UTC)
    await earnings.record_refund_sent(session, refund)
    assert await balance(session, "refunds_payable") == 0
    assert await checks.check(session) == []

    # Store B's part is delivered; its earnings wait for the return window, then become available.
    with job_buffer():
        await moves.ship(session, second.id, staff, moves.Tracking("DHL", "DHL-9"))
        await moves.deliver(session, second.id, staff)
    assert await release_due(session) == 0
    await session.execute(
        update(Fulfilment)
        .where(Fulfilment.id == second.id)
        .values(delivered_at=datetime.now(UTC) - timedelta(days=second.return_window_days, minutes=1))
    )
    assert await release_due(session) == 1
    assert await release_due(session) == 0  # released once
    assert await balance(session, vendor_available(second.vendor_id).code) == -(1_000_000 - 100_000)
    assert await balance(session, vendor_pending(second.vendor_id).code) == 0
    assert await checks.check(session) == []


async def test_the_checks_find_a_broken_ledger(session: AsyncSession) -> None:
    _, payment, (first, _) = await paid_order(session)
    # Earnings paid out of an available balance that was never released: negative.
    await post(
        session,
        key=f"bad:{payment.id}",
        kind="payout_sent",
        currency="NGN",
        description="a payout without earnings",
        legs=[Leg(vendor_available(first.vendor_id), 10_000), Leg(platform("payouts_in_transit"), -10_000)],
    )
    # A payment whose recorded fee differs from what was posted.
    await session.execute(update(Payment).where(Payment.id == payment.id).values(fee_amount=80_000))
    found = {breach.invariant for breach in await checks.check(session)}
    assert found == {
        "no negative available balance",
        "fees as the provider reported them",
        # ... and the money it put in transit belongs to no payout.
        "payouts in transit are the open payouts",
    }
