"""Payments: starting one, webhook signatures and replays, applying charges, the Paystack adapter.

The webhook's effect on the order runs on the critical queue; here the processing service is
called directly in the test's transaction (the worker path is in tests/test_orders_e2e.py).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import msgspec
import pytest
from litestar import Litestar
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.adapters.payments import PaymentProviderError, PaymentRequest, sign
from core.adapters.payments.paystack import PaystackProvider
from core.adapters.payments.sandbox import SandboxProvider, charge_success_event
from core.jobs import job_buffer
from core.settings import Settings
from core.task_names import REFUND_PAYMENT
from db.models import Order, OrderEvent, OutboxMessage, Payment, PaymentEvent, User, Variant
from db.services.fulfilment import moves
from db.services.fulfilment.moves import Acting
from db.services.fulfilment.queries import of_order
from db.services.orders.lifecycle import cancel, expire_due, staff_move
from db.services.payments.processing import process_event, refund_next
from tests.support.catalog import make_product, make_store
from tests.support.http import problem, serve
from tests.support.identity import make_user
from tests.support.orders import make_order, variants_of
from tests.test_cart_orders import auth

pytestmark = pytest.mark.anyio

API = "/api/v1"
WEBHOOK = f"{API}/webhooks/paystack"
SANDBOX = SandboxProvider("http://api.test")


def signed(settings: Settings, body: bytes) -> dict[str, str]:
    return {
        "x-paystack-signature": sign(body, settings.paystack_secret_key.reveal()),
        "content-type": "application/json",
    }


async def unpaid_order(
    session: AsyncSession, *, stock: int = 3, quantity: int = 2
) -> tuple[User, Order, Variant]:
    store = await make_store(session)
    product = await make_product(session, store, price=2_500_000, variants=[("M", "black", stock)])
    variant = (await variants_of(session, product))[0]
    buyer = await make_user(session)
    order = await make_order(session, buyer, [(variant, quantity)], status="pending_payment")
    return buyer, order, variant


async def start(client: httpx.AsyncClient, settings: Settings, buyer: User, order: Order) -> dict[str, Any]:
    response = await client.post(f"{API}/orders/{order.id}/payments", headers=auth(settings, buyer))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def deliver(
    client: httpx.AsyncClient, settings: Settings, reference: str, amount: int, currency: str = "NGN"
) -> httpx.Response:
    body = charge_success_event(reference, amount, currency, "buyer@example.com")
    return await client.post(WEBHOOK, content=body, headers=signed(settings, body))


async def the_event(session: AsyncSession, reference: str) -> PaymentEvent:
    event = await session.scalar(select(PaymentEvent).where(PaymentEvent.reference == reference))
    assert event is not None
    return event


# --- starting a payment ---------------------------------------------------------------------


async def test_the_sandbox_checkout_url_comes_from_configuration_not_the_host_header(
    make_app: Callable[..., Litestar], session: AsyncSession, settings: Settings
) -> None:
    configured = msgspec.structs.replace(settings, public_base_url="https://api.fashionistar.example/")
    buyer, order, _ = await unpaid_order(session)
    async with serve(make_app(settings=configured)) as client:
        response = await client.post(
            f"{API}/orders/{order.id}/payments",
            headers={
                **auth(settings, buyer),
                "Host": "attacker.example",
                "X-Forwarded-Host": "attacker.example",
            },
        )
    assert response.status_code == 201, response.text
    url = urlparse(response.json()["authorization_url"])
    assert (url.scheme, url.netloc) == ("https", "api.fashionistar.example")
    assert url.path == f"{API}/sandbox/paystack/checkout/{response.json()['reference']}"


def test_without_a_public_base_url_the_api_address_is_used(settings: Settings) -> None:
    local = msgspec.structs.replace(settings, public_base_url=None, api_host="127.0.0.1", api_port=8123)
    assert local.public_api_base_url == "http://127.0.0.1:8123"


async def test_starting_a_payment_gives_a_sandbox_checkout_url(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    buyer, order, _ = await unpaid_order(session)
    started = await start(client, settings, buyer, order)
    assert started["provider"] == "sandbox"
    assert started["amount"] == {"amount": 5_000_000, "currency": "NGN"}
    url = urlparse(started["authorization_url"])
    assert url.path == f"{API}/sandbox/paystack/checkout/{started['reference']}"
    assert parse_qs(url.query)["amount"] == ["5000000"]
    # Asking again returns the same open attempt, not a second transaction.
    assert (await start(client, settings, buyer, order))["reference"] == started["reference"]
    detail = (await client.get(f"{API}/orders/{order.id}", headers=auth(settings, buyer))).json()
    assert [(p["reference"], p["status"]) for p in detail["payments"]] == [
        (started["reference"], "initialized")
    ]


async def test_orders_that_cannot_be_paid_are_refused(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    buyer, order, _ = await unpaid_order(session)
    await session.execute(
        update(Order).where(Order.id == order.id).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    )
    late = problem(await client.post(f"{API}/orders/{order.id}/payments", headers=auth(settings, buyer)), 409)
    assert "run out" in late["detail"]
    paid_buyer = await make_user(session)
    store = await make_store(session)
    variant = (await variants_of(session, await make_product(session, store)))[0]
    paid = await make_order(session, paid_buyer, [(variant, 1)], status="paid")
    problem(await client.post(f"{API}/orders/{paid.id}/payments", headers=auth(settings, paid_buyer)), 409)
    problem(await client.post(f"{API}/orders/{paid.id}/payments"), 401)


# --- the webhook ----------------------------------------------------------------------------


async def test_a_bad_or_missing_signature_is_401_and_stores_nothing(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    buyer, order, _ = await unpaid_order(session)
    started = await start(client, settings, buyer, order)
    body = charge_success_event(started["reference"], 5_000_000, "NGN", "x@example.com")
    problem(await client.post(WEBHOOK, content=body, headers={"content-type": "application/json"}), 401)
    forged = {"x-paystack-signature": sign(body, "not-the-secret"), "content-type": "application/json"}
    problem(await client.post(WEBHOOK, content=body, headers=forged), 401)
    # A valid signature of another body does not cover this one.
    other = charge_success_event(started["reference"], 1, "NGN", "x@example.com")
    problem(await client.post(WEBHOOK, content=body, headers=signed(settings, other)), 401)
    problem(await client.post(WEBHOOK, content=body, headers={"x-paystack-signature": "zz"}), 401)
    assert await session.scalar(select(func.count()).select_from(PaymentEvent)) == 0
    assert (
        await session.scalar(select(func.count()).where(OutboxMessage.task_name.like("critical.payments%")))
        == 0
    )


async def test_a_signed_event_is_stored_once_and_queued_once(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    buyer, order, _ = await unpaid_order(session)
    started = await start(client, settings, buyer, order)
    first = await deliver(client, settings, started["reference"], 5_000_000)
    assert first.status_code == 200
    assert first.json() == {"status": "queued"}
    for _ in range(5):
        replay = await deliver(client, settings, started["reference"], 5_000_000)
        assert replay.json() == {"status": "duplicate"}
    assert await session.scalar(select(func.count()).select_from(PaymentEvent)) == 1
    jobs = (
        await session.scalars(
            select(OutboxMessage).where(OutboxMessage.task_name == "critical.payments.process_event")
        )
    ).all()
    assert len(jobs) == 1
    # Other event types are kept for the record but change nothing (transfer events settle payouts:
    # tests/test_payouts.py).
    dispute = msgspec.json.encode(
        {"event": "charge.dispute.create", "data": {"reference": started["reference"]}}
    )
    assert (await client.post(WEBHOOK, content=dispute, headers=signed(settings, dispute))).json() == {
        "status": "stored"
    }


async def test_a_signed_body_that_is_not_an_event_is_400(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    for body in (b"not json", b'{"event": "charge.success"}', b'{"data": {"reference": "x"}}'):
        problem(await client.post(WEBHOOK, content=body, headers=signed(settings, body)), 400)
    assert await session.scalar(select(func.count()).select_from(PaymentEvent)) == 0


# --- applying a charge ----------------------------------------------------------------------


async def test_a_charge_pays_the_order_once_and_sells_its_stock(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    buyer, order, variant = await unpaid_order(session)
    started = await start(client, settings, buyer, order)
    await deliver(client, settings, started["reference"], 5_000_000)
    event = await the_event(session, started["reference"])
    with job_buffer():
        assert await process_event(session, SANDBOX, event.id) == "paid"
    for _ in range(3):
        assert await process_event(session, SANDBOX, event.id) == "paid"
    await session.refresh(order)
    await session.refresh(variant)
    assert order.status == "paid"
    assert order.paid_at is not None
    assert (variant.stock, variant.reserved) == (1, 0)
    payment = await session.scalar(select(Payment).where(Payment.reference == started["reference"]))
    assert payment is not None
    assert payment.status == "succeeded"
    moves = (
        await session.scalars(
            select(OrderEvent).where(OrderEvent.order_id == order.id, OrderEvent.to_status == "paid")
        )
    ).all()
    assert [(m.from_status, m.actor) for m in moves] == [("pending_payment", "payment")]


async def test_an_amount_mismatch_never_pays_and_is_flagged(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    buyer, order, variant = await unpaid_order(session)
    started = await start(client, settings, buyer, order)
    await deliver(client, settings, started["reference"], 100)
    assert (
        await process_event(session, SANDBOX, (await the_event(session, started["reference"])).id)
        == "amount_mismatch"
    )
    await session.refresh(order)
    assert order.status == "pending_payment"
    payment = await session.scalar(select(Payment).where(Payment.reference == started["reference"]))
    assert payment is not None
    assert payment.status == "flagged"
    assert "charged 100 NGN, expected 5000000 NGN" in (payment.flag_reason or "")
    await session.refresh(variant)
    assert (variant.stock, variant.reserved) == (1, 2)


async def test_a_currency_mismatch_never_pays(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    buyer, order, _ = await unpaid_order(session)
    started = await start(client, settings, buyer, order)
    await deliver(client, settings, started["reference"], 5_000_000, "USD")
    assert (
        await process_event(session, SANDBOX, (await the_event(session, started["reference"])).id)
        == "amount_mismatch"
    )
    await session.refresh(order)
    assert order.status == "pending_payment"


async def test_a_payment_just_after_expiry_takes_the_stock_again_when_it_can(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    buyer, order, variant = await unpaid_order(session, stock=3, quantity=2)
    started = await start(client, settings, buyer, order)
    await session.execute(
        update(Order).where(Order.id == order.id).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    )
    with job_buffer():
        assert await expire_due(session) >= 1
    await session.refresh(variant)
    assert (variant.stock, variant.reserved) == (3, 0)
    await deliver(client, settings, started["reference"], 5_000_000)
    with job_buffer():
        outcome = await process_event(session, SANDBOX, (await the_event(session, started["reference"])).id)
    assert outcome == "paid_after_expiry"
    await session.refresh(order)
    await session.refresh(variant)
    assert order.status == "paid"
    assert (variant.stock, variant.reserved) == (1, 0)


async def test_a_payment_after_expiry_is_refunded_when_the_stock_is_gone(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    buyer, order, variant = await unpaid_order(session, stock=2, quantity=2)
    started = await start(client, settings, buyer, order)
    await session.execute(
        update(Order).where(Order.id == order.id).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    )
    with job_buffer():
        await expire_due(session)
    # Someone else bought the released units meanwhile.
    await make_order(session, await make_user(session), [(variant, 2)], status="paid")
    await deliver(client, settings, started["reference"], 5_000_000)
    with job_buffer() as jobs:
        outcome = await process_event(session, SANDBOX, (await the_event(session, started["reference"])).id)
    assert outcome == "refunded_expired"
    await session.refresh(order)
    await session.refresh(variant)
    assert order.status == "expired"
    assert (variant.stock, variant.reserved) == (0, 0)
    payment = await session.scalar(select(Payment).where(Payment.reference == started["reference"]))
    assert payment is not None
    assert payment.status == "refund_pending"
    assert [(job.task_name, job.args, job.durable) for job in jobs.jobs if "refund" in job.task_name] == [
        ("critical.payments.refund", (str(payment.id),), True)
    ]
    with job_buffer() as notices:
        assert await refund_next(session, SANDBOX, payment.id) == "refunded"
        assert await refund_next(session, SANDBOX, payment.id) == "nothing_pending"
    assert [job.task_name for job in notices.jobs] == ["emails.notifications.refund_sent"]
    await session.refresh(payment)
    assert (payment.status, payment.refunded_amount) == ("refunded", payment.amount)


async def test_expiry_releases_stock_exactly_once(session: AsyncSession) -> None:
    _, order, variant = await unpaid_order(session, stock=3, quantity=2)
    with job_buffer():
        assert await expire_due(session) == 0  # not due yet
        await session.execute(
            update(Order)
            .where(Order.id == order.id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        assert await expire_due(session) == 1
        assert await expire_due(session) == 0
    await session.refresh(order)
    await session.refresh(variant)
    assert order.status == "expired"
    assert (variant.stock, variant.reserved) == (3, 0)


# --- staff moves ----------------------------------------------------------------------------


async def test_staff_move_orders_through_the_state_machine(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    staff_user = await make_user(session, role="staff")
    staff = auth(settings, staff_user)
    buyer, order, _ = await unpaid_order(session)
    url = f"{API}/staff/orders/{order.id}/status"
    problem(await client.post(url, json={"status": "refunded"}, headers=staff), 409)
    # Shipping moves per fulfilment now; the order's own status follows.
    problem(await client.post(url, json={"status": "fulfilled"}, headers=staff), 422)
    _, _, variant = await unpaid_order(session, stock=3, quantity=1)
    paid = await make_order(session, buyer, [(variant, 1)], status="paid")
    url = f"{API}/staff/orders/{paid.id}/status"
    fulfilment = (await of_order(session, paid.id))[0]
    shipped = await client.post(
        f"{API}/staff/fulfilments/{fulfilment.id}/ship",
        json={"carrier": "DHL", "tracking_number": "DHL 123"},
        headers=staff,
    )
    assert shipped.status_code == 200, shipped.text
    assert shipped.json()["order_status"] == "shipped"
    # Shipped orders can no longer be cancelled by their buyer.
    problem(await client.post(f"{API}/orders/{paid.id}/cancel", headers=auth(settings, buyer)), 409)
    delivered = await client.post(f"{API}/staff/fulfilments/{fulfilment.id}/deliver", headers=staff)
    assert delivered.json()["order_status"] == "delivered"
    problem(await client.post(url, json={"status": "paid"}, headers=staff), 422)
    problem(await client.post(url, json={"status": "refunded"}, headers=auth(settings, buyer)), 403)
    refunded = await client.post(url, json={"status": "refunded", "reason": "lost in transit"}, headers=staff)
    assert refunded.json()["status"] == "refunded"
    problem(await client.post(url, json={"status": "cancelled"}, headers=staff), 409)
    problem(
        await client.post(
            f"{API}/staff/orders/{uuid.uuid4()}/status", json={"status": "refunded"}, headers=staff
        ),
        404,
    )
    audit = (
        await session.scalars(
            select(OrderEvent).where(OrderEvent.order_id == paid.id).order_by(OrderEvent.id)
        )
    ).all()
    assert [(a.to_status, a.actor, a.fulfilment_id is not None) for a in audit][-5:] == [
        ("shipped", "staff", True),
        ("shipped", "staff", False),
        ("delivered", "staff", True),
        ("delivered", "staff", False),
        ("refunded", "staff", False),
    ]
    assert audit[-1].reason == "lost in transit"


async def test_leaving_a_paid_status_for_cancelled_or_refunded_refunds_once_whoever_moves_it(
    session: AsyncSession,
) -> None:
    """The refund goes with the move (transitions.transition), not with its caller: the buyer's
    cancel of a paid order, staff's refund of a delivered one, staff's cancel of a paid one each
    queue one durable refund per successful payment; other moves queue none."""

    async def paid_order(final: str = "paid") -> tuple[Order, Payment, User]:
        buyer, order, _ = await unpaid_order(session, stock=3, quantity=1)
        order.status = final
        order.paid_at = datetime.now(UTC)
        payment = Payment(
            order_id=order.id,
            provider="sandbox",
            reference=f"ref-{uuid.uuid4().hex}",
            amount=order.total_amount,
            currency=order.currency,
            status="succeeded",
            authorization_url="https://sandbox.invalid/pay",
        )
        session.add(payment)
        await session.flush()
        return order, payment, buyer

    async def refunds_of(move: Any, payment: Payment) -> list[tuple[str, tuple[Any, ...], bool]]:
        with job_buffer() as jobs:
            await move()
        await session.refresh(payment)
        return [(j.task_name, j.args, j.durable) for j in jobs.jobs if j.task_name == REFUND_PAYMENT]

    staff = await make_user(session, role="staff")
    order, payment, buyer = await paid_order()
    queued = await refunds_of(lambda: cancel(session, order.id, user_id=buyer.id), payment)
    assert queued == [(REFUND_PAYMENT, (str(payment.id),), True)]
    assert (order.status, payment.status) == ("cancelled", "refund_pending")

    order, payment, _ = await paid_order("delivered")
    queued = await refunds_of(
        lambda: staff_move(session, order.id, "refunded", staff_id=staff.id, reason="rma"), payment
    )
    assert queued == [(REFUND_PAYMENT, (str(payment.id),), True)]
    assert payment.status == "refund_pending"

    order, payment, _ = await paid_order()
    queued = await refunds_of(
        lambda: staff_move(session, order.id, "cancelled", staff_id=staff.id, reason="lost"), payment
    )
    assert queued == [(REFUND_PAYMENT, (str(payment.id),), True)]

    order, payment, _ = await paid_order()
    acting = Acting(actor="staff", user_id=staff.id, vendor_id=None)
    fulfilment = (await of_order(session, order.id))[0]
    shipped = await refunds_of(
        lambda: moves.ship(session, fulfilment.id, acting, moves.Tracking("DHL", "DHL-1")), payment
    )
    assert shipped == []
    assert payment.status == "succeeded"

    # An unpaid order has nothing to refund: its cancel queues none.
    buyer, unpaid, _ = await unpaid_order(session, stock=3, quantity=1)
    with job_buffer() as jobs:
        await cancel(session, unpaid.id, user_id=buyer.id)
    assert [j for j in jobs.jobs if j.task_name == REFUND_PAYMENT] == []


# --- the Paystack adapter, against a stand-in for Paystack's HTTP API -------------------------


async def test_paystack_adapter_speaks_paystacks_api() -> None:
    seen: list[httpx.Request] = []

    def paystack(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/transaction/initialize":
            body = json.loads(request.content)
            return httpx.Response(
                200,
                json={
                    "status": True,
                    "message": "ok",
                    "data": {
                        "authorization_url": "https://checkout.paystack.com/abc",
                        "access_code": "abc",
                        "reference": body["reference"],
                    },
                },
            )
        if request.url.path == "/transaction/verify/ref-1":
            return httpx.Response(
                200,
                json={
                    "status": True,
                    "data": {
                        "reference": "ref-1",
                        "status": "success",
                        "amount": 5000,
                        "currency": "NGN",
                        "id": 1,
                    },
                },
            )
        if request.url.path == "/refund":
            return httpx.Response(200, json={"status": True, "data": {"status": "pending"}})
        return httpx.Response(400, json={"status": False, "message": "Transaction reference not found"})

    provider = PaystackProvider(
        secret_key="sk_test_x",
        base_url="https://api.paystack.co",
        timeout=5,
        transport=httpx.MockTransport(paystack),
    )
    started = await provider.initialize(
        PaymentRequest(
            reference="ref-1",
            amount=5000,
            currency="NGN",
            email="a@b.co",
            callback_url="https://shop/x",
        )
    )
    assert started.authorization_url == "https://checkout.paystack.com/abc"
    assert seen[0].headers["authorization"] == "Bearer sk_test_x"
    assert json.loads(seen[0].content) == {
        "email": "a@b.co",
        "amount": 5000,
        "currency": "NGN",
        "reference": "ref-1",
        "callback_url": "https://shop/x",
    }
    verified = await provider.verify("ref-1")
    assert (verified.succeeded, verified.amount, verified.currency) == (True, 5000, "NGN")
    await provider.refund("ref-1", 5000)
    assert json.loads(seen[-1].content) == {"transaction": "ref-1", "amount": 5000}
    with pytest.raises(PaymentProviderError, match="reference not found"):
        await provider.verify("unknown")

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    offline = PaystackProvider(
        secret_key="k", base_url="https://api.paystack.co", timeout=5, transport=httpx.MockTransport(down)
    )
    with pytest.raises(PaymentProviderError, match="could not be reached"):
        await offline.verify("ref-1")
    await provider.close()
    await offline.close()
