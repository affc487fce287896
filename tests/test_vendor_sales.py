"""A vendor's orders (own lines only) and sales statistics, on the real database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Order, Product, User, Vendor
from db.services.vendor_sales import orders as orders_service
from db.services.vendor_sales import stats as stats_service
from tests.support.catalog import make_product, make_store
from tests.support.http import problem
from tests.support.identity import bearer, login, make_user
from tests.support.orders import make_order, variants_of

pytestmark = pytest.mark.anyio

API = "/api/v1"
ORDER_KEYS = {
    "id",
    "status",
    "created_at",
    "paid_at",
    "currency",
    "lines",
    "vendor_total",
    "shipping_address",
}


def money(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "NGN"}


async def vendor_auth(client: httpx.AsyncClient, session: AsyncSession) -> tuple[Vendor, dict[str, str]]:
    owner = await make_user(session, role="vendor")
    store = await make_store(session, owner)
    return store, bearer(await login(client, owner.email))


async def stocked(session: AsyncSession, store: Vendor, *, price: int, title: str = "Linen shirt") -> Product:
    return await make_product(session, store, price=price, title=title, variants=[("M", "black", 100)])


async def order_of(
    session: AsyncSession, buyer: User, items: list[tuple[Product, int]], *, status: str = "paid"
) -> Order:
    lines = [((await variants_of(session, product))[0], quantity) for product, quantity in items]
    return await make_order(session, buyer, lines, status=status)


async def paid_on(session: AsyncSession, order: Order, when: datetime) -> None:
    order.paid_at = when
    await session.commit()


async def get_ok(client: httpx.AsyncClient, path: str, auth: dict[str, str], **params: Any) -> Any:
    response = await client.get(f"{API}{path}", headers=auth, params=params)
    assert response.status_code == 200, response.text
    return response.json()


# --- orders -----------------------------------------------------------------------------------


async def test_multi_vendor_order_shows_each_vendor_only_their_lines(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store_a, auth_a = await vendor_auth(client, session)
    store_b, auth_b = await vendor_auth(client, session)
    shirt = await stocked(session, store_a, price=1_000_000, title="Linen shirt")
    scarf = await stocked(session, store_a, price=250_000, title="Silk scarf")
    dress = await stocked(session, store_b, price=4_000_000, title="Ankara dress")
    buyer = await make_user(session)
    order = await order_of(session, buyer, [(shirt, 2), (dress, 1), (scarf, 3)])

    for auth, products, total in (
        (auth_a, {shirt.id: 2, scarf.id: 3}, 2_750_000),
        (auth_b, {dress.id: 1}, 4_000_000),
    ):
        listed = await get_ok(client, "/vendor/orders", auth)
        assert listed["next_cursor"] is None
        assert [item["id"] for item in listed["items"]] == [str(order.id)]
        item = listed["items"][0]
        assert item == await get_ok(client, f"/vendor/orders/{order.id}", auth)
        assert item.keys() == ORDER_KEYS
        assert item["status"] == "paid"
        assert item["paid_at"] is not None
        assert item["currency"] == "NGN"
        assert {line["product_id"]: line["quantity"] for line in item["lines"]} == {
            str(pid): qty for pid, qty in products.items()
        }
        assert item["vendor_total"] == money(total)
        assert item["shipping_address"]["city"] == "Lagos"
        raw = (await client.get(f"{API}/vendor/orders/{order.id}", headers=auth)).text
        assert buyer.email not in raw
        assert str(order.total_amount) not in raw  # 6_750_000: the order's grand total

    line = next(
        line
        for line in (await get_ok(client, f"/vendor/orders/{order.id}", auth_a))["lines"]
        if line["product_id"] == str(scarf.id)
    )
    variant = (await variants_of(session, scarf))[0]
    assert line == {
        "id": line["id"],
        "product_id": str(scarf.id),
        "variant_id": str(variant.id),
        "title": "Silk scarf",
        "sku": variant.sku,
        "size": "M",
        "color": "black",
        "quantity": 3,
        "unit_price": money(250_000),
        "line_total": money(750_000),
    }
    assert store_b.id != store_a.id


async def test_an_order_without_the_vendors_lines_is_not_found(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store_a, auth_a = await vendor_auth(client, session)
    store_b, auth_b = await vendor_auth(client, session)
    await stocked(session, store_a, price=1_000_000)
    dress = await stocked(session, store_b, price=4_000_000)
    others = await order_of(session, await make_user(session), [(dress, 1)])

    hidden = problem(await client.get(f"{API}/vendor/orders/{others.id}", headers=auth_a), 404)
    missing = problem(await client.get(f"{API}/vendor/orders/{uuid.uuid4()}", headers=auth_a), 404)
    assert hidden["type"] == missing["type"]
    assert hidden["type"].endswith("order_not_found")
    assert (await get_ok(client, "/vendor/orders", auth_a))["items"] == []
    assert (await get_ok(client, f"/vendor/orders/{others.id}", auth_b))["id"] == str(others.id)


async def test_only_vendors_with_a_store_see_sales(client: httpx.AsyncClient, session: AsyncSession) -> None:
    shopper = await make_user(session)
    storeless = await make_user(session, role="vendor")
    suspended = await make_user(session, role="vendor")
    store = await make_store(session, suspended)
    store.status = "suspended"
    await session.commit()
    # As store_of says: no store yet, or a suspended one, is 403 with its own problem type.
    refused = {
        "forbidden": bearer(await login(client, shopper.email)),
        "store_required": bearer(await login(client, storeless.email)),
        "store_suspended": bearer(await login(client, suspended.email)),
    }
    for path in ["/vendor/orders", f"/vendor/orders/{uuid.uuid4()}", "/vendor/stats"]:
        problem(await client.get(f"{API}{path}"), 401)
        for code, auth in refused.items():
            body = problem(await client.get(f"{API}{path}", headers=auth), 403)
            assert body["type"].endswith(code), (path, body)


async def test_orders_are_paged_newest_first(client: httpx.AsyncClient, session: AsyncSession) -> None:
    store, auth = await vendor_auth(client, session)
    shirt = await stocked(session, store, price=1_000_000)
    buyer = await make_user(session)
    # Several lines per order: a page counts orders, not lines.
    scarf = await stocked(session, store, price=250_000, title="Silk scarf")
    placed = [await order_of(session, buyer, [(shirt, 1), (scarf, 1)]) for _ in range(5)]

    seen: list[str] = []
    pages = 0
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = await get_ok(client, "/vendor/orders", auth, **params)
        pages += 1
        assert len(page["items"]) <= 2
        assert all(len(item["lines"]) == 2 for item in page["items"])
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [str(order.id) for order in reversed(placed)]

    problem(await client.get(f"{API}/vendor/orders", headers=auth, params={"cursor": "not-a-cursor"}), 422)
    body = problem(await client.get(f"{API}/vendor/orders", headers=auth, params={"limit": 0}), 422)
    assert body["errors"][0]["field"] == "limit"


async def test_orders_filtered_by_status(client: httpx.AsyncClient, session: AsyncSession) -> None:
    store, auth = await vendor_auth(client, session)
    shirt = await stocked(session, store, price=1_000_000)
    buyer = await make_user(session)
    by_status = {
        status: await order_of(session, buyer, [(shirt, 1)], status=status)
        for status in ("paid", "pending_payment", "cancelled", "delivered", "refunded")
    }
    extra_paid = await order_of(session, buyer, [(shirt, 2)])

    paid = await get_ok(client, "/vendor/orders", auth, status="paid")
    assert [item["id"] for item in paid["items"]] == [str(extra_paid.id), str(by_status["paid"].id)]
    for status, order in by_status.items():
        if status == "paid":
            continue
        listed = await get_ok(client, "/vendor/orders", auth, status=status)
        assert [(item["id"], item["status"]) for item in listed["items"]] == [(str(order.id), status)]
    pending = await get_ok(client, "/vendor/orders", auth, status="pending_payment")
    assert pending["items"][0]["paid_at"] is None
    assert len((await get_ok(client, "/vendor/orders", auth))["items"]) == 6
    body = problem(
        await client.get(f"{API}/vendor/orders", headers=auth, params={"status": "fulfilled"}), 422
    )
    assert body["errors"][0]["field"] == "status"


# --- stats ------------------------------------------------------------------------------------


def at(day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, minute, tzinfo=UTC)


async def test_stats_count_sold_orders_on_the_day_they_were_paid(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store, auth = await vendor_auth(client, session)
    rival, _ = await vendor_auth(client, session)
    shirt = await stocked(session, store, price=1_000_000, title="Linen shirt")
    scarf = await stocked(session, store, price=500_000, title="Silk scarf")
    belt = await stocked(session, store, price=1_000_000, title="Leather belt")
    dress = await stocked(session, rival, price=9_000_000, title="Ankara dress")
    buyer = await make_user(session)

    # Counted: paid, delivered, shipped; the rival's line in a shared order is not.
    await paid_on(session, await order_of(session, buyer, [(shirt, 2), (scarf, 1), (dress, 1)]), at(2, 10))
    await paid_on(session, await order_of(session, buyer, [(shirt, 1)], status="delivered"), at(2, 23, 30))
    shipped = await order_of(session, buyer, [(scarf, 3), (belt, 2)], status="shipped")
    await paid_on(session, shipped, at(5))
    # Not counted: not sold (even with a paid_at inside the range), outside the range, the rival's.
    for status in ("pending_payment", "cancelled", "refunded", "expired"):
        await paid_on(session, await order_of(session, buyer, [(shirt, 5)], status=status), at(3))
    await paid_on(
        session, await order_of(session, buyer, [(belt, 7)]), datetime(2025, 2, 28, 23, 59, tzinfo=UTC)
    )
    await paid_on(session, await order_of(session, buyer, [(belt, 7)]), datetime(2025, 3, 8, tzinfo=UTC))
    await paid_on(session, await order_of(session, buyer, [(dress, 2)]), at(4))

    body = await get_ok(client, "/vendor/stats", auth, **{"from": "2025-03-01", "to": "2025-03-07"})
    assert (body["from"], body["to"], body["currency"]) == ("2025-03-01", "2025-03-07", "NGN")
    assert body["revenue"] == money(7_000_000)
    assert (body["orders"], body["units"]) == (3, 9)
    assert body["top_products"] == [
        {"product_id": str(shirt.id), "title": "Linen shirt", "units": 3, "revenue": money(3_000_000)},
        # Same revenue: more units first.
        {"product_id": str(scarf.id), "title": "Silk scarf", "units": 4, "revenue": money(2_000_000)},
        {"product_id": str(belt.id), "title": "Leather belt", "units": 2, "revenue": money(2_000_000)},
    ]
    daily = {row["date"]: row for row in body["daily"]}
    assert list(daily) == [f"2025-03-0{d}" for d in range(1, 8)]
    assert daily["2025-03-02"] == {"date": "2025-03-02", "revenue": money(3_500_000), "orders": 2, "units": 4}
    assert daily["2025-03-05"] == {"date": "2025-03-05", "revenue": money(3_500_000), "orders": 1, "units": 5}
    for quiet in ("2025-03-01", "2025-03-03", "2025-03-04", "2025-03-06", "2025-03-07"):
        assert daily[quiet] == {"date": quiet, "revenue": money(0), "orders": 0, "units": 0}

    one_day = await get_ok(client, "/vendor/stats", auth, **{"from": "2025-03-08", "to": "2025-03-08"})
    assert (one_day["revenue"], one_day["orders"], one_day["units"]) == (money(7_000_000), 1, 7)
    empty = await get_ok(client, "/vendor/stats", auth, **{"from": "2024-01-01", "to": "2024-01-31"})
    assert (empty["revenue"], empty["orders"], empty["units"], empty["top_products"]) == (money(0), 0, 0, [])
    assert len(empty["daily"]) == 31


async def test_stats_default_to_the_last_thirty_days(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store, auth = await vendor_auth(client, session)
    shirt = await stocked(session, store, price=1_000_000)
    buyer = await make_user(session)
    await order_of(session, buyer, [(shirt, 2)])  # paid now
    await paid_on(
        session, await order_of(session, buyer, [(shirt, 1)]), datetime.now(UTC) - timedelta(days=30)
    )

    body = await get_ok(client, "/vendor/stats", auth)
    today = datetime.now(UTC).date()
    assert (body["from"], body["to"]) == ((today - timedelta(days=29)).isoformat(), today.isoformat())
    assert len(body["daily"]) == 30
    assert body["daily"][-1]["date"] == today.isoformat()
    assert (body["revenue"], body["orders"], body["units"]) == (money(2_000_000), 1, 2)
    only_to = await get_ok(client, "/vendor/stats", auth, to="2025-03-31")
    assert only_to["from"] == "2025-03-02"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2025-03-10", "to": "2025-03-09"}, "from"),
        ({"from": "2024-01-01", "to": "2025-01-01"}, "from"),  # 367 days
        ({"from": "2025-02-30"}, "from"),
        ({"from": "yesterday"}, "from"),
        ({"from": "2025-03-01T00:00:00"}, "from"),
        ({"from": "2025-W10-1"}, "from"),
        ({"to": "2025-13-01"}, "to"),
    ],
)
async def test_stats_reject_bad_ranges(
    client: httpx.AsyncClient, session: AsyncSession, params: dict[str, str], field: str
) -> None:
    _, auth = await vendor_auth(client, session)
    body = problem(await client.get(f"{API}/vendor/stats", headers=auth, params=params), 422)
    assert [error["field"] for error in body["errors"]] == [field]


async def test_stats_allow_a_full_leap_year(client: httpx.AsyncClient, session: AsyncSession) -> None:
    _, auth = await vendor_auth(client, session)
    body = await get_ok(client, "/vendor/stats", auth, **{"from": "2024-01-01", "to": "2024-12-31"})
    assert len(body["daily"]) == 366


async def test_stats_and_listing_read_only_the_vendors_lines_through_its_index(
    session: AsyncSession,
) -> None:
    """With another vendor's 20,000 lines in the table, every query reaches this vendor's lines
    through ix_order_lines_vendor_order and never scans the whole of order_lines."""
    store = await make_store(session)
    shirt = await stocked(session, store, price=1_000_000)
    busy = await make_store(session)
    dress = await stocked(session, busy, price=4_000_000)
    buyer = await make_user(session)
    for _ in range(3):
        await order_of(session, buyer, [(shirt, 1)])
    variant = (await variants_of(session, dress))[0]
    # Bulk rows in plain SQL: the planner only chooses an index over a table worth avoiding.
    await session.execute(
        text(
            """
            WITH placed AS (
                INSERT INTO orders (id, user_id, status, currency, subtotal_amount, shipping_amount,
                                    total_amount, item_count, shipping_address, expires_at, paid_at,
                                    created_at, updated_at)
                SELECT gen_random_uuid(), :buyer, 'paid', 'NGN', 4000000, 0, 4000000, 1, '{}'::jsonb,
                       now(), now() - (g % 400) * interval '1 day', now(), now()
                FROM generate_series(1, 20000) AS g
                RETURNING id
            ), shipping AS (
                INSERT INTO fulfilments (id, order_id, vendor_id, status, currency, shipping_method,
                                         shipping_amount, return_window_days, created_at, updated_at)
                SELECT gen_random_uuid(), placed.id, :vendor, 'pending', 'NGN', '{}'::jsonb, 0, 14,
                       now(), now()
                FROM placed
                RETURNING id, order_id
            )
            INSERT INTO order_lines (id, order_id, fulfilment_id, variant_id, product_id, vendor_id, title,
                                     vendor_name, sku, size, color, unit_price_amount, quantity,
                                     line_total_amount, created_at, updated_at)
            SELECT gen_random_uuid(), shipping.order_id, shipping.id, :variant, :product, :vendor,
                   'Ankara dress', 'Busy', :sku, 'M', 'black', 4000000, 1, 4000000, now(), now()
            FROM shipping
            """
        ),
        {
            "buyer": buyer.id,
            "variant": variant.id,
            "product": dress.id,
            "vendor": busy.id,
            "sku": variant.sku,
        },
    )
    await session.execute(text("ANALYZE orders"))
    await session.execute(text("ANALYZE order_lines"))
    today = datetime.now(UTC).date()
    statements = [
        stats_service.daily_statement(store, "NGN", today - timedelta(days=29), today),
        stats_service.top_products_statement(store, "NGN", today - timedelta(days=365), today),
        orders_service.page_ids_statement(store, None, None, 21),
        orders_service.page_ids_statement(store, "paid", uuid.uuid4(), 21),
    ]
    for statement in statements:
        compiled = statement.compile(session.bind, compile_kwargs={"literal_binds": True})
        plan = "\n".join((await session.scalars(text(f"EXPLAIN {compiled}"))).all())
        assert "ix_order_lines_vendor_order" in plan, plan
        assert "Seq Scan on order_lines" not in plan, plan
    page = await orders_service.list_vendor_orders(session, store, limit=2, cursor=None)
    assert [len(found.lines) for found in page.items] == [1, 1]
    assert page.next_cursor is not None
