"""Order mail, notices and analytics from the real worker, on really committed orders."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import uuid
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from redis.asyncio import Redis
from sqlalchemy import func, select
from taskiq import AsyncBroker

from core.events import EventBus
from core.jobs import job_buffer
from core.settings import Settings
from db.engine import Database
from db.models import Notification, Order, SentMail, User
from db.services.fulfilment.queries import of_order
from db.services.notifications.orders import order_number
from db.services.orders.events import OrderPlaced
from db.services.subscribers import register_all
from db.uow import unit_of_work
from tasks.runtime.dispatch import BrokerDispatcher
from tests.conftest import run_task
from tests.support.catalog import make_product, make_store
from tests.support.http import serve
from tests.support.identity import bearer, login, make_user
from tests.support.orders import make_order, variants_of
from tests.support.stack import WorkerProcess
from tests.test_tasks_e2e import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.worker]

CONFIRM = "emails.orders.send_confirmation"
STATUS_MAIL = "emails.orders.send_status_update"
NOTIFY = "emails.notifications.order_update"
RECORD = "analytics.orders.record_event"
SHIPPED_MAIL = "emails.fulfilment.send_shipped"


async def committed_order(db: Database, status: str = "pending_payment") -> tuple[Order, User]:
    """A buyer's order of two lines (2 x NGN 15,000 tee, 1 x NGN 8,500 scarf), committed."""
    async with db.session_maker() as session:
        buyer = await make_user(session, full_name="Chiamaka Okafor")
        store = await make_store(session, name="Lagos Loom")
        tee = await make_product(session, store, title="Adire tee", variants=[("L", "indigo", 5)])
        scarf = await make_product(session, store, title="Aso-oke scarf", price=850_000)
        [tee_variant], [scarf_variant] = await variants_of(session, tee), await variants_of(session, scarf)
        # The factory's transitions publish events; in a process whose apps registered the
        # subscribers their jobs need a buffer, dropped here (these tests send jobs themselves).
        with job_buffer():
            order = await make_order(session, buyer, [(tee_variant, 2), (scarf_variant, 1)], status=status)
    return order, buyer


def mail_to(mail_dir: Path, address: str) -> list[EmailMessage]:
    found = []
    for path in mail_dir.glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if message["To"] == address:
            found.append(message)
    return found


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    assert message.get_body(preferencelist=("html",)) is not None, "the mail has an HTML part too"
    content: str = part.get_content()
    return content


async def notices(db: Database, user: User) -> list[Notification]:
    async with db.session_maker() as session:
        rows = await session.scalars(select(Notification).where(Notification.user_id == user.id))
        return list(rows)


async def test_a_placed_order_gets_its_confirmation_mail_and_notice(
    worker: WorkerProcess, committed_db: Database, dispatcher: BrokerDispatcher, settings: Settings
) -> None:
    order, buyer = await committed_order(committed_db)
    bus = EventBus()
    register_all(bus)
    # As POST /orders does: the event is published inside the unit of work that placed the order.
    async with unit_of_work(committed_db.session_maker, dispatcher):
        bus.publish(OrderPlaced(order_id=order.id, user_id=buyer.id))

    async def confirmation() -> EmailMessage | None:
        found = mail_to(settings.mail_dir, buyer.email)
        return found[0] if found else None

    message: EmailMessage = await eventually(confirmation, within=30, step=0.1)
    number = order_number(order.id)
    assert number in str(message["Subject"])
    text = text_of(message)
    assert "Hi Chiamaka Okafor" in text
    assert "Adire tee — size L, indigo, qty 2: NGN 30,000.00" in text
    assert "Aso-oke scarf — size M, black, qty 1: NGN 8,500.00" in text
    assert "Total:    NGN 38,500.00" in text
    assert "Please complete payment by" in text
    assert "1 Marina" in text
    assert "Lagos" in text

    async def placed() -> list[Notification]:
        return await notices(committed_db, buyer)

    [notice] = await eventually(placed, within=30, step=0.1)
    assert notice.kind == "order_placed"
    assert notice.title == f"Order {number} placed"
    assert notice.data == {"order_id": str(order.id), "status": "pending_payment"}
    assert notice.dedupe_key == f"order:{order.id}:order_placed"


