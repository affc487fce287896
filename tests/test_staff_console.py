"""The staff order console (``GET /staff/orders``, ``GET /staff/orders/{id}``) on the real database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.jobs import job_buffer
from db.engine import Database
from db.models import (
    Fulfilment,
    Order,
    OrderLine,
    Payment,
    PaymentEvent,
    Return,
    ReturnLine,
    ShippingMethod,
    User,
    Vendor,
)
from db.services.fulfilment import cancellation, moves
from db.services.payments.refunds import RefundFor, refund_order_amount
from tests.support.catalog import make_product, make_store
from tests.support.http import problem
from tests.support.identity import bearer, login, make_user
from tests.support.orders import make_order, variants_of

pytestmark = pytest.mark.anyio

API = "/api/v1/staff/orders"


@dataclass
class Shop:
    staff: dict[str, str]
    store_a: Vendor
    store_b: Vendor
    buyer: User
    other_buyer: User


async def _shop(client: httpx.AsyncClient, session: AsyncSession) -> Shop:
    staff = await make_user(session, role="staff")
    store_a = await make_store(session, name="Adire House")
    store_b = await make_store(session, name="Kente Corner")
    # Adire House charges for shipping (the platform default is free in tests).
    session.add(
        ShippingMethod(
            vendor_id=store_a.id,
            name="Courier",
            kind="standard",
            zones=[{"country": "NG", "states": None}],
            currency="NGN",
            price_amount=120_000,
            per_extra_item_amount=0,
            min_days=1,
            max_days=3,
        )
    )
    buyer = await make_user(session, email=f"amaka-{uuid.uuid4().hex[:8]}@example.com")
    other = await make_user(session, full_name="Bola Ade")
    return Shop(bearer(await login(client, staff.email)), store_a, store_b, buyer, other)


async def _order(
    session: AsyncSession,
    buyer: User,
    stores: list[Vendor],
    *,
    status: str = "paid",
    created_at: datetime | None = None,
) -> Order:
    lines = []
    for store in stores:
        product = await make_product(
            session, store, title=f"Tee of {store.name}", variants=[("M", "red", 20)]
        )
        lines.append(((await variants_of(session, product))[0], 2))
    return await make_order(session, buyer, lines, status=status, created_at=created_at)


async def _pay(session: AsyncSession, order: Order) -> Payment:
    """A captured payment of ``order`` and the webhook event that captured it."""
    now = datetime.now(UTC)
    payment = Payment(
        order_id=order.id,
        provider="sandbox",
        reference=f"fs_{uuid.uuid4().hex[:16]}",
        amount=order.total_amount,
        currency=order.currency,
        status="succeeded",
        authorization_url="http://localhost/checkout",
        paid_at=now,
    )
    session.add(payment)
    session.add(
        PaymentEvent(
            provider="sandbox",
            reference=payment.reference,
            event_type="charge.success",
            payload={"event": "charge.success"},
            processed_at=now,
            outcome="paid",
        )
    )
    await session.commit()
    return payment


async def _all_ids(client: httpx.AsyncClient, auth: dict[str, str], **params: Any) -> list[str]:
    """Every order id the search returns, page after page."""
    found: list[str] = []
    cursor = None
    while True:
        query = {**params, "limit": 2, **({"cursor": cursor} if cursor else {})}
        response = await client.get(API, headers=auth, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        found += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return found


def _newest_first(*orders: Order) -> list[str]:
    return [str(o.id) for o in sorted(orders, key=lambda o: o.id, reverse=True)]


# --- the list ----------------------------------------------------------------------------------


async def test_each_filter_narrows_the_orders(client: httpx.AsyncClient, session: AsyncSession) -> None:
    shop = await _shop(client, session)
    paid_a = await _order(session, shop.buyer, [shop.store_a])
    unpaid_b = await _order(session, shop.buyer, [shop.store_b], status="pending_payment")
    cancelled_ab = await _order(session, shop.other_buyer, [shop.store_a, shop.store_b], status="cancelled")
    payment = await _pay(session, paid_a)
    every = _newest_first(paid_a, unpaid_b, cancelled_ab)

    assert await _all_ids(client, shop.staff) == every
    assert await _all_ids(client, shop.staff, status="paid") == [str(paid_a.id)]
    assert await _all_ids(client, shop.staff, status="cancelled") == [str(cancelled_ab.id)]
    assert await _all_ids(client, shop.staff, status="shipped") == []
    assert await _all_ids(client, shop.staff, vendor=str(shop.store_a.id)) == _newest_first(
        paid_a, cancelled_ab
    )
    assert await _all_ids(client, shop.staff, vendor=str(shop.store_b.id)) == _newest_first(
        unpaid_b, cancelled_ab
    )
    assert await _all_ids(client, shop.staff, vendor=str(uuid.uuid4())) == []
    shouted = f"  {shop.buyer.email.upper()} "
    assert await _all_ids(client, shop.staff, buyer_email=shouted) == _newest_first(paid_a, unpaid_b)
    assert await _all_ids(client, shop.staff, buyer_email="nobody@example.com") == []
    assert await _all_ids(client, shop.staff, reference=payment.reference) == [str(paid_a.id)]
    assert await _all_ids(client, shop.staff, reference="fs_unknown") == []
    # Filters add up.
    both = {"vendor": str(shop.store_b.id), "buyer_email": shop.buyer.email}
    assert await _all_ids(client, shop.staff, **both) == [str(unpaid_b.id)]
    assert await _all_ids(client, shop.staff, **both, status="paid") == []


async def test_the_summary_names_buyer_stores_and_amounts(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    shop = await _shop(client, session)
    order = await _order(session, shop.buyer, [shop.store_a, shop.store_b])
    response = await client.get(API, headers=shop.staff)
    assert response.status_code == 200, response.text
    [item] = response.json()["items"]
    ngn = order.currency
    assert item == {
        "id": str(order.id),
        "status": "paid",
        "buyer": {"id": str(shop.buyer.id), "email": shop.buyer.email, "full_name": shop.buyer.full_name},
        "vendors": [
            {"id": str(shop.store_a.id), "name": "Adire House"},
            {"id": str(shop.store_b.id), "name": "Kente Corner"},
        ],
        "item_count": 4,
        "subtotal": {"amount": order.subtotal_amount, "currency": ngn},
        "shipping_total": {"amount": order.shipping_amount, "currency": ngn},
        "discount_total": {"amount": 0, "currency": ngn},
        "total": {"amount": order.total_amount, "currency": ngn},
        "created_at": item["created_at"],
        "paid_at": item["paid_at"],
    }
    assert order.shipping_amount > 0
    assert order.total_amount == order.subtotal_amount + order.shipping_amount
    assert datetime.fromisoformat(item["paid_at"]) == order.paid_at


async def test_from_and_to_are_a_half_open_range_of_placing_times(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    shop = await _shop(client, session)
    early = await _order(
        session, shop.buyer, [shop.store_a], created_at=datetime(2026, 1, 10, 12, tzinfo=UTC)
    )
    late = await _order(session, shop.buyer, [shop.store_a], created_at=datetime(2026, 1, 20, tzinfo=UTC))
    now = await _order(session, shop.buyer, [shop.store_a])

    window = {"from": "2026-01-10T12:00:00Z", "to": "2026-01-20T00:00:00Z"}
    assert await _all_ids(client, shop.staff, **window) == [str(early.id)]
    assert await _all_ids(client, shop.staff, **{"from": "2026-01-10T12:00:00.000001Z"}) == _newest_first(
        late, now
    )
    assert await _all_ids(client, shop.staff, to="2026-01-20T00:00:00.000001Z") == _newest_first(early, late)
    # Any offset, as long as there is one: 13:00 in Lagos is 12:00 UTC.
    lagos = {"from": "2026-01-10T13:00:00+01:00", "to": "2026-01-10T13:00:01+01:00"}
    assert await _all_ids(client, shop.staff, **lagos) == [str(early.id)]


async def test_pages_are_complete_and_stable_while_orders_arrive(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    shop = await _shop(client, session)
    placed = [await _order(session, shop.buyer, [shop.store_a]) for _ in range(5)]
    first = await client.get(API, headers=shop.staff, params={"limit": 2})
    assert first.status_code == 200, first.text
    seen = [item["id"] for item in first.json()["items"]]
    cursor = first.json()["next_cursor"]
    # An order placed meanwhile belongs before the first page: it neither shifts nor joins the rest.
    newcomer = await _order(session, shop.buyer, [shop.store_b])
    while cursor is not None:
        page = await client.get(API, headers=shop.staff, params={"limit": 2, "cursor": cursor})
        assert page.status_code == 200, page.text
        assert len(page.json()["items"]) <= 2
        seen += [item["id"] for item in page.json()["items"]]
        cursor = page.json()["next_cursor"]
    assert seen == _newest_first(*placed)
    assert (await _all_ids(client, shop.staff))[0] == str(newcomer.id)


@contextmanager
def _statements(database: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # Savepoints are the test harness's bookkeeping, and come and go with the authentication's
        # read of the caller's standing (at most one a second): the queries are what scales.
        if "SAVEPOINT" not in statement:
            seen.append(statement)

    event.listen(database.engine.sync_engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", count)


async def test_a_page_costs_the_same_queries_for_one_order_or_many(
    client: httpx.AsyncClient, session: AsyncSession, isolated_db: Database
) -> None:
    shop = await _shop(client, session)
    await _order(session, shop.buyer, [shop.store_a, shop.store_b])
    with _statements(isolated_db) as one:
        assert (await client.get(API, headers=shop.staff)).status_code == 200
    for buyer in (shop.buyer, shop.other_buyer, shop.buyer, shop.other_buyer):
        await _order(session, buyer, [shop.store_a, shop.store_b])
    with _statements(isolated_db) as five:
        response = await client.get(API, headers=shop.staff)
        assert len(response.json()["items"]) == 5
    assert 0 < len(one) == len(five)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "fulfilled"}, "status"),
        ({"vendor": "not-a-store"}, "vendor"),
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"cursor": "bm90LWEtY3Vyc29y"}, "cursor"),
        ({"buyer_email": ""}, "buyer_email"),
        ({"reference": "x" * 101}, "reference"),
        ({"from": "yesterday"}, "from"),
        ({"from": "2026-01-10"}, "from"),
        ({"to": "2026-01-10T12:00:00"}, "to"),
        ({"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "from"),
        ({"from": "2026-01-01T00:00:00Z", "to": "2026-01-01T01:00:00+01:00"}, "from"),
    ],
)
async def test_a_bad_filter_is_422_naming_it(
    client: httpx.AsyncClient, session: AsyncSession, params: dict[str, str], field: str
) -> None:
    staff = await make_user(session, role="staff")
    response = await client.get(API, headers=bearer(await login(client, staff.email)), params=params)
    body = problem(response, 422)
    assert [error["field"] for error in body["errors"]] == [field], body


async def test_only_staff_may_use_the_console(client: httpx.AsyncClient, session: AsyncSession) -> None:
    shopper = await make_user(session)
    vendor = await make_user(session, role="vendor")
    await make_store(session, vendor)
    order = await _order(session, shopper, [await make_store(session)])
    for path in (API, f"{API}/{order.id}"):
        problem(await client.get(path), 401)
        for user in (shopper, vendor):
            problem(await client.get(path, headers=bearer(await login(client, user.email))), 403)


# --- one order in full -----------------------------------------------------------------------------


async def test_an_unknown_order_is_404(client: httpx.AsyncClient, session: AsyncSession) -> None:
    staff = await make_user(session, role="staff")
    response = await client.get(f"{API}/{uuid.uuid4()}", headers=bearer(await login(client, staff.email)))
    assert problem(response, 404)["type"].endswith("/order_not_found")


async def _lines_of(session: AsyncSession, fulfilment: Fulfilment) -> list[OrderLine]:
    return list(await session.scalars(select(OrderLine).where(OrderLine.fulfilment_id == fulfilment.id)))


async def _return_one_unit(
    session: AsyncSession, order: Order, fulfilment: Fulfilment, line: OrderLine
) -> Return:
    """A return received back and refunded, as the returns service leaves one."""
    returned = Return(
        order_id=order.id,
        fulfilment_id=fulfilment.id,
        vendor_id=fulfilment.vendor_id,
        user_id=order.user_id,
        status="received",
        note="Too small",
        restocked=True,
        currency=order.currency,
        refund_amount=line.unit_price_amount,
    )
    session.add(returned)
    await session.flush()
    session.add(ReturnLine(return_id=returned.id, order_line_id=line.id, quantity=1, reason="too small"))
    line.returned_quantity += 1
    await refund_order_amount(
        session, order.id, line.unit_price_amount, RefundFor("returned: too small", return_id=returned.id)
    )
    return returned


@dataclass
class Story:
    order: Order
    payment: Payment
    delivered: Fulfilment
    cut: Fulfilment
    returned: Return


async def _story(session: AsyncSession, shop: Shop) -> Story:
    """A paid order of two stores: Adire House ships and delivers its part and takes a unit back
    (refunded); Kente Corner cancels one of its two units before shipping (refunded)."""
    order = await _order(session, shop.buyer, [shop.store_a, shop.store_b])
    payment = await _pay(session, order)
    # Another payment's event: not this order's.
    session.add(
        PaymentEvent(provider="sandbox", reference="fs_other", event_type="charge.success", payload={})
    )
    parts = {
        f.vendor_id: f
        for f in await session.scalars(select(Fulfilment).where(Fulfilment.order_id == order.id))
    }
    delivered, cut = parts[shop.store_a.id], parts[shop.store_b.id]
    vendor_a = moves.Acting("vendor", shop.store_a.owner_id, shop.store_a.id)
    vendor_b = moves.Acting("vendor", shop.store_b.owner_id, shop.store_b.id)
    tracking = moves.Tracking("GIG Logistics", "GIG-123", "https://gig.example/GIG-123")
    with job_buffer():  # the mails and refund jobs these moves send are not under test here
        await moves.ship(session, delivered.id, vendor_a, tracking)
        await moves.deliver(session, delivered.id, vendor_a)
        [line_b] = await _lines_of(session, cut)
        await cancellation.cancel(
            session, cut.id, vendor_b, lines=[(line_b.id, 1)], reason="one arrived torn"
        )
        [line_a] = await _lines_of(session, delivered)
        returned = await _return_one_unit(session, order, delivered, line_a)
    await session.commit()
    return Story(order, payment, delivered, cut, returned)


def _money(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "NGN"}


async def test_one_order_in_full_tells_its_whole_story(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    shop = await _shop(client, session)
    story = await _story(session, shop)
    response = await client.get(f"{API}/{story.order.id}", headers=shop.staff)
    assert response.status_code == 200, response.text
    body = response.json()
    unit = 1_500_000  # make_product's default price

    assert body["id"] == str(story.order.id)
    assert body["status"] == "partially_shipped"
    assert body["buyer"]["email"] == shop.buyer.email
    assert [v["name"] for v in body["vendors"]] == ["Adire House", "Kente Corner"]
    assert body["total"] == _money(story.order.total_amount)
    assert body["shipping_address"]["city"] == "Lagos"

    lines = {line["fulfilment_id"]: line for line in body["lines"]}
    assert lines[str(story.delivered.id)]["cancelled_quantity"] == 0
    assert lines[str(story.delivered.id)]["returned_quantity"] == 1
    assert lines[str(story.cut.id)]["cancelled_quantity"] == 1
    assert lines[str(story.cut.id)]["returned_quantity"] == 0
    assert lines[str(story.cut.id)]["vendor"] == {"id": str(shop.store_b.id), "name": "Kente Corner"}

    fulfilments = {f["id"]: f for f in body["fulfilments"]}
    delivered = fulfilments[str(story.delivered.id)]
    assert delivered["status"] == "delivered"
    assert delivered["vendor"] == {"id": str(shop.store_a.id), "name": "Adire House"}
    assert (delivered["carrier"], delivered["tracking_number"], delivered["tracking_url"]) == (
        "GIG Logistics",
        "GIG-123",
        "https://gig.example/GIG-123",
    )
    assert delivered["shipped_at"] is not None
    assert delivered["delivered_at"] is not None
    method = delivered["shipping_method"]
    assert (method["name"], method["kind"], method["min_days"], method["max_days"]) == (
        "Courier",
        "standard",
        1,
        3,
    )
    assert method["id"] is not None  # the store's own method (the platform default has none)
    assert delivered["shipping"] == _money(story.delivered.shipping_amount)
    assert fulfilments[str(story.cut.id)]["status"] == "pending"  # one unit is still to ship

    [payment] = body["payments"]
    assert payment["reference"] == story.payment.reference
    assert payment["status"] == "succeeded"
    assert payment["amount"] == _money(story.order.total_amount)
    assert payment["refunded_amount"] == _money(2 * unit)
    assert payment["paid_at"] is not None

    refunds = body["refunds"]
    assert [(r["amount"], r["status"], r["fulfilment_id"], r["return_id"]) for r in refunds] == [
        (_money(unit), "pending", str(story.cut.id), None),
        (_money(unit), "pending", None, str(story.returned.id)),
    ]
    assert refunds[0]["reason"] == "cancelled: one arrived torn"

    [returned] = body["returns"]
    assert returned["status"] == "received"
    assert returned["refund_amount"] == _money(unit)
    assert [(line["quantity"], line["reason"]) for line in returned["lines"]] == [(1, "too small")]

    [webhook] = body["webhook_events"]
    assert (webhook["reference"], webhook["event_type"], webhook["outcome"]) == (
        story.payment.reference,
        "charge.success",
        "paid",
    )
    assert webhook["received_at"] is not None
    assert webhook["processed_at"] is not None

    _check_timeline(body["timeline"], story, shop)


def _check_timeline(timeline: list[dict[str, Any]], story: Story, shop: Shop) -> None:
    moves_seen = [(e["fulfilment_id"], e["from_status"], e["to_status"], e["actor"]) for e in timeline]
    a, b = str(story.delivered.id), str(story.cut.id)
    assert moves_seen == [
        (None, None, "pending_payment", "buyer"),
        (None, "pending_payment", "paid", "payment"),
        (a, "pending", "shipped", "vendor"),
        (None, "paid", "partially_shipped", "vendor"),
        (a, "shipped", "delivered", "vendor"),
        (b, "pending", "pending", "vendor"),
    ]
    assert timeline[0]["actor_id"] == str(shop.buyer.id)
    assert timeline[-1]["reason"] == "one arrived torn"
    assert timeline[-1]["actor_id"] == str(shop.store_b.owner_id)
    assert [e["at"] for e in timeline] == sorted(e["at"] for e in timeline)
    assert all("request_id" in e for e in timeline)
