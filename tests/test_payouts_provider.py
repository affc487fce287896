"""Payouts through the Paystack adapter and the stand-in for Paystack's HTTP API
(``devstack/paystack.py``) on loopback, nothing else replaced: accounts resolved at the provider,
transfers it refuses, events settled by the provider's own record whatever they claim,
reconciliation of transfers whose webhook never came, and real workers paying out, one of them
killed in the middle of a payout.

The stand-in keeps the transfer webhooks it makes for the test to deliver through the API (which
has no socket here), in whatever order and as often as a test wants.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta

import anyio
import httpx
import pytest
from litestar import Litestar
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.adapters.payments.paystack import PaystackProvider
from core.jobs import job_buffer
from core.settings import Settings
from db.engine import Database
from db.models import Payout, PayoutAccount
from db.services.payouts.reconciliation import reconcile_payouts
from devstack.paystack import PaystackStandIn
from tests.support.http import problem, serve
from tests.support.payouts import API, Seller, available, earn, ledger_problems, make_seller
from tests.support.stack import WorkerProcess
from tests.test_payouts import apply_events, ask, deliver, in_test, register, send
from tests.test_tasks_e2e import eventually

pytestmark = pytest.mark.anyio

WEBHOOK = f"{API}/webhooks/paystack"


@pytest.fixture(scope="module")
def paystack(settings: Settings) -> Iterator[PaystackStandIn]:
    with PaystackStandIn(settings.paystack_secret_key.reveal()) as stand_in:
        yield stand_in


@pytest.fixture(autouse=True)
def fresh_switches(paystack: PaystackStandIn) -> Iterator[None]:
    yield
    desk = paystack.transfers
    desk.outcome, desk.transfer_delay, desk.auto_settle = "success", 0.0, True
    desk.unresolvable.clear()
    paystack.drop_webhooks = False
    paystack.take_webhooks()


@pytest.fixture
async def shop(
    make_app: Callable[..., Litestar], paystack_settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    """The API (test transaction) paying out through Paystack (the stand-in)."""
    async with serve(make_app(settings=paystack_settings)) as client:
        yield client


async def _started(proc: WorkerProcess, times: int = 1) -> None:
    async def started() -> bool:
        return proc.log_text().count('"worker started"') >= times

    await eventually(started, within=60, step=0.1)


@pytest.fixture(scope="module")
async def paystack_worker(
    start_worker: Callable[..., WorkerProcess], paystack: PaystackStandIn
) -> AsyncIterator[WorkerProcess]:
    """A critical-queue worker whose payment provider is the stand-in (stopped with this module)."""
    proc = start_worker("critical", PAYMENT_PROVIDER="paystack", PAYSTACK_BASE_URL=paystack.base_url)
    try:
        await _started(proc)
        yield proc
    finally:
        await anyio.to_thread.run_sync(proc.stop)


async def the_payout(session: AsyncSession, payout_id: uuid.UUID) -> Payout:
    payout = await session.get(Payout, payout_id, populate_existing=True)
    assert payout is not None
    return payout


async def funded(client: httpx.AsyncClient, session: AsyncSession, settings: Settings, amount: int) -> Seller:
    """A vendor with a payout account registered at the provider and ``amount`` available."""
    seller = await make_seller(session, settings)
    registered = await register(client, seller)
    assert registered.status_code == 200, registered.text
    await earn(session, seller.vendor_id, amount)
    return seller


async def payout_made(client: httpx.AsyncClient, session: AsyncSession, seller: Seller) -> Payout:
    made = await ask(client, seller)
    assert made.status_code == 201, made.text
    return await the_payout(session, uuid.UUID(made.json()["id"]))


async def deliver_all(client: httpx.AsyncClient, paystack: PaystackStandIn, expect: int = 0) -> list[str]:
    """Deliver the transfer webhooks the stand-in made (waiting for ``expect`` of them), as it
    would POST them; the API's answers."""
    answers = []
    for webhook in paystack.take_webhooks(expect):
        response = await client.post(WEBHOOK, content=webhook.body, headers=webhook.headers)
        assert response.status_code == 200, response.text
        answers.append(response.json()["status"])
    return answers


# --- in the test's transaction -------------------------------------------------------------------