async def test_an_order_placed_over_http_is_confirmed_by_mail(
    worker: WorkerProcess,
    committed_db: Database,
    make_app: Callable[..., Litestar],
    settings: Settings,
) -> None:
    # No subscriber set-up here: the app registers them, as in production.
    async with committed_db.session_maker() as session:
        buyer = await make_user(session, full_name="Tunde Bakare")
        store = await make_store(session)
        product = await make_product(
            session, store, title="Kaftan", price=2_250_000, variants=[("XL", "ivory", 3)]
        )
        [variant] = await variants_of(session, product)
    address = {"full_name": "Tunde Bakare", "line1": "4 Awolowo Road", "city": "Ikoyi", "country": "NG"}
    async with serve(make_app(database=committed_db)) as client:
        headers = {**bearer(await login(client, buyer.email)), "Idempotency-Key": str(uuid.uuid4())}
        placed = await client.post(
            "/api/v1/orders",
            json={"items": [{"variant_id": str(variant.id), "quantity": 1}], "shipping_address": address},
            headers=headers,
        )
    assert placed.status_code == 201, placed.text
    order_id = uuid.UUID(placed.json()["id"])

    async def confirmation() -> EmailMessage | None:
        found = mail_to(settings.mail_dir, buyer.email)
        return found[0] if found else None

    message: EmailMessage = await eventually(confirmation, within=30, step=0.1)
    assert order_number(order_id) in str(message["Subject"])
    text = text_of(message)
    assert "Kaftan — size XL, ivory, qty 1: NGN 22,500.00" in text
    assert "Tunde Bakare\n4 Awolowo Road\nIkoyi\nNG" in text

    async def placed_notice() -> list[Notification]:
        return await notices(committed_db, buyer)

    [notice] = await eventually(placed_notice, within=30, step=0.1)
    assert notice.kind == "order_placed"
    assert notice.data == {"order_id": str(order_id), "status": "pending_payment"}


async def test_a_confirmation_job_run_again_sends_no_second_mail(
    worker: WorkerProcess, committed_db: Database, broker: AsyncBroker, settings: Settings
) -> None:
    order, buyer = await committed_order(committed_db)
    # Twice at once (a redelivery racing a slow first run), then once more later.
    both = await asyncio.gather(
        run_task(broker, CONFIRM, str(order.id)), run_task(broker, CONFIRM, str(order.id))
    )
    assert sorted(both) == ["already_sent", "sent"]
    assert await run_task(broker, CONFIRM, str(order.id)) == "already_sent"
    assert len(mail_to(settings.mail_dir, buyer.email)) == 1


async def test_a_sent_mail_is_recorded_in_postgresql_so_losing_redis_sends_nothing_twice(
    worker: WorkerProcess, committed_db: Database, broker: AsyncBroker, settings: Settings, redis: Redis
) -> None:
    order, buyer = await committed_order(committed_db)
    assert await run_task(broker, CONFIRM, str(order.id)) == "sent"
    async with committed_db.session_maker() as session:
        keys = list(await session.scalars(select(SentMail.message_key).where(SentMail.order_id == order.id)))
    assert keys == [f"order-{order.id}-confirmation"]
    # What a Redis failover or eviction loses (the task queue itself is not touched).
    lost = [key async for key in redis.scan_iter(match="fashionistar:mail:*")]
    if lost:
        await redis.delete(*lost)
    assert await run_task(broker, CONFIRM, str(order.id)) == "already_sent"
    assert len(mail_to(settings.mail_dir, buyer.email)) == 1


