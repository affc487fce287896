"""Vendor payouts over HTTP and their settlement: payout accounts, balances, payouts on demand and
by schedule, transfer webhooks (failed, duplicated, out of order), staff holds, and who sees what.

The payment provider is the sandbox (it keeps no records, so a transfer event is taken as it
says); the transfer job and the event processing run in the test's transaction as the critical
worker would run them. The Paystack adapter, its verification and real workers (one killed
mid-payout) are in tests/test_payouts_provider.py.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx
import msgspec
import pytest
from litestar import Litestar
from sqlalchemy import func, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from core.adapters.payments import PaymentProvider, Transfer, sign
from core.adapters.payments import _sandbox_webhook_url as sandbox_webhook_url
from core.adapters.payments.sandbox import SandboxProvider, transfer_event
from core.jobs import job_buffer
from core.settings import Settings
from core.task_names import SEND_PAYOUT
from db.engine import Database
from db.models import AuditEvent, OutboxMessage, PaymentEvent, Payout, PayoutAccount, Vendor
from db.services.payouts.requests import Terms, run_scheduled
from db.services.payouts.transfers import process_transfer_event, send_payout
from tests.support.http import problem, serve
from tests.support.identity import make_user
from tests.support.payouts import (
    ACCOUNT,
    API,
    Seller,
    available,
    earn,
    ledger_problems,
    make_seller,
    payout_of,
)
from tests.test_cart_orders import auth

pytestmark = pytest.mark.anyio

WEBHOOK = f"{API}/webhooks/paystack"
SANDBOX = SandboxProvider()
MINIMUM = 500_000  # PAYOUT_MINIMUM's default


@contextlib.asynccontextmanager
async def _in_the_test_transaction(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    yield session


def in_test(session: AsyncSession) -> Callable[[], AbstractAsyncContextManager[AsyncSession]]:
    """A job's transactions inside the test's (rolled back at its end)."""
    return lambda: _in_the_test_transaction(session)


async def register(client: httpx.AsyncClient, seller: Seller, **body: str) -> httpx.Response:
    return await client.put(f"{API}/vendor/payout-account", headers=seller.headers, json={**ACCOUNT, **body})


async def ask(client: httpx.AsyncClient, seller: Seller, amount: int | None = None) -> httpx.Response:
    body = None if amount is None else {"amount": amount}
    return await client.post(f"{API}/vendor/payouts", headers=seller.headers, json=body)


async def paid_out(client: httpx.AsyncClient, session: AsyncSession, seller: Seller, amount: int) -> Payout:
    """A registered seller with ``amount`` available, all of it asked for (pending)."""
    assert (await register(client, seller)).status_code == 200
    await earn(session, seller.vendor_id, amount)
    made = await ask(client, seller)
    assert made.status_code == 201, made.text
    return await the_payout(session, uuid.UUID(made.json()["id"]))


async def the_payout(session: AsyncSession, payout_id: uuid.UUID) -> Payout:
    payout = await session.get(Payout, payout_id, populate_existing=True)
    assert payout is not None
    return payout


async def send(session: AsyncSession, payout: Payout, provider: PaymentProvider = SANDBOX) -> str:
    """The transfer job, as the critical worker runs it."""
    with job_buffer():
        return await send_payout(in_test(session), provider, payout.id)


async def deliver(
    client: httpx.AsyncClient, settings: Settings, event: str, payout: Payout, **extra: Any
) -> str:
    """A signed transfer webhook about ``payout``, as the provider POSTs it; the API's answer."""
    transfer = Transfer(
        payout.reference, payout.transfer_code or "TRF_x", "x", payout.amount, payout.currency
    )
    body = transfer_event(event, transfer, **extra)
    headers = {
        "x-paystack-signature": sign(body, settings.paystack_secret_key.reveal()),
        "content-type": "application/json",
    }
    response = await client.post(WEBHOOK, content=body, headers=headers)
    assert response.status_code == 200, response.text
    return str(response.json()["status"])


async def apply_events(session: AsyncSession, provider: PaymentProvider = SANDBOX) -> list[str]:
    """Process the stored transfer events not yet processed, oldest first, as the worker would."""
    events = (
        await session.scalars(
            select(PaymentEvent.id)
            .where(PaymentEvent.processed_at.is_(None), PaymentEvent.event_type.startswith("transfer."))
            .order_by(PaymentEvent.id)
        )
    ).all()
    outcomes = []
    for event_id in events:
        with job_buffer():
            outcomes.append(await process_transfer_event(session, provider, event_id))
        await session.flush()
    return outcomes


