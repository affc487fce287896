"""Payment reconciliation: payments whose webhook never came are settled from the provider's
verify API, exactly once, whatever the webhook does meanwhile.

Payments go through the Paystack adapter to the stand-in for Paystack's HTTP API
(``devstack/paystack.py``) on loopback, with its webhooks dropped; nothing else is replaced.
The scheduled task runs on a real worker configured for that stand-in; the other tests call the
service in the test's transaction and apply what it queued as the worker would.
"""

from __future__ import annotations

import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx
import pytest
from litestar import Litestar
from sqlalchemy import func, inspect, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstanceState
from taskiq import AsyncBroker

from core.adapters.payments import PaymentProvider
from core.adapters.payments.paystack import PaystackProvider
from core.adapters.payments.sandbox import SandboxProvider
from core.jobs import job_buffer
from core.settings import Settings
from core.task_names import PROCESS_PAYMENT_EVENT
from db.engine import Database
from db.models import Order, OrderEvent, Payment, PaymentEvent, User, Variant
from db.services.payments.processing import process_event
from db.services.payments.reconciliation import Reconciled, reconcile_payments
from db.uow import unit_of_work
from devstack.paystack import PaystackStandIn
from tasks.runtime.dispatch import BrokerDispatcher
from tests.conftest import run_task
from tests.support.catalog import make_product, make_store
from tests.support.http import serve
from tests.support.identity import make_user
from tests.support.orders import make_order, variants_of
from tests.support.stack import WorkerProcess
from tests.test_cart_orders import auth
from tests.test_tasks_e2e import eventually

pytestmark = pytest.mark.anyio

API = "/api/v1"
WEBHOOK = f"{API}/webhooks/paystack"
RECONCILE = "critical.payments.reconcile"
PRICE = 1_500_000
# Started this long ago, a payment is due (PAYMENT_RECONCILE_AFTER_SECONDS is 900 by default).
DUE = timedelta(minutes=20)


@pytest.fixture(scope="module")
def paystack(settings: Settings) -> Iterator[PaystackStandIn]:
    """The stand-in for Paystack, webhooks dropped: a paid charge tells the API nothing."""
    with PaystackStandIn(settings.paystack_secret_key.reveal(), drop_webhooks=True) as stand_in:
        yield stand_in


