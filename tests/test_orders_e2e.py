"""Commerce across processes on the real, committing database: concurrent buyers, concurrent
retries of one Idempotency-Key, webhooks applied by the real worker, expiry by the real
scheduler and worker, and the whole shopper journey through the dev payment sandbox."""

from __future__ import annotations

import asyncio
import email
import email.policy
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from sqlalchemy import func, select, update
from taskiq import AsyncBroker

from core.adapters.payments import sign
from core.adapters.payments.sandbox import charge_success_event
from core.settings import Settings
from db.engine import Database
from db.models import Order, OrderEvent, OrderLine, PaymentEvent, Variant
from tests.conftest import run_task
from tests.support.catalog import make_product, make_store
from tests.support.identity import make_user
from tests.support.orders import make_order, variants_of
from tests.support.stack import WorkerProcess
from tests.test_cart_orders import ADDRESS, auth
from tests.test_tasks_e2e import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.worker]

API = "/api/v1"


async def one_variant(committed_db: Database, stock: int, price: int = 2_000_000) -> Variant:
    async with committed_db.session_maker() as session:
        store = await make_store(session)
        product = await make_product(session, store, price=price, variants=[("M", "black", stock)])
        return (await variants_of(session, product))[0]


async def stock_of(committed_db: Database, variant_id: uuid.UUID) -> tuple[int, int]:
    async with committed_db.session_maker() as session:
        row = (
            await session.execute(select(Variant.stock, Variant.reserved).where(Variant.id == variant_id))
        ).one()
        return row[0], row[1]


async def test_fifty_buyers_for_five_units_make_exactly_five_orders(
    live_client: httpx.AsyncClient, committed_db: Database, settings: Settings
) -> None:
    variant = await one_variant(committed_db, stock=5)
    async with committed_db.session_maker() as session:
        buyers = [auth(settings, await make_user(session)) for _ in range(50)]
    body = {"shipping_address": ADDRESS, "items": [{"variant_id": str(variant.id), "quantity": 1}]}
    low_water: list[int] = []

    async def watch() -> None:
        # Stock is sampled from another connection while the buyers race.
        while True:
            low_water.append((await stock_of(committed_db, variant.id))[0])
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    responses = await asyncio.gather(
        *(
            live_client.post(
                f"{API}/orders", json=body, headers={**buyer, "Idempotency-Key": str(uuid.uuid4())}
            )
            for buyer in buyers
        )
    )
    watcher.cancel()
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 5, 409: 45}, statuses
    assert all(r.json()["type"].endswith("out_of_stock") for r in responses if r.status_code == 409)
    assert await stock_of(committed_db, variant.id) == (0, 5)
    assert min(low_water) >= 0
    async with committed_db.session_maker() as session:
        ordered = await session.scalar(
            select(func.coalesce(func.sum(OrderLine.quantity), 0))
            .join(Order, Order.id == OrderLine.order_id)
            .where(OrderLine.variant_id == variant.id, Order.status == "pending_payment")
        )
        assert ordered == 5  # reserved == the units of unpaid orders
        assert await session.scalar(select(func.count()).select_from(Order)) == 5