async def test_accounts_are_resolved_and_made_recipients_at_the_provider(
    shop: httpx.AsyncClient, session: AsyncSession, paystack_settings: Settings, paystack: PaystackStandIn
) -> None:
    seller = await make_seller(session, paystack_settings)
    before = paystack.stats()["calls"]
    registered = await register(shop, seller)
    assert registered.json()["account_name"] == "SANDBOX ACCOUNT 6789"
    account = await session.scalar(select(PayoutAccount).where(PayoutAccount.vendor_id == seller.vendor_id))
    assert account is not None
    assert (account.provider, account.recipient_code[:4]) == ("paystack", "RCP_")
    calls = paystack.stats()["calls"]
    assert (calls["resolve"] - before.get("resolve", 0), calls["recipient"] - before.get("recipient", 0)) == (
        1,
        1,
    )
    # The same account again asks the provider nothing.
    await register(shop, seller)
    assert paystack.calls["resolve"] == calls["resolve"]
    paystack.transfers.unresolvable.add("1111111111")
    refused = problem(await register(shop, seller, account_number="1111111111"), 422)
    assert "Could not resolve account name" in refused["detail"]
    assert [e["field"] for e in refused["errors"]] == ["account_number"]
    # The account registered before stays.
    assert (await shop.get(f"{API}/vendor/payout-account", headers=seller.headers)).json()[
        "account_last4"
    ] == "6789"


async def test_a_transfer_the_provider_refuses_fails_the_payout_and_returns_the_money(
    shop: httpx.AsyncClient,
    session: AsyncSession,
    paystack_settings: Settings,
    paystack: PaystackStandIn,
    provider: PaystackProvider,
) -> None:
    seller = await funded(shop, session, paystack_settings, 800_000)
    payout = await payout_made(shop, session, seller)
    # The recipient is gone at the provider (it answers 400 "Recipient specified is invalid").
    await session.execute(update(Payout).where(Payout.id == payout.id).values(recipient_code="RCP_gone"))
    transfers = paystack.transfers.count()
    assert await send(session, payout, provider) == "refused"
    payout = await the_payout(session, payout.id)
    assert payout.status == "failed"
    assert payout.failure_reason == "refused by the provider: Recipient specified is invalid"
    assert paystack.transfers.count() == transfers
    assert await available(session, seller.vendor_id) == 800_000
    assert await ledger_problems(session) == []


async def test_transfer_events_are_settled_by_the_providers_record_whatever_they_claim(
    shop: httpx.AsyncClient,
    session: AsyncSession,
    paystack_settings: Settings,
    paystack: PaystackStandIn,
    provider: PaystackProvider,
) -> None:
    seller = await funded(shop, session, paystack_settings, 1_500_000)
    # Reversed by the bank after it succeeded; its webhooks arrive backwards, then again.
    paystack.transfers.outcome = "reversed"
    reversed_ = await payout_made(shop, session, seller)
    assert await send(session, reversed_, provider) == "sent"
    webhooks = paystack.take_webhooks(2)
    assert len(webhooks) == 2
    for webhook in [*reversed(webhooks), *webhooks]:
        await shop.post(WEBHOOK, content=webhook.body, headers=webhook.headers)
    assert await apply_events(session, provider) == ["reversed", "already_reversed"]
    assert await available(session, seller.vendor_id) == 1_500_000

    # The provider says it failed: a success event about it (late, or not the provider's own
    # word) cannot pay it, and the provider's transfer.failed then changes nothing more.
    paystack.transfers.outcome = "failed"
    failed = await payout_made(shop, session, seller)
    await send(session, failed, provider)
    await deliver(shop, paystack_settings, "transfer.success", await the_payout(session, failed.id))
    assert await deliver_all(shop, paystack, expect=1) == ["queued"]
    assert await apply_events(session, provider) == ["failed", "already_failed"]
    failed = await the_payout(session, failed.id)
    assert (failed.status, failed.failure_reason) == ("failed", "Account is not able to receive funds")
    assert await available(session, seller.vendor_id) == 1_500_000
    assert await ledger_problems(session) == []


async def test_a_transfer_still_under_way_waits_and_reconciliation_settles_it(
    shop: httpx.AsyncClient,
    session: AsyncSession,
    paystack_settings: Settings,
    paystack: PaystackStandIn,
    provider: PaystackProvider,
) -> None:
    seller = await funded(shop, session, paystack_settings, 900_000)
    paystack.transfers.auto_settle = False
    payout = await payout_made(shop, session, seller)
    await send(session, payout, provider)
    # A success event before the provider has finished: nothing moves yet.
    paystack.transfers.outcome = "success"
    paystack.drop_webhooks = True  # and the real webhook is lost
    await deliver(shop, paystack_settings, "transfer.success", await the_payout(session, payout.id))
    assert await apply_events(session, provider) == ["not_final"]
    assert (await the_payout(session, payout.id)).status == "processing"
    paystack.settle_transfer(payout.reference)
    assert paystack.take_webhooks() == []
    # A payout whose transfer job was lost is queued again.
    lost = await payout_made(shop, session, await funded(shop, session, paystack_settings, 600_000))

    later = datetime.now(UTC) + timedelta(seconds=5)
    with job_buffer() as jobs:
        counts = await reconcile_payouts(in_test(session), provider, timedelta(0), now=later)
    assert counts == {"settled": 1, "under_way": 0, "no_record": 0, "resent": 1, "provider_failed": 0}
    assert [job.args for job in jobs.jobs] == [(str(lost.id),)]
    assert (await the_payout(session, payout.id)).status == "paid"
    assert await ledger_problems(session) == []