async def balance(client: httpx.AsyncClient, seller: Seller) -> dict[str, int]:
    response = await client.get(f"{API}/vendor/balance", headers=seller.headers)
    assert response.status_code == 200, response.text
    return {name: money["amount"] for name, money in response.json().items()}


# --- payout accounts ------------------------------------------------------------------------------


async def test_a_payout_account_is_resolved_by_the_provider_kept_masked_and_replaceable(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    seller = await make_seller(session, settings)
    problem(await client.get(f"{API}/vendor/payout-account", headers=seller.headers), 404)
    registered = await register(client, seller)
    assert registered.status_code == 200, registered.text
    shown = registered.json()
    fields = ("bank_code", "account_number", "account_last4", "account_name", "currency")
    assert {k: shown[k] for k in fields} == {
        "bank_code": "058",
        "account_number": "******6789",
        "account_last4": "6789",
        "account_name": "SANDBOX ACCOUNT 6789",
        "currency": "NGN",
    }  # fmt: skip
    assert (await client.get(f"{API}/vendor/payout-account", headers=seller.headers)).json() == shown
    row = await session.scalar(select(PayoutAccount).where(PayoutAccount.vendor_id == seller.vendor_id))
    assert row is not None
    assert row.recipient_code.startswith("RCP_")
    # The full number is kept nowhere: only its last four digits and a keyed hash.
    assert ACCOUNT["account_number"] not in " ".join(str(v) for v in vars(row).values())
    # The same account again changes nothing; another replaces it.
    assert (await register(client, seller)).json() == shown
    replaced = await register(client, seller, bank_code="044", account_number="9876543210")
    assert (replaced.json()["bank_code"], replaced.json()["account_name"]) == ("044", "SANDBOX ACCOUNT 3210")
    assert await session.scalar(select(func.count()).where(PayoutAccount.vendor_id == seller.vendor_id)) == 1


async def test_an_account_that_does_not_resolve_or_a_bad_body_is_refused(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    seller = await make_seller(session, settings)
    not_resolved = problem(await register(client, seller, account_number="123456789"), 422)
    assert not_resolved["type"].endswith("payout_account_not_resolved")
    assert [e["field"] for e in not_resolved["errors"]] == ["account_number"]
    for bad in ({"bank_code": "GTB"}, {"account_number": "12-34"}, {"account_number": ""}, {"iban": "x"}):
        problem(await register(client, seller, **bad), 422)
    problem(await client.put(f"{API}/vendor/payout-account", headers=seller.headers, json={}), 422)
    problem(await client.get(f"{API}/vendor/payout-account", headers=seller.headers), 404)


async def test_registrations_are_limited_so_the_route_cannot_look_up_account_names_at_will(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    seller = await make_seller(session, settings)
    for index in range(10):
        assert (await register(client, seller, account_number=f"01234567{index:02d}")).status_code == 200
    limited = problem(await register(client, seller), 429)
    assert limited["status"] == 429
    other = await make_seller(session, settings)
    assert (await register(client, other)).status_code == 200


# --- balance and payouts on demand -----------------------------------------------------------------


async def test_a_payout_on_demand_moves_the_available_balance_into_transit(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    seller = await make_seller(session, settings)
    await register(client, seller)
    await earn(session, seller.vendor_id, 1_200_000)
    assert await balance(client, seller) == {"pending": 0, "available": 1_200_000, "in_transit": 0}

    part = await ask(client, seller, 700_000)
    assert part.status_code == 201, part.text
    assert payout_of(part.json()) == ("pending", 700_000, "vendor")
    assert part.json()["reference"].startswith("fs-po-")
    assert await balance(client, seller) == {"pending": 0, "available": 500_000, "in_transit": 700_000}
    rest = await ask(client, seller)
    assert payout_of(rest.json()) == ("pending", 500_000, "vendor")
    assert await balance(client, seller) == {"pending": 0, "available": 0, "in_transit": 1_200_000}

    listed = (await client.get(f"{API}/vendor/payouts?limit=1", headers=seller.headers)).json()
    assert [p["id"] for p in listed["items"]] == [rest.json()["id"]]
    second = await client.get(f"{API}/vendor/payouts?cursor={listed['next_cursor']}", headers=seller.headers)
    assert [p["id"] for p in second.json()["items"]] == [part.json()["id"]]
    pending = await client.get(f"{API}/vendor/payouts?status=paid", headers=seller.headers)
    assert pending.json() == {"items": [], "next_cursor": None}
    # Each payout's transfer job is queued durably, once.
    jobs = (
        await session.scalars(select(OutboxMessage.args).where(OutboxMessage.task_name == SEND_PAYOUT))
    ).all()
    assert sorted(args[0] for args in jobs) == sorted([part.json()["id"], rest.json()["id"]])
    assert await ledger_problems(session) == []


async def test_payouts_below_the_minimum_above_the_balance_or_without_an_account_are_422(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    seller = await make_seller(session, settings)
    await earn(session, seller.vendor_id, 800_000)
    no_account = problem(await ask(client, seller), 422)
    assert no_account["type"].endswith("payout_account_required")
    await register(client, seller)
    for amount in (MINIMUM - 1, 800_001, 10**12):
        refused = problem(await ask(client, seller, amount), 422)
        assert [e["field"] for e in refused["errors"]] == ["amount"], refused
    problem(await ask(client, seller, 0), 422)
    problem(await client.post(f"{API}/vendor/payouts", headers=seller.headers, json={"amount": "all"}), 422)
    # Below the minimum available: nothing to pay out on demand.
    poorer = await make_seller(session, settings)
    await register(client, poorer)
    await earn(session, poorer.vendor_id, MINIMUM - 1)
    assert "smallest payout" in problem(await ask(client, poorer), 422)["detail"]
    assert await session.scalar(select(func.count()).select_from(Payout)) == 0
    assert await available(session, seller.vendor_id) == 800_000


async def test_a_vendor_never_sees_another_vendors_balance_account_or_payouts(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner, rival = await make_seller(session, settings), await make_seller(session, settings)
    await paid_out(client, session, owner, 900_000)
    await earn(session, owner.vendor_id, 300_000)
    assert await balance(client, rival) == {"pending": 0, "available": 0, "in_transit": 0}
    assert (await client.get(f"{API}/vendor/payouts", headers=rival.headers)).json()["items"] == []
    problem(await client.get(f"{API}/vendor/payout-account", headers=rival.headers), 404)
    assert await balance(client, owner) == {"pending": 0, "available": 300_000, "in_transit": 900_000}
    shopper = auth(settings, await make_user(session))
    for method, path in (
        ("GET", "/vendor/balance"),
        ("GET", "/vendor/payouts"),
        ("POST", "/vendor/payouts"),
        ("GET", "/vendor/payout-account"),
        ("PUT", "/vendor/payout-account"),
        ("GET", "/staff/payouts"),
    ):
        problem(await client.request(method, f"{API}{path}", headers=shopper, json=ACCOUNT), 403)
        problem(await client.request(method, f"{API}{path}", json=ACCOUNT), 401)
    problem(await client.get(f"{API}/staff/payouts", headers=owner.headers), 403)


# --- transfers and their webhooks ----------------------------------------------------------------


async def test_a_successful_transfer_pays_the_payout_once(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    seller = await make_seller(session, settings)
    payout = await paid_out(client, session, seller, 900_000)
    assert await send(session, payout) == "sent"
    payout = await the_payout(session, payout.id)
    assert (payout.status, payout.attempts) == ("processing", 1)
    assert payout.transfer_code is not None
    assert payout.sent_at is not None
    # The job again (redelivered): nothing more is sent.
    assert await send(session, payout) == "already_processing"

    assert await deliver(client, settings, "transfer.success", payout) == "queued"
    for _ in range(3):
        assert await deliver(client, settings, "transfer.success", payout) == "duplicate"
    assert await apply_events(session) == ["paid"]
    payout = await the_payout(session, payout.id)
    assert (payout.status, payout.failure_reason) == ("paid", None)
    assert payout.completed_at is not None
    assert await balance(client, seller) == {"pending": 0, "available": 0, "in_transit": 0}
    # The processed event, asked again (a redelivered job), answers what it did.
    event_id = await session.scalar(select(PaymentEvent.id).where(PaymentEvent.reference == payout.reference))
    assert event_id is not None
    assert await process_transfer_event(session, SANDBOX, event_id) == "paid"
    assert await ledger_problems(session) == []


async def test_a_failed_transfer_returns_the_money_to_available(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    seller = await make_seller(session, settings)
    payout = await paid_out(client, session, seller, 900_000)
    await send(session, payout)
    await deliver(client, settings, "transfer.failed", payout, failure_reason="Account closed")
    assert await apply_events(session) == ["failed"]
    payout = await the_payout(session, payout.id)
    assert (payout.status, payout.failure_reason) == ("failed", "Account closed")
    assert await balance(client, seller) == {"pending": 0, "available": 900_000, "in_transit": 0}
    shown = (await client.get(f"{API}/vendor/payouts", headers=seller.headers)).json()["items"]
    assert [(p["status"], p["failure_reason"]) for p in shown] == [("failed", "Account closed")]
    # The money can be asked for again.
    again = await ask(client, seller)
    assert payout_of(again.json()) == ("pending", 900_000, "vendor")
    assert await ledger_problems(session) == []


async def test_out_of_order_and_repeated_transfer_events_end_in_one_outcome(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    seller = await make_seller(session, settings)
    failed = await paid_out(client, session, seller, 600_000)
    await send(session, failed)
    # Failed, then a success arrives: the money came back once and is never paid out twice.
    await deliver(client, settings, "transfer.failed", failed)
    await deliver(client, settings, "transfer.success", failed)
    assert await apply_events(session) == ["failed", "ignored_paid_after_failed"]

    await earn(session, seller.vendor_id, 700_000)
    reversed_ = await the_payout(session, uuid.UUID((await ask(client, seller, 700_000)).json()["id"]))
    await send(session, reversed_)
    # Paid, a stray failure, reversed by the bank, then everything again.
    for event in ("transfer.success", "transfer.failed", "transfer.reversed"):
        assert await deliver(client, settings, event, reversed_) == "queued"
        await apply_events(session)
    for event in ("transfer.reversed", "transfer.success", "transfer.failed"):
        assert await deliver(client, settings, event, reversed_) == "duplicate"
    outcomes = (
        await session.scalars(
            select(PaymentEvent.outcome)
            .where(PaymentEvent.reference == reversed_.reference)
            .order_by(PaymentEvent.id)
        )
    ).all()
    assert outcomes == ["paid", "ignored_failed_after_paid", "reversed"]
    assert [(await the_payout(session, p.id)).status for p in (failed, reversed_)] == ["failed", "reversed"]
    # Both payouts' money is available again, exactly once each.
    assert await balance(client, seller) == {"pending": 0, "available": 1_300_000, "in_transit": 0}
    assert await ledger_problems(session) == []


async def test_the_sandbox_completes_a_transfer_with_a_signed_webhook_through_the_api(
    make_app: Callable[..., Litestar], session: AsyncSession, settings: Settings
) -> None:
    app = make_app()

    def sandbox(secret: str) -> SandboxProvider:
        # As in the dev stack, where it POSTs to the API's own address; here through its ASGI app.
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]  # Litestar is an ASGI app
        url = f"http://testserver{WEBHOOK}"
        return SandboxProvider(secret=secret, transfer_webhook_url=url, transport=transport)

    async with serve(app) as client:
        seller = await make_seller(session, settings)
        lost = await paid_out(client, session, seller, 600_000)
        # Signed with another key, its webhook is refused (401): the payout waits for its outcome.
        assert await send(session, lost, sandbox("not-the-secret")) == "sent"
        assert await session.scalar(select(func.count()).select_from(PaymentEvent)) == 0
        await earn(session, seller.vendor_id, 700_000)
        payout = await the_payout(session, uuid.UUID((await ask(client, seller)).json()["id"]))
        assert await send(session, payout, sandbox(settings.paystack_secret_key.reveal())) == "sent"
    assert await apply_events(session) == ["paid"]
    assert [(await the_payout(session, p.id)).status for p in (lost, payout)] == ["processing", "paid"]
    assert await ledger_problems(session) == []


async def test_a_transfer_event_that_names_no_payout_changes_nothing(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    seller = await make_seller(session, settings)
    payout = await paid_out(client, session, seller, 600_000)
    stranger = Payout(
        vendor_id=seller.vendor_id,
        provider="sandbox",
        amount=1,
        currency="NGN",
        reference=f"fs-po-{uuid.uuid4().hex}",
        recipient_code="x",
        bank_code="058",
        account_last4="0000",
        requested_by="vendor",
    )
    assert await deliver(client, settings, "transfer.success", stranger) == "queued"
    assert await apply_events(session) == ["unknown_reference"]
    assert (await the_payout(session, payout.id)).status == "pending"


# --- the scheduled run ----------------------------------------------------------------------------


async def test_the_scheduled_run_pays_every_eligible_vendor_once(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    due = [await make_seller(session, settings) for _ in range(3)]
    poor, no_account, held = [await make_seller(session, settings) for _ in range(3)]
    for seller in (*due, poor, held):
        await register(client, seller)
    for index, seller in enumerate(due):
        await earn(session, seller.vendor_id, MINIMUM + index * 100_000)
    await earn(session, poor.vendor_id, MINIMUM - 1)
    await earn(session, no_account.vendor_id, 2 * MINIMUM)
    await earn(session, held.vendor_id, 2 * MINIMUM)
    await session.execute(update(Vendor).where(Vendor.id == held.vendor_id).values(payouts_on_hold=True))
    terms = Terms.of(settings, "sandbox")

    with job_buffer() as jobs:
        counts = await run_scheduled(in_test(session), terms)
    assert counts == {"due": 3, "paid_out": 3}
    payouts = (await session.scalars(select(Payout).order_by(Payout.amount))).all()
    assert [(p.vendor_id, p.amount, p.requested_by) for p in payouts] == [
        (s.vendor_id, MINIMUM + i * 100_000, "schedule") for i, s in enumerate(due)
    ]
    assert sorted(j.args[0] for j in jobs.jobs if j.task_name == SEND_PAYOUT) == sorted(
        str(p.id) for p in payouts
    )
    # Again, and again after new earnings: nobody is paid twice within the interval.
    await earn(session, due[0].vendor_id, MINIMUM)
    with job_buffer():
        assert await run_scheduled(in_test(session), terms) == {"due": 0, "paid_out": 0}
    # A week later the new earnings are due.
    later = datetime.now(UTC) + timedelta(seconds=settings.payout_interval_seconds + 60)
    with job_buffer():
        assert await run_scheduled(in_test(session), terms, now=later) == {"due": 1, "paid_out": 1}
    for seller in (poor, no_account, held):
        assert await session.scalar(select(func.count()).where(Payout.vendor_id == seller.vendor_id)) == 0
    assert await ledger_problems(session) == []


# --- staff: holds and the console ------------------------------------------------------------------


async def test_staff_hold_a_vendors_payouts_and_release_them(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    seller = await make_seller(session, settings)
    staff_user = await make_user(session, role="staff")
    staff = auth(settings, staff_user)
    waiting = await paid_out(client, session, seller, 900_000)
    await earn(session, seller.vendor_id, 600_000)
    hold_path = f"{API}/staff/vendors/{seller.vendor_id}/payouts/hold"

    held = await client.post(hold_path, headers=staff, json={"reason": "Chargebacks under review"})
    assert held.status_code == 200, held.text
    assert (held.json()["payouts_on_hold"], held.json()["reason"]) == (True, "Chargebacks under review")
    assert problem(await ask(client, seller), 409)["type"].endswith("payouts_on_hold")
    # The payout made before the hold waits, unsent; the scheduled run skips the vendor.
    assert await send(session, waiting) == "held"
    assert (await the_payout(session, waiting.id)).status == "pending"
    with job_buffer():
        assert await run_scheduled(in_test(session), Terms.of(settings, "sandbox")) == {
            "due": 0,
            "paid_out": 0,
        }
    problem(await client.post(hold_path, headers=seller.headers, json={"reason": "mine"}), 403)
    problem(await client.post(hold_path, headers=staff, json={"reason": " "}), 422)
    problem(
        await client.post(
            f"{API}/staff/vendors/{uuid.uuid4()}/payouts/hold", headers=staff, json={"reason": "x"}
        ),
        404,
    )

    released = await client.post(f"{API}/staff/vendors/{seller.vendor_id}/payouts/release", headers=staff)
    assert (released.status_code, released.json()["payouts_on_hold"]) == (200, False)
    # Releasing queues the waiting payout's transfer again; it goes out now.
    jobs = (
        await session.scalars(select(OutboxMessage.args).where(OutboxMessage.task_name == SEND_PAYOUT))
    ).all()
    assert [args[0] for args in jobs].count(str(waiting.id)) == 2
    assert await send(session, waiting) == "sent"
    assert payout_of((await ask(client, seller)).json()) == ("pending", 600_000, "vendor")
    audit = (
        await session.scalars(
            select(AuditEvent.event_type).where(AuditEvent.actor_id == staff_user.id).order_by(AuditEvent.id)
        )
    ).all()
    assert audit == ["payouts_held", "payouts_released"]
    assert await ledger_problems(session) == []


async def test_staff_see_every_payout_by_status_and_vendor_in_pages(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    one, two = await make_seller(session, settings), await make_seller(session, settings)
    first = await paid_out(client, session, one, 600_000)
    second = await paid_out(client, session, two, 700_000)
    await send(session, second)
    staff = auth(settings, await make_user(session, role="staff"))

    everything = (await client.get(f"{API}/staff/payouts", headers=staff)).json()
    assert [(i["payout"]["id"], i["vendor"]["id"]) for i in everything["items"]] == [
        (str(second.id), str(two.vendor_id)),
        (str(first.id), str(one.vendor_id)),
    ]
    processing = (await client.get(f"{API}/staff/payouts?status=processing", headers=staff)).json()
    assert [i["payout"]["id"] for i in processing["items"]] == [str(second.id)]
    of_one = (await client.get(f"{API}/staff/payouts?vendor={one.vendor_id}", headers=staff)).json()
    assert [i["payout"]["id"] for i in of_one["items"]] == [str(first.id)]
    page = (await client.get(f"{API}/staff/payouts?limit=1", headers=staff)).json()
    rest = (
        await client.get(f"{API}/staff/payouts?limit=1&cursor={page['next_cursor']}", headers=staff)
    ).json()
    assert [i["payout"]["id"] for i in page["items"] + rest["items"]] == [str(second.id), str(first.id)]
    problem(await client.get(f"{API}/staff/payouts?status=lost", headers=staff), 422)
    problem(await client.get(f"{API}/staff/payouts?cursor=nonsense", headers=staff), 422)


async def test_the_database_keeps_a_payouts_terms_and_moves_it_only_forward(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    seller = await make_seller(session, settings)
    payout = await paid_out(client, session, seller, 600_000)
    await send(session, payout)
    await deliver(client, settings, "transfer.success", payout)
    await apply_events(session)
    refused = (
        {"status": "pending"},
        {"status": "failed"},
        {"amount": 1},
        {"reference": "fs-po-other"},
        {"vendor_id": (await make_seller(session, settings)).vendor_id},
    )
    for change in refused:
        with pytest.raises(DBAPIError, match="payout"):
            async with session.begin_nested():
                await session.execute(update(Payout).where(Payout.id == payout.id).values(**change))
    async with session.begin_nested():
        await session.execute(update(Payout).where(Payout.id == payout.id).values(status="reversed"))


async def test_payouts_asked_at_the_same_moment_pay_the_balance_out_once(
    live_client: httpx.AsyncClient, committed_db: Database, settings: Settings
) -> None:
    """Five requests at once for the whole balance, each in its own transaction: one payout."""
    async with committed_db.session_maker() as session:
        seller = await make_seller(session, settings)
        assert (await register(live_client, seller)).status_code == 200
        await earn(session, seller.vendor_id, 1_000_000)
    answers: list[int] = []

    async def request() -> None:
        answers.append((await ask(live_client, seller)).status_code)

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(request)
    assert sorted(answers) == [201, 422, 422, 422, 422]
    async with committed_db.session_maker() as session:
        assert await session.scalar(select(func.count()).select_from(Payout)) == 1
        assert await available(session, seller.vendor_id) == 0
        assert await ledger_problems(session) == []


def test_the_sandbox_delivers_transfer_webhooks_to_the_dev_stacks_own_api_only(settings: Settings) -> None:
    dev = msgspec.structs.replace(settings, app_env="dev", api_host="0.0.0.0", api_port=8123)
    assert sandbox_webhook_url(dev) == "http://127.0.0.1:8123/api/v1/webhooks/paystack"
    assert sandbox_webhook_url(settings) is None  # tests: an address here may be anyone's
