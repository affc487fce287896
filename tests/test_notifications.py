"""Notifications: the shopper's inbox over HTTP, the notices about orders, and the order subscribers."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from litestar import Litestar
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.events import EventBus, get_event_bus
from core.jobs import NoActiveUnitOfWork, job_buffer
from core.rules.orders import SOLD
from db.models import Notification, Order, User
from db.services.notifications.errors import UnknownNotificationKind
from db.services.notifications.orders import (
    add_order_notification,
    format_money,
    order_number,
)
from db.services.orders import subscribers
from db.services.orders.errors import OrderNotFound
from db.services.orders.events import OrderPlaced, OrderStatusChanged
from db.services.subscribers import register_all
from tests.support.catalog import make_product, make_store
from tests.support.http import problem
from tests.support.identity import bearer, login, make_user
from tests.support.orders import make_order, variants_of

pytestmark = pytest.mark.anyio

URL = "/api/v1/me/notifications"


async def add_notice(session: AsyncSession, user: User, n: int, *, read: bool = False) -> Notification:
    notice = Notification(
        user_id=user.id,
        kind="order_paid",
        title=f"Notice {n}",
        body=f"Body {n}",
        data={"order_id": str(uuid.uuid4()), "status": "paid"},
        dedupe_key=f"test:{uuid.uuid4()}",
        read_at=func.now() if read else None,
    )
    session.add(notice)
    await session.commit()
    await session.refresh(notice)
    return notice


async def shopper(client: httpx.AsyncClient, session: AsyncSession) -> tuple[User, dict[str, str]]:
    user = await make_user(session)
    return user, bearer(await login(client, user.email))


async def inbox(client: httpx.AsyncClient, auth: dict[str, str], **params: Any) -> dict[str, Any]:
    response = await client.get(URL, headers=auth, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def placed_order(session: AsyncSession, buyer: User, status: str = "pending_payment") -> Order:
    store = await make_store(session)
    product = await make_product(session, store, title="Ankara wrap dress", variants=[("M", "indigo", 5)])
    [variant] = await variants_of(session, product)
    # The factory moves the order through the real transitions, whose events the subscribers
    # (registered by other tests' apps) turn into jobs: give them a buffer that is then dropped.
    with job_buffer():
        return await make_order(session, buyer, [(variant, 2)], status=status)


# --- the inbox over HTTP ------------------------------------------------------------------------


async def test_list_is_newest_first_in_keyset_pages_with_the_unread_count(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user, auth = await shopper(client, session)
    notices = [await add_notice(session, user, n, read=n in (1, 3)) for n in range(5)]
    await add_notice(session, await make_user(session), 99)  # someone else's

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = await inbox(client, auth, **params)
        assert page["unread_count"] == 3
        seen += [item["id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [str(n.id) for n in reversed(notices)]

    first = (await inbox(client, auth, limit=1))["items"][0]
    assert first["title"] == "Notice 4"
    assert first["body"] == "Body 4"
    assert first["kind"] == "order_paid"
    assert first["read_at"] is None
    assert first["created_at"]
    assert first["data"]["status"] == "paid"


async def test_unread_filter_shows_only_unread(client: httpx.AsyncClient, session: AsyncSession) -> None:
    user, auth = await shopper(client, session)
    unread = [await add_notice(session, user, n) for n in range(3)]
    await add_notice(session, user, 10, read=True)
    page = await inbox(client, auth, unread="true")
    assert [item["id"] for item in page["items"]] == [str(n.id) for n in reversed(unread)]
    assert page["unread_count"] == 3
    assert len((await inbox(client, auth))["items"]) == 4


async def test_mark_read_is_idempotent_and_keeps_the_first_time(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user, auth = await shopper(client, session)
    notice = await add_notice(session, user, 1)
    other = await add_notice(session, user, 2)

    assert (await client.post(f"{URL}/{notice.id}/read", headers=auth)).status_code == 204
    page = await inbox(client, auth)
    by_id = {item["id"]: item for item in page["items"]}
    read_at = by_id[str(notice.id)]["read_at"]
    assert read_at is not None
    assert by_id[str(other.id)]["read_at"] is None
    assert page["unread_count"] == 1

    assert (await client.post(f"{URL}/{notice.id}/read", headers=auth)).status_code == 204
    again = {item["id"]: item for item in (await inbox(client, auth))["items"]}
    assert again[str(notice.id)]["read_at"] == read_at


async def test_another_users_notification_is_not_found(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, auth = await shopper(client, session)
    owner, owner_auth = await shopper(client, session)
    theirs = await add_notice(session, owner, 1)

    body = problem(await client.post(f"{URL}/{theirs.id}/read", headers=auth), 404)
    assert body["title"] == "Notification not found"
    problem(await client.post(f"{URL}/{uuid.uuid4()}/read", headers=auth), 404)
    assert (await inbox(client, owner_auth))["unread_count"] == 1
    assert (await inbox(client, auth))["items"] == []


async def test_read_all_marks_only_the_callers(client: httpx.AsyncClient, session: AsyncSession) -> None:
    user, auth = await shopper(client, session)
    other, other_auth = await shopper(client, session)
    for n in range(3):
        await add_notice(session, user, n)
    await add_notice(session, other, 9)

    assert (await client.post(f"{URL}/read-all", headers=auth)).status_code == 204
    page = await inbox(client, auth)
    assert page["unread_count"] == 0
    assert all(item["read_at"] for item in page["items"])
    assert (await inbox(client, auth, unread="true"))["items"] == []
    assert (await inbox(client, other_auth))["unread_count"] == 1
    # Nothing left to mark: still fine.
    assert (await client.post(f"{URL}/read-all", headers=auth)).status_code == 204


async def test_without_a_token_401(client: httpx.AsyncClient) -> None:
    problem(await client.get(URL), 401)
    problem(await client.post(f"{URL}/{uuid.uuid4()}/read"), 401)
    problem(await client.post(f"{URL}/read-all"), 401)


async def test_bad_limit_and_cursor_422(client: httpx.AsyncClient, session: AsyncSession) -> None:
    _, auth = await shopper(client, session)
    for params in ({"limit": 0}, {"limit": 101}, {"cursor": "not-a-cursor"}, {"unread": "maybe"}):
        problem(await client.get(URL, headers=auth, params=params), 422)


# --- notices about orders -----------------------------------------------------------------------


def test_money_and_order_numbers_read_as_shoppers_expect() -> None:
    assert format_money(1_500_000, "NGN") == "NGN 15,000.00"
    assert format_money(5, "ngn") == "NGN 0.05"
    assert format_money(0, "USD") == "USD 0.00"
    assert format_money(-250, "USD") == "USD -2.50"
    assert format_money(12_345, "JPY") == "JPY 12,345"
    assert format_money(1_234_567, "KWD") == "KWD 1,234.567"
    order_id = uuid.UUID("0192f1c4-5a6b-7c8d-9e0f-a1b2c3d4e5f6")
    assert order_number(order_id) == "C3D4E5F6"


async def test_an_order_notice_is_written_once_for_its_buyer(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    buyer, auth = await shopper(client, session)
    order = await placed_order(session, buyer, status="paid")

    assert await add_order_notification(session, order.id, "order_paid") is True
    assert await add_order_notification(session, order.id, "order_paid") is False
    assert await add_order_notification(session, order.id, "order_placed") is True
    await session.commit()

    page = await inbox(client, auth)
    assert [item["kind"] for item in page["items"]] == ["order_placed", "order_paid"]
    paid = page["items"][1]
    number = order_number(order.id)
    assert paid["title"] == f"Payment received for order {number}"
    assert "NGN 30,000.00" in paid["body"]
    assert paid["data"] == {"order_id": str(order.id), "status": "paid"}
    placed = page["items"][0]
    assert placed["data"]["status"] == "pending_payment"
    assert "2 items" in placed["body"]
    assert page["unread_count"] == 2
    rows = await session.scalar(
        select(func.count()).select_from(Notification).where(Notification.user_id == buyer.id)
    )
    assert rows == 2


async def test_order_notice_errors(session: AsyncSession) -> None:
    buyer = await make_user(session)
    order = await placed_order(session, buyer)
    with pytest.raises(UnknownNotificationKind):
        await add_order_notification(session, order.id, "order_teleported")
    with pytest.raises(OrderNotFound):
        await add_order_notification(session, uuid.uuid4(), "order_paid")


# --- subscribers --------------------------------------------------------------------------------


def jobs_of(
    bus: EventBus, *events: OrderPlaced | OrderStatusChanged
) -> list[tuple[str, tuple[Any, ...], bool]]:
    with job_buffer() as buffer:
        for event in events:
            bus.publish(event)
        return [(job.task_name, job.args, job.durable) for job in buffer.jobs]


def fresh_bus() -> EventBus:
    bus = EventBus()
    register_all(bus)
    register_all(bus)  # start-up may run more than once in a process: nothing is doubled
    return bus


def test_order_placed_defers_one_fan_out_which_defers_the_confirmation_notice_and_event() -> None:
    order_id, user_id = uuid.uuid4(), uuid.uuid4()
    jobs = jobs_of(fresh_bus(), OrderPlaced(order_id=order_id, user_id=user_id))
    oid = str(order_id)
    assert jobs == [("emails.orders.fan_out_placed", (oid,), True)]
    with job_buffer() as buffer:
        subscribers.defer_placed_jobs(oid)
        jobs = [(job.task_name, job.args, job.durable) for job in buffer.jobs]
    assert jobs == [
        ("emails.orders.send_confirmation", (oid,), True),
        ("emails.notifications.order_update", (oid, "order_placed"), True),
        ("analytics.orders.record_event", (oid, "order_placed"), True),
    ]


@pytest.mark.parametrize(
    ("from_status", "to_status", "kind", "emailed"),
    [
        ("pending_payment", "paid", "order_paid", True),
        ("expired", "paid", "order_paid", True),
        # Shipments and deliveries are told per vendor, with their tracking (fulfilment notices).
        ("paid", "partially_shipped", None, False),
        ("partially_shipped", "shipped", None, False),
        ("shipped", "delivered", None, False),
        ("pending_payment", "cancelled", "order_cancelled", False),
        ("paid", "cancelled", "order_cancelled", False),
        ("pending_payment", "expired", "order_expired", False),
        ("delivered", "refunded", "order_refunded", False),
    ],
)
def test_a_status_change_defers_the_notice_its_mail_and_the_analytics_event(
    from_status: str, to_status: str, kind: str | None, emailed: bool
) -> None:
    order_id = uuid.uuid4()
    oid = str(order_id)
    event = OrderStatusChanged(
        order_id=order_id, user_id=uuid.uuid4(), from_status=from_status, to_status=to_status
    )
    expected: list[tuple[str, tuple[str, ...], bool]] = (
        [("emails.notifications.order_update", (oid, kind), True)] if kind else []
    )
    if emailed:
        expected.append(("emails.orders.send_status_update", (oid, to_status), True))
    if to_status == "paid":
        # Every vendor with items in the order hears of the sale.
        expected.append(("emails.notifications.vendor_sale", (oid,), True))
    expected.append(("analytics.orders.record_event", (oid, f"order_{to_status}"), True))
    if (from_status in SOLD) != (to_status in SOLD):
        # Kept or given back: "shoppers like me" recounts the buyer's sizes.
        expected.append(("analytics.fit.refresh_shopper_sizes", (str(event.user_id),), True))
    assert jobs_of(fresh_bus(), event) == expected


def test_registration_subscribes_each_handler_once() -> None:
    bus = fresh_bus()
    assert bus.subscribers(OrderPlaced) == [subscribers.on_order_placed]
    assert bus.subscribers(OrderStatusChanged) == [subscribers.on_order_status_changed]


async def test_every_app_registers_the_subscribers_on_the_process_bus_once(
    make_app: Callable[..., Litestar],
) -> None:
    make_app()
    make_app()  # tests (and reloads) build many apps in one process
    bus = get_event_bus()
    assert bus.subscribers(OrderPlaced).count(subscribers.on_order_placed) == 1
    assert bus.subscribers(OrderStatusChanged).count(subscribers.on_order_status_changed) == 1


def test_subscribers_need_a_unit_of_work() -> None:
    # A change published outside a transaction would send jobs for data that may never commit.
    with pytest.raises(NoActiveUnitOfWork):
        fresh_bus().publish(OrderPlaced(order_id=uuid.uuid4(), user_id=uuid.uuid4()))