@pytest.fixture
async def shop(
    make_app: Callable[..., Litestar], paystack_settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    """The API (test transaction) taking payments through Paystack (the stand-in)."""
    async with serve(make_app(settings=paystack_settings)) as client:
        yield client


@pytest.fixture(scope="module")
async def paystack_worker(
    start_worker: Callable[..., WorkerProcess], paystack: PaystackStandIn
) -> AsyncIterator[WorkerProcess]:
    """A worker of the critical queue whose payment provider is the stand-in; stopped with this
    module (later tests' payments are the sandbox's, which it would try to verify at Paystack)."""
    proc = start_worker("critical", PAYMENT_PROVIDER="paystack", PAYSTACK_BASE_URL=paystack.base_url)
    try:

        async def started() -> bool:
            return '"worker started"' in proc.log_text()

        await eventually(started, within=60, step=0.1)
        yield proc
    finally:
        await anyio.to_thread.run_sync(proc.stop)


# --- helpers ----------------------------------------------------------------------------------


async def unpaid_orders(session: AsyncSession, count: int, *, stock: int = 20) -> tuple[list[Order], Variant]:
    """``count`` orders of two units each of one variant, awaiting payment, each by its own buyer."""
    store = await make_store(session)
    product = await make_product(session, store, price=PRICE, variants=[("M", "black", stock)])
    variant = (await variants_of(session, product))[0]
    orders = []
    for _ in range(count):
        buyer = await make_user(session)
        orders.append(await make_order(session, buyer, [(variant, 2)], status="pending_payment"))
    return orders, variant


async def start_payment(
    client: httpx.AsyncClient, settings: Settings, session: AsyncSession, order: Order
) -> str:
    """``POST /orders/{id}/payments`` (the API initializes it with the stand-in); its reference."""
    buyer = await session.get(User, order.user_id)
    assert buyer is not None
    response = await client.post(f"{API}/orders/{order.id}/payments", headers=auth(settings, buyer))
    assert response.status_code == 201, response.text
    assert response.json()["provider"] == "paystack"
    return str(response.json()["reference"])


async def started_ago(session: AsyncSession, references: list[str], age: timedelta) -> None:
    await session.execute(
        update(Payment).where(Payment.reference.in_(references)).values(created_at=datetime.now(UTC) - age)
    )
    await session.commit()


@contextlib.asynccontextmanager
async def in_the_test_transaction(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """A batch's transaction inside the test's (rolled back at its end); the caller's job_buffer
    catches what the batch queues."""
    yield session


async def reconcile(
    session: AsyncSession, provider: PaymentProvider, settings: Settings, *, apply: bool = True
) -> tuple[Reconciled, list[str]]:
    """Run reconciliation in the test's transaction; with ``apply``, process the events it queued
    as the critical worker would. Returns its counts and the outcomes of the events applied."""
    with job_buffer() as jobs:
        result = await reconcile_payments(
            lambda: in_the_test_transaction(session), provider, settings, batch=2
        )
    queued = [job for job in jobs.jobs if job.task_name == PROCESS_PAYMENT_EVENT]
    assert all(job.durable for job in queued)
    outcomes = []
    if apply:
        for job in queued:
            with job_buffer():
                outcomes.append(await process_event(session, provider, uuid.UUID(job.args[0])))
            await session.flush()  # as the worker's commit would
    return result, outcomes


def row_id(row: Order | Variant) -> uuid.UUID:
    """The row's id without loading it again (the tests expire everything to read fresh)."""
    state: InstanceState[Order | Variant] = inspect(row)
    assert state.identity is not None
    identity = state.identity
    return uuid.UUID(str(identity[0]))


async def facts(session: AsyncSession, order: Order) -> dict[str, Any]:
    """What the database says about one order's payment."""
    order_id = row_id(order)
    session.expire_all()
    status = await session.scalar(select(Order.status).where(Order.id == order_id))
    payments = Counter(await session.scalars(select(Payment.status).where(Payment.order_id == order_id)))
    paid_moves = await session.scalar(
        select(func.count()).where(OrderEvent.order_id == order_id, OrderEvent.to_status == "paid")
    )
    events = await session.scalar(
        select(func.count())
        .select_from(PaymentEvent)
        .join(Payment, Payment.reference == PaymentEvent.reference)
        .where(Payment.order_id == order_id, PaymentEvent.event_type == "charge.success")
    )
    return {"status": status, "payments": dict(payments), "paid_moves": paid_moves, "events": events}


PAID_ONCE = {"status": "paid", "payments": {"succeeded": 1}, "paid_moves": 1, "events": 1}
UNTOUCHED = {"status": "pending_payment", "payments": {"initialized": 1}, "paid_moves": 0, "events": 0}


async def stock_of(session: AsyncSession, variant: Variant) -> tuple[int, int]:
    variant_id = row_id(variant)
    row = (
        await session.execute(select(Variant.stock, Variant.reserved).where(Variant.id == variant_id))
    ).one()
    return row[0], row[1]


# --- the scheduled job on a real worker ---------------------------------------------------------


async def test_the_job_settles_every_order_paid_at_the_provider_whose_webhook_was_lost(
    live_shop: httpx.AsyncClient,
    paystack_settings: Settings,
    committed_db: Database,
    broker: AsyncBroker,
    paystack: PaystackStandIn,
    paystack_worker: WorkerProcess,
) -> None:
    async with committed_db.session_maker() as session:
        orders, variant = await unpaid_orders(session, 6)
        references = [await start_payment(live_shop, paystack_settings, session, o) for o in orders]
        paid, abandoned = orders[:4], orders[4:]
        for reference in references[:4]:
            assert paystack.pay(reference) is None  # charged; the webhook is lost
        await started_ago(session, references, DUE)

    async def run_on_the_paystack_worker() -> dict[str, int]:
        # A worker of another test module (the sandbox's) may take the job: it finds no
        # sandbox payments to verify (claimed 0). Send it again until ours ran it.
        for _ in range(20):
            counts: dict[str, int] = await run_task(broker, RECONCILE)
            if counts["claimed"]:
                return counts
        raise AssertionError(
            f"the reconciliation job never ran on the Paystack worker:\n{paystack_worker.log_text()[-3000:]}"
        )

    counts = await run_on_the_paystack_worker()
    assert counts == {
        "claimed": 6, "settled": 4, "already_recorded": 0, "not_paid": 2, "no_record": 0, "provider_failed": 0
    }  # fmt: skip

    async def all_paid() -> bool:
        async with committed_db.session_maker() as session:
            found = await session.scalars(select(Order.status).where(Order.id.in_([o.id for o in paid])))
            return set(found) == {"paid"}

    await eventually(all_paid, within=30)
    async with committed_db.session_maker() as session:
        for order in paid:
            assert await facts(session, order) == PAID_ONCE
        for order in abandoned:
            assert await facts(session, order) == UNTOUCHED
        # 4 orders sold 2 units each; the 2 abandoned ones still hold theirs.
        assert await stock_of(session, variant) == (20 - 8 - 4, 4)
        outcomes = Counter(await session.scalars(select(PaymentEvent.outcome)))
        assert outcomes == {"paid": 4}
    # Run again: nothing left to settle; the abandoned attempts are asked again, and left alone.
    again = await run_on_the_paystack_worker()
    assert (again["claimed"], again["settled"], again["not_paid"]) == (2, 0, 2)


async def test_the_job_and_a_late_webhook_together_pay_once(
    live_shop: httpx.AsyncClient,
    paystack_settings: Settings,
    committed_db: Database,
    broker: AsyncBroker,
    paystack: PaystackStandIn,
    provider: PaystackProvider,
    paystack_worker: WorkerProcess,
) -> None:
    """The late webhooks arrive while the job is asking the provider (its payment rows claimed),
    each in its own request and transaction; a real worker applies whatever each queued."""
    async with committed_db.session_maker() as session:
        orders, variant = await unpaid_orders(session, 6)
        references = [await start_payment(live_shop, paystack_settings, session, o) for o in orders]
        for reference in references:
            paystack.pay(reference)
        await started_ago(session, references, DUE)
    webhooks = [paystack.webhook(reference) for reference in references]
    paystack.verify_delay = 0.15  # the provider answers slowly: the webhooks overtake the job
    verified_before = paystack.calls["verify"]
    results: list[Reconciled] = []
    acks: list[str] = []

    async def job() -> None:
        transaction = lambda: unit_of_work(committed_db.session_maker, BrokerDispatcher(broker))  # noqa: E731
        results.append(await reconcile_payments(transaction, provider, paystack_settings, batch=10))

    async def late_webhook(index: int) -> None:
        response = await live_shop.post(
            WEBHOOK, content=webhooks[index].body, headers=webhooks[index].headers
        )
        assert response.status_code == 200, response.text
        acks.append(response.json()["status"])

    async def job_is_asking_the_provider() -> bool:
        return paystack.calls["verify"] > verified_before

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(job)
            await eventually(job_is_asking_the_provider, within=10)
            for index in range(len(webhooks)):
                tg.start_soon(late_webhook, index)
    finally:
        paystack.verify_delay = 0.0
    (result,) = results
    queued, duplicates = Counter(acks)["queued"], Counter(acks)["duplicate"]
    # Each charge was recorded once, by the job or by its webhook; the other was a duplicate.
    assert result.settled + queued == len(orders)
    assert result.already_recorded + duplicates == result.claimed

    async def all_processed() -> bool:
        async with committed_db.session_maker() as session:
            left = await session.scalar(select(func.count()).where(PaymentEvent.processed_at.is_(None)))
            return left == 0

    await eventually(all_processed, within=30)
    async with committed_db.session_maker() as session:
        for order in orders:
            assert await facts(session, order) == PAID_ONCE
        assert await stock_of(session, variant) == (20 - 12, 0)


# --- the service, in the test's transaction ----------------------------------------------------


async def test_payments_younger_than_the_delay_or_older_than_the_max_age_are_not_touched(
    shop: httpx.AsyncClient,
    session: AsyncSession,
    paystack_settings: Settings,
    paystack: PaystackStandIn,
    provider: PaystackProvider,
) -> None:
    (young, due, old, ancient), _ = await unpaid_orders(session, 4)
    refs = {
        o.id: await start_payment(shop, paystack_settings, session, o) for o in (young, due, old, ancient)
    }
    for reference in refs.values():
        paystack.pay(reference)
    after = timedelta(seconds=paystack_settings.payment_reconcile_after_seconds)
    max_age = timedelta(hours=paystack_settings.payment_reconcile_max_age_hours)
    await started_ago(session, [refs[young.id]], after - timedelta(seconds=30))
    await started_ago(session, [refs[due.id]], after + timedelta(seconds=30))
    await started_ago(session, [refs[old.id]], max_age + timedelta(minutes=1))
    await started_ago(session, [refs[ancient.id]], max_age * 10)
    verified_before = paystack.calls["verify"]

    result, outcomes = await reconcile(session, provider, paystack_settings)

    assert (result.claimed, result.settled, outcomes) == (1, 1, ["paid"])
    assert await facts(session, due) == PAID_ONCE
    for order in (young, old, ancient):
        assert await facts(session, order) == UNTOUCHED
    assert paystack.calls["verify"] - verified_before == 2  # the job's and processing's, for `due` only


async def test_running_the_job_twice_settles_once_and_a_late_webhook_is_a_duplicate(
    shop: httpx.AsyncClient,
    session: AsyncSession,
    paystack_settings: Settings,
    paystack: PaystackStandIn,
    provider: PaystackProvider,
) -> None:
    (paid, abandoned), variant = await unpaid_orders(session, 2, stock=4)
    paid_ref = await start_payment(shop, paystack_settings, session, paid)
    abandoned_ref = await start_payment(shop, paystack_settings, session, abandoned)
    paystack.pay(paid_ref)
    await started_ago(session, [paid_ref, abandoned_ref], DUE)

    # Twice before the worker got to the first run's event: the second finds it recorded.
    first, _ = await reconcile(session, provider, paystack_settings, apply=False)
    second, outcomes = await reconcile(session, provider, paystack_settings)
    assert (first.settled, first.not_paid) == (1, 1)
    assert (second.settled, second.already_recorded, second.not_paid, outcomes) == (0, 1, 1, [])
    event = await session.scalar(select(PaymentEvent).where(PaymentEvent.reference == paid_ref))
    assert event is not None
    assert event.payload["source"] == "reconciliation"
    assert event.payload["data"] == {
        "reference": paid_ref,
        "status": "success",
        "amount": 2 * PRICE,
        "currency": "NGN",
    }
    with job_buffer():
        assert await process_event(session, provider, event.id) == "paid"
    await session.flush()

    # And again once it was applied: the paid attempt is no longer waiting; nothing changes.
    third, outcomes = await reconcile(session, provider, paystack_settings)
    assert (third.claimed, third.settled, third.not_paid, outcomes) == (1, 0, 1, [])
    webhook = paystack.webhook(paid_ref)
    late = await shop.post(WEBHOOK, content=webhook.body, headers=webhook.headers)
    assert late.json() == {"status": "duplicate"}
    assert await facts(session, paid) == PAID_ONCE
    assert await facts(session, abandoned) == UNTOUCHED
    assert await stock_of(session, variant) == (0, 2)


async def test_a_charge_of_another_amount_is_flagged_as_its_webhook_would_be(
    shop: httpx.AsyncClient,
    session: AsyncSession,
    paystack_settings: Settings,
    paystack: PaystackStandIn,
    provider: PaystackProvider,
) -> None:
    (order,), variant = await unpaid_orders(session, 1)
    reference = await start_payment(shop, paystack_settings, session, order)
    paystack.pay(reference, amount=100)
    await started_ago(session, [reference], DUE)
    result, outcomes = await reconcile(session, provider, paystack_settings)
    assert (result.settled, outcomes) == (1, ["amount_mismatch"])
    session.expire_all()
    payment = await session.scalar(select(Payment).where(Payment.reference == reference))
    assert payment is not None
    assert payment.status == "flagged"
    assert (await facts(session, order))["status"] == "pending_payment"
    assert await stock_of(session, variant) == (18, 2)


async def test_unknown_references_sandbox_payments_and_a_provider_that_is_down_change_nothing(
    shop: httpx.AsyncClient,
    session: AsyncSession,
    paystack_settings: Settings,
    paystack: PaystackStandIn,
    provider: PaystackProvider,
) -> None:
    (unknown, sandboxed, waiting), _ = await unpaid_orders(session, 3)
    # An attempt the provider has no transaction for (answers 400 "Transaction reference not found").
    unknown_ref = await start_payment(shop, paystack_settings, session, unknown)
    await session.execute(
        update(Payment)
        .where(Payment.reference == unknown_ref)
        .values(reference=f"never-sent-{uuid.uuid4().hex}")
    )
    waiting_ref = await start_payment(shop, paystack_settings, session, waiting)
    paystack.pay(waiting_ref)
    session.add(
        Payment(
            order_id=sandboxed.id,
            provider="sandbox",
            reference=f"fs-sandbox-{uuid.uuid4().hex}",
            amount=sandboxed.total_amount,
            currency=sandboxed.currency,
            status="initialized",
            authorization_url="http://testserver/checkout",
        )
    )
    await session.commit()
    await session.execute(
        update(Payment)
        .where(Payment.order_id.in_([unknown.id, sandboxed.id, waiting.id]))
        .values(created_at=datetime.now(UTC) - DUE)
    )

    # The sandbox keeps no records: its payments are looked at and left alone.
    sandbox_run, _ = await reconcile(session, SandboxProvider(), paystack_settings)
    assert (sandbox_run.claimed, sandbox_run.no_record, sandbox_run.settled) == (1, 1, 0)
    # Paystack has never heard of the first reference (left to expire, as abandoned ones are),
    # and is down for the second: the run stops and the next one is the retry.
    down = PaystackProvider(secret_key="sk", base_url="http://127.0.0.1:9", timeout=2)
    try:
        down_run, _ = await reconcile(session, down, paystack_settings)
    finally:
        await down.close()
    assert (down_run.claimed, down_run.provider_failed, down_run.settled) == (2, 1, 0)
    for order in (unknown, sandboxed, waiting):
        assert (await facts(session, order))["events"] == 0

    result, outcomes = await reconcile(session, provider, paystack_settings)
    assert (result.claimed, result.not_paid, result.settled, outcomes) == (2, 1, 1, ["paid"])
    assert await facts(session, waiting) == PAID_ONCE
    assert (await facts(session, unknown))["status"] == "pending_payment"