async def test_ten_concurrent_retries_of_one_key_make_one_order(
    live_client: httpx.AsyncClient, committed_db: Database, settings: Settings
) -> None:
    variant = await one_variant(committed_db, stock=20)
    async with committed_db.session_maker() as session:
        buyer = auth(settings, await make_user(session))
    headers = {**buyer, "Idempotency-Key": str(uuid.uuid4())}
    body = {"shipping_address": ADDRESS, "items": [{"variant_id": str(variant.id), "quantity": 2}]}
    responses = await asyncio.gather(
        *(live_client.post(f"{API}/orders", json=body, headers=headers) for _ in range(10))
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses[201] == 1, statuses
    # The others either replayed the finished order or were told it is still in flight.
    assert set(statuses) <= {200, 201, 409}, statuses
    assert len({r.json()["id"] for r in responses if r.status_code in (200, 201)}) == 1
    assert all(r.json()["type"].endswith("idempotency_key_in_use") for r in responses if r.status_code == 409)
    # Once it is done, every retry gets the same order.
    again = await live_client.post(f"{API}/orders", json=body, headers=headers)
    assert again.status_code == 200
    assert again.json()["id"] == next(r.json()["id"] for r in responses if r.status_code == 201)
    async with committed_db.session_maker() as session:
        assert await session.scalar(select(func.count()).select_from(Order)) == 1
    assert await stock_of(committed_db, variant.id) == (18, 2)


async def test_the_worker_pays_an_order_once_however_often_the_webhook_comes(
    live_client: httpx.AsyncClient, committed_db: Database, settings: Settings, worker: WorkerProcess
) -> None:
    variant = await one_variant(committed_db, stock=3)
    async with committed_db.session_maker() as session:
        user = await make_user(session)
    buyer = auth(settings, user)
    order = (
        await live_client.post(
            f"{API}/orders",
            json={"shipping_address": ADDRESS, "items": [{"variant_id": str(variant.id), "quantity": 2}]},
            headers={**buyer, "Idempotency-Key": str(uuid.uuid4())},
        )
    ).json()
    started = (await live_client.post(f"{API}/orders/{order['id']}/payments", headers=buyer)).json()
    body = charge_success_event(started["reference"], order["total"]["amount"], "NGN", user.email)
    headers = {"x-paystack-signature": sign(body, settings.paystack_secret_key.reveal())}
    acks = [
        await live_client.post(f"{API}/webhooks/paystack", content=body, headers=headers) for _ in range(6)
    ]
    assert [a.json()["status"] for a in acks] == ["queued"] + ["duplicate"] * 5

    async def paid() -> bool:
        response = await live_client.get(f"{API}/orders/{order['id']}", headers=buyer)
        return bool(response.json()["status"] == "paid")

    await eventually(paid, within=30)
    async with committed_db.session_maker() as session:
        moves = await session.scalar(
            select(func.count()).where(
                OrderEvent.order_id == uuid.UUID(order["id"]), OrderEvent.to_status == "paid"
            )
        )
        assert moves == 1
        outcome = await session.scalar(
            select(PaymentEvent.outcome).where(PaymentEvent.reference == started["reference"])
        )
        assert outcome == "paid"
    assert await stock_of(committed_db, variant.id) == (1, 0)


async def test_the_scheduler_expires_unpaid_orders_and_releases_stock_once(
    committed_db: Database,
    broker: AsyncBroker,
    worker: WorkerProcess,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    variant = await one_variant(committed_db, stock=4)
    async with committed_db.session_maker() as session:
        buyer = await make_user(session)
        order = await make_order(session, buyer, [(variant, 3)], status="pending_payment")
        await session.execute(
            update(Order)
            .where(Order.id == order.id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()
    assert await stock_of(committed_db, variant.id) == (1, 3)
    # Two runs of the job at once, as two overlapping ticks would: the order expires once.
    first, second = await asyncio.gather(
        run_task(broker, "critical.orders.expire_unpaid"), run_task(broker, "critical.orders.expire_unpaid")
    )
    assert sorted([first, second]) == [0, 1]
    assert await stock_of(committed_db, variant.id) == (4, 0)

    # And on its own, from the scheduler's tick.
    async with committed_db.session_maker() as session:
        late = await make_order(session, buyer, [(variant, 2)], status="pending_payment")
        await session.execute(
            update(Order)
            .where(Order.id == late.id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()
    scheduler = start_worker(scheduler=True, ORDER_EXPIRY_INTERVAL_SECONDS="1")
    try:

        async def expired() -> bool:
            async with committed_db.session_maker() as session:
                return await session.scalar(select(Order.status).where(Order.id == late.id)) == "expired"

        await eventually(expired, within=30, step=0.2)
    finally:
        scheduler.stop()
    assert await stock_of(committed_db, variant.id) == (4, 0)
    async with committed_db.session_maker() as session:
        expiries = await session.scalar(select(func.count()).where(OrderEvent.to_status == "expired"))
        assert expiries == 2


def mail_to(mail_dir: Path, address: str) -> list[email.message.EmailMessage]:
    found = []
    for path in mail_dir.glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        if message["To"] == address:
            found.append(message)
    return found


async def test_the_whole_journey_with_the_payment_sandbox(
    live_client: httpx.AsyncClient, committed_db: Database, settings: Settings, worker: WorkerProcess
) -> None:
    variant = await one_variant(committed_db, stock=5, price=1_250_000)
    async with committed_db.session_maker() as session:
        user = await make_user(session)
    buyer = auth(settings, user)

    added = await live_client.post(
        f"{API}/cart/items", json={"variant_id": str(variant.id), "quantity": 2}, headers=buyer
    )
    assert added.status_code == 201
    placed = await live_client.post(
        f"{API}/orders",
        json={"shipping_address": ADDRESS},
        headers={**buyer, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert placed.status_code == 201, placed.text
    order: dict[str, Any] = placed.json()
    assert order["total"] == {"amount": 2_500_000, "currency": "NGN"}
    assert (await live_client.get(f"{API}/cart", headers=buyer)).json()["items"] == []

    started = await live_client.post(f"{API}/orders/{order['id']}/payments", headers=buyer)
    assert started.status_code == 201
    checkout = urlparse(started.json()["authorization_url"])
    paid_page = await live_client.get(f"{checkout.path}?{checkout.query}")
    assert paid_page.status_code == 200
    assert paid_page.json()["webhook_status"] == 200

    async def status() -> str:
        return str((await live_client.get(f"{API}/orders/{order['id']}", headers=buyer)).json()["status"])

    await eventually(lambda: _is(status, "paid"), within=30)

    async def confirmation() -> list[email.message.EmailMessage]:
        return [
            m
            for m in mail_to(settings.mail_dir, user.email)
            if str(m["Subject"]).startswith("Your Fashionistar order")
        ]

    mails = await eventually(confirmation, within=30, step=0.2)
    assert len(mails) == 1

    # The placement's in-app notice came through the same fan-out job as the mail.
    async def notices() -> list[str]:
        answer = await live_client.get(f"{API}/me/notifications", headers=buyer)
        return [item["kind"] for item in answer.json()["items"] if item["kind"] == "order_placed"]

    assert await eventually(notices, within=30, step=0.2) == ["order_placed"]
    text = mails[0].get_body(preferencelist=("plain",))
    assert text is not None
    assert "25,000.00" in text.get_content()

    product_id = order["lines"][0]["product_id"]
    review = await live_client.post(
        f"{API}/products/{product_id}/reviews",
        json={"rating": 5, "title": "Fits perfectly", "body": "True to size, lovely fabric."},
        headers=buyer,
    )
    assert review.status_code == 201, review.text
    rating = (await live_client.get(f"{API}/products/{product_id}")).json()["rating"]
    assert rating == {"average": 5.0, "count": 1}


async def _is(read: Callable[[], Any], expected: str) -> bool:
    return bool(await read() == expected)