async def test_a_retry_asks_the_provider_before_sending_again(
    shop: httpx.AsyncClient,
    session: AsyncSession,
    paystack_settings: Settings,
    paystack: PaystackStandIn,
    provider: PaystackProvider,
) -> None:
    """The provider accepted the transfer, but the worker died before recording it."""
    seller = await funded(shop, session, paystack_settings, 700_000)
    payout = await payout_made(shop, session, seller)
    await session.execute(update(Payout).where(Payout.id == payout.id).values(attempts=1))
    await provider.transfer(
        reference=payout.reference,
        amount=payout.amount,
        currency="NGN",
        recipient_code=payout.recipient_code,
        reason="x",
    )
    sent_before = paystack.calls["transfer"]
    assert await send(session, payout, provider) == "paid"  # found, already successful
    assert paystack.calls["transfer"] == sent_before
    assert await session.scalar(select(func.count()).select_from(Payout)) == 1
    assert await ledger_problems(session) == []


# --- real workers ------------------------------------------------------------------------------------


async def _status(db: Database, payout_id: uuid.UUID) -> str | None:
    async with db.session_maker() as session:
        return await session.scalar(select(Payout.status).where(Payout.id == payout_id))


async def test_a_payout_is_sent_and_settled_by_a_real_worker(
    live_shop: httpx.AsyncClient,
    committed_db: Database,
    paystack_settings: Settings,
    paystack: PaystackStandIn,
    paystack_worker: WorkerProcess,
) -> None:
    async with committed_db.session_maker() as session:
        seller = await funded(live_shop, session, paystack_settings, 1_000_000)
        payout = await payout_made(live_shop, session, seller)

    async def processing() -> bool:
        return await _status(committed_db, payout.id) == "processing"

    await eventually(processing, within=60, step=0.1)

    async def webhooks_made() -> list[str]:
        return await deliver_all(live_shop, paystack)

    assert await eventually(webhooks_made, within=10) == ["queued"]

    async def paid() -> bool:
        return await _status(committed_db, payout.id) == "paid"

    await eventually(paid, within=60, step=0.1)
    async with committed_db.session_maker() as session:
        assert await available(session, seller.vendor_id) == 0
        assert await ledger_problems(session) == []


async def test_a_worker_killed_mid_payout_neither_pays_twice_nor_loses_it(
    live_shop: httpx.AsyncClient,
    committed_db: Database,
    paystack_settings: Settings,
    paystack: PaystackStandIn,
    paystack_worker: WorkerProcess,
) -> None:
    transfers, calls = paystack.transfers.count(), paystack.calls["transfer"]
    # The provider accepts the transfer, then answers late: the worker is killed while it waits.
    paystack.transfers.transfer_delay = 6.0
    async with committed_db.session_maker() as session:
        seller = await funded(live_shop, session, paystack_settings, 1_100_000)
        payout = await payout_made(live_shop, session, seller)

    async def provider_asked() -> bool:
        return paystack.calls["transfer"] > calls

    await eventually(provider_asked, within=60, step=0.05)
    await anyio.to_thread.run_sync(paystack_worker.kill)
    paystack.transfers.transfer_delay = 0.0
    assert await _status(committed_db, payout.id) == "pending"  # nothing recorded: it died first
    paystack_worker.start()
    await _started(paystack_worker, times=2)

    async def settled() -> str | None:
        await deliver_all(live_shop, paystack)
        status = await _status(committed_db, payout.id)
        return status if status == "paid" else None

    await eventually(settled, within=90, step=0.2)
    # One transfer at the provider, asked for once: the retry found it by reference.
    assert paystack.transfers.count() == transfers + 1
    assert paystack.calls["transfer"] == calls + 1
    async with committed_db.session_maker() as session:
        row = await the_payout(session, payout.id)
        # Settled either by the redelivered job (its second attempt found the transfer by reference)
        # or, when the transfer's webhook came first, by the webhook: never by a second transfer.
        assert row.status == "paid"
        assert row.attempts in (1, 2)
        assert await available(session, seller.vendor_id) == 0
        assert await ledger_problems(session) == []