async def test_status_mails_for_payment_and_shipping(
    worker: WorkerProcess, committed_db: Database, broker: AsyncBroker, settings: Settings
) -> None:
    order, buyer = await committed_order(committed_db, status="shipped")
    async with committed_db.session_maker() as session:
        [fulfilment] = await of_order(session, order.id)
    number = order_number(order.id)
    assert await run_task(broker, STATUS_MAIL, str(order.id), "paid") == "sent"
    # Shipments are mailed per vendor, with the carrier and tracking number.
    assert await run_task(broker, SHIPPED_MAIL, str(fulfilment.id)) == "sent"
    assert await run_task(broker, STATUS_MAIL, str(order.id), "paid") == "already_sent"
    assert await run_task(broker, SHIPPED_MAIL, str(fulfilment.id)) == "already_sent"
    subjects = {str(m["Subject"]): m for m in mail_to(settings.mail_dir, buyer.email)}
    assert set(subjects) == {
        f"Payment received for your Fashionistar order {number}",
        f"Part of your Fashionistar order {number} has shipped",
    }
    paid = text_of(subjects[f"Payment received for your Fashionistar order {number}"])
    assert "We received your payment of NGN 38,500.00" in paid
    assert "Adire tee — size L, indigo, qty 2: NGN 30,000.00" in paid
    shipped = text_of(subjects[f"Part of your Fashionistar order {number} has shipped"])
    assert "Lagos Loom has shipped these items" in shipped
    assert f"Tracking number: {fulfilment.tracking_number}" in shipped
    assert "Aso-oke scarf — size M, black, qty 1: NGN 8,500.00" in shipped


async def test_the_paid_notice_is_written_once_however_often_its_job_runs(
    worker: WorkerProcess, committed_db: Database, broker: AsyncBroker
) -> None:
    order, buyer = await committed_order(committed_db, status="paid")
    both = await asyncio.gather(
        run_task(broker, NOTIFY, str(order.id), "order_paid"),
        run_task(broker, NOTIFY, str(order.id), "order_paid"),
    )
    assert sorted(both) == ["already_notified", "created"]
    assert await run_task(broker, NOTIFY, str(order.id), "order_paid") == "already_notified"
    [notice] = await notices(committed_db, buyer)
    assert notice.kind == "order_paid"
    assert notice.data == {"order_id": str(order.id), "status": "paid"}
    assert notice.read_at is None


async def test_jobs_about_a_missing_order_end_without_retrying(
    worker: WorkerProcess, committed_db: Database, broker: AsyncBroker, settings: Settings
) -> None:
    ghost = str(uuid.uuid4())
    assert await run_task(broker, CONFIRM, ghost) == "order_not_found"
    assert await run_task(broker, STATUS_MAIL, ghost, "paid") == "order_not_found"
    assert await run_task(broker, NOTIFY, ghost, "order_paid") == "order_not_found"
    async with committed_db.session_maker() as session:
        assert await session.scalar(select(func.count()).select_from(Notification)) == 0
    # A status without a mail is a programming error: it fails once, with no retries.
    with pytest.raises(AssertionError, match="PermanentTaskError"):
        await run_task(broker, STATUS_MAIL, ghost, "delivered")


async def test_analytics_event_is_one_structured_log_line(
    start_worker: Callable[..., WorkerProcess], committed_db: Database, broker: AsyncBroker
) -> None:
    order, buyer = await committed_order(committed_db, status="paid")
    analytics = start_worker(queues="analytics")
    try:
        assert await run_task(broker, RECORD, str(order.id), "order_paid", wait_seconds=60) == "recorded"
        assert await run_task(broker, RECORD, str(uuid.uuid4()), "order_paid") == "order_not_found"
    finally:
        analytics.stop()
    lines = [json.loads(line) for line in analytics.log_text().splitlines() if line.startswith("{")]
    events: list[dict[str, Any]] = [
        line
        for line in lines
        if line.get("event") == "analytics event" and line.get("order_id") == str(order.id)
    ]
    assert len(events) == 1
    [event] = events
    assert event["analytics_event"] == "order_paid"
    assert event["event_key"] == f"order:{order.id}:order_paid"
    assert event["user_id"] == str(buyer.id)
    assert event["total_amount"] == 3_850_000
    assert event["currency"] == "NGN"
    assert event["item_count"] == 3
    assert len(event["vendor_ids"]) == 1
    assert event["from_status"] == "pending_payment"
    assert event["actor"] == "payment"
    assert event["occurred_at"]
