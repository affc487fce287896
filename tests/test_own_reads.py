"""GET /cart, GET /orders and GET /orders/{id} on the raw read path answer exactly what the ORM path
(still used after writes and by staff) answers: the same JSON for orders in every state and carts
with codes, in one statement per request instead of three to five."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec
import pytest
from sqlalchemy import event, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.orders import schemas
from api.orders.present import cart_out, order_out
from core.adapters.storage import build_storage
from core.jobs import job_buffer
from core.settings import Settings
from db.engine import Database
from db.models import Order, OrderLine, Product, User, Variant, Voucher
from db.services.fulfilment import moves
from db.services.fulfilment.queries import of_order
from db.services.orders import cart, cart_reads, queries, reads
from db.services.vouchers.cart import discount_of
from tests.support.catalog import category, make_product
from tests.support.identity import make_user
from tests.support.orders import make_order, variants_of
from tests.support.returns import Store, a_store, auth, paid_for

pytestmark = pytest.mark.anyio

API = "/api/v1"


@contextmanager
def counted(database: Database) -> Iterator[list[str]]:
    """Every statement run while inside: through the ORM, and on the raw path."""
    seen: list[str] = []
    raw: set[str] = set()

    def on_execute(*args: Any) -> None:
        # Savepoints only isolate each test; a raw statement shows here too when the test's
        # sessions share one connection with the raw path (counted once, as raw).
        statement: str = args[2]
        if not statement.startswith(("SAVEPOINT", "RELEASE", "ROLLBACK")) and statement not in raw:
            seen.append(f"orm: {statement[:60]}")

    def counting(method: Callable[..., Any]) -> Callable[..., Any]:
        async def run(self: Database, sql: str, *args: Any, **kw: Any) -> Any:
            seen.append(f"raw: {sql[:60]}")
            raw.add(sql)
            return await method(self, sql, *args, **kw)

        return run

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Database, "fetch", counting(Database.fetch))
        patch.setattr(Database, "fetch_row", counting(Database.fetch_row))
        event.listen(database.engine.sync_engine, "before_cursor_execute", on_execute)
        try:
            yield seen
        finally:
            event.remove(database.engine.sync_engine, "before_cursor_execute", on_execute)


async def old_order_bytes(session: AsyncSession, user: User, order_id: uuid.UUID) -> bytes:
    # Read from the database as a request would, not the objects the test data left in the session
    # (a jsonb address comes back with its keys in jsonb's order).
    session.expunge_all()
    view = await queries.own_order(session, user.id, order_id)
    return msgspec.json.encode(order_out(view.order, view.lines, view.fulfilments, view.payments))


async def old_order(session: AsyncSession, user: User, order_id: uuid.UUID) -> Any:
    return msgspec.json.decode(await old_order_bytes(session, user, order_id))


async def old_page(session: AsyncSession, user: User, **kw: Any) -> bytes:
    session.expunge_all()
    page = await queries.list_own_orders(session, user.id, **kw)
    items = [order_out(v.order, v.lines, v.fulfilments) for v in page.items]
    return msgspec.json.encode(schemas.OrderList(items=items, next_cursor=page.next_cursor))


async def old_cart(session: AsyncSession, settings: Settings, user: User) -> bytes:
    lines = await cart.cart_lines(session, user.id)
    voucher = await discount_of(session, settings, user.id, lines)
    return msgspec.json.encode(cart_out(lines, settings.currency, build_storage(settings), voucher))


@pytest.fixture
async def orders(session: AsyncSession, settings: Settings) -> dict[str, Any]:
    """A buyer's orders in different states, over two stores."""
    lagos, abuja = (
        await a_store(session, settings, "Lagos Loom"),
        await a_store(session, settings, "Abuja Weave"),
    )
    buyer = await make_user(session)
    made = {
        "delivered": await make_order(session, buyer, [(lagos.tee, 1), (abuja.scarf, 2)], status="delivered"),
        "refunded": await make_order(session, buyer, [(lagos.scarf, 1)], status="refunded"),
        "pending": await make_order(session, buyer, [(abuja.tee, 2)], status="pending_payment"),
        "cancelled": await make_order(session, buyer, [(lagos.tee, 1)], status="cancelled"),
        "partly": await make_order(session, buyer, [(lagos.tee, 1), (abuja.tee, 1)], status="paid"),
    }
    for name in ("delivered", "refunded", "partly"):
        await paid_for(session, made[name])
    # One of the two stores ships its part; a voucher took 1 500 NGN off the delivered order.
    first = (await of_order(session, made["partly"].id))[0]
    staff = moves.Acting(actor="staff", user_id=buyer.id, vendor_id=None)
    with job_buffer():  # the notifications it defers are not what is tested here
        await moves.ship(session, first.id, staff, moves.Tracking("GIG Logistics", "GIG-123"))
    delivered = made["delivered"].id
    voucher = Voucher(
        code=f"C{uuid.uuid4().hex[:10].upper()}",
        funded_by="platform",
        kind="fixed",
        value=150_000,
        currency=settings.currency,
        starts_at=datetime.now(UTC),
    )
    session.add(voucher)
    await session.flush()
    await session.execute(
        update(Order)
        .where(Order.id == delivered)
        .values(voucher_id=voucher.id, discount_amount=150_000, total_amount=Order.total_amount - 150_000)
    )
    await session.execute(
        update(OrderLine)
        .where(OrderLine.order_id == delivered, OrderLine.variant_id == lagos.tee.id)
        .values(discount_amount=150_000)
    )
    await session.commit()
    return {"buyer": buyer, "auth": auth(settings, buyer), "orders": made, "stores": (lagos, abuja)}


async def test_each_order_reads_as_the_orm_path_reads_it(
    client: httpx.AsyncClient, session: AsyncSession, orders: dict[str, Any]
) -> None:
    buyer = orders["buyer"]
    for name, order in orders["orders"].items():
        answer = await client.get(f"{API}/orders/{order.id}", headers=orders["auth"])
        assert answer.status_code == 200, (name, answer.text)
        assert answer.json() == await old_order(session, buyer, order.id), name
        old = await old_order_bytes(session, buyer, order.id)
        assert answer.content == old, name
    body = (
        await client.get(f"{API}/orders/{orders['orders']['delivered'].id}", headers=orders["auth"])
    ).json()
    assert [f["status"] for f in body["fulfilments"]] == ["delivered", "delivered"]
    assert all(f["return_until"] and f["tracking_number"] for f in body["fulfilments"])
    assert body["discount_total"]["amount"] == 150_000
    assert sorted(line["discount"]["amount"] for line in body["lines"]) == [0, 150_000]
    assert [p["status"] for p in body["payments"]] == ["succeeded"]
    partly = (
        await client.get(f"{API}/orders/{orders['orders']['partly'].id}", headers=orders["auth"])
    ).json()
    assert sorted(f["status"] for f in partly["fulfilments"]) == ["pending", "shipped"]
    assert partly["status"] == "partially_shipped"


async def test_pages_and_the_status_filter_read_as_the_orm_path_reads_them(
    client: httpx.AsyncClient, session: AsyncSession, orders: dict[str, Any]
) -> None:
    buyer, headers = orders["buyer"], orders["auth"]
    for status in (None, "paid", "partially_shipped", "delivered", "cancelled"):
        cursor: str | None = None
        seen = 0
        while True:
            params: dict[str, Any] = {"limit": 2}
            if status is not None:
                params["status"] = status
            if cursor is not None:
                params["cursor"] = cursor
            answer = await client.get(f"{API}/orders", params=params, headers=headers)
            assert answer.status_code == 200, answer.text
            page = answer.json()
            assert answer.content == await old_page(session, buyer, limit=2, cursor=cursor, status=status), (
                status
            )
            assert all(item["payments"] is None for item in page["items"])
            seen += len(page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == (5 if status is None else 1 if status != "paid" else 0), status
    newest_first = [o["id"] for o in (await client.get(f"{API}/orders", headers=headers)).json()["items"]]
    assert newest_first == sorted(newest_first, reverse=True)


async def test_someone_elses_order_is_not_found_and_a_bad_cursor_is_refused(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings, orders: dict[str, Any]
) -> None:
    other = auth(settings, await make_user(session))
    order_id = orders["orders"]["delivered"].id
    assert (await client.get(f"{API}/orders/{order_id}", headers=other)).status_code == 404
    assert (await client.get(f"{API}/orders/{uuid.uuid4()}", headers=orders["auth"])).status_code == 404
    assert (await client.get(f"{API}/orders", headers=other)).json() == {"items": [], "next_cursor": None}
    refused = await client.get(f"{API}/orders", params={"cursor": "nope"}, headers=orders["auth"])
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "cursor"


async def fill(client: httpx.AsyncClient, headers: dict[str, str], *lines: tuple[Variant, int]) -> None:
    for variant, quantity in lines:
        added = await client.post(
            f"{API}/cart/items", json={"variant_id": str(variant.id), "quantity": quantity}, headers=headers
        )
        assert added.status_code == 201, added.text


@pytest.fixture
async def shoppers_cart(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> dict[str, Any]:
    """A cart over two stores: one item later unlisted, one wanted beyond its stock."""
    lagos: Store = await a_store(session, settings, "Lagos Loom")
    abuja: Store = await a_store(session, settings, "Abuja Weave")
    dress = await make_product(
        session, lagos.vendor, title="Maxi dress", price=900_000, category_slug="women-dresses-maxi-dresses"
    )
    buyer = await make_user(session)
    headers = auth(settings, buyer)
    dress_variant = (await variants_of(session, dress))[0]
    await fill(client, headers, (lagos.tee, 2), (dress_variant, 1), (abuja.scarf, 5), (abuja.tee, 1))
    await session.execute(update(Variant).where(Variant.id == abuja.scarf.id).values(stock=3))
    await session.execute(
        update(Product).where(Product.id == abuja.tee.product_id).values(status="draft", is_listed=False)
    )
    await session.commit()
    staff = auth(settings, await make_user(session, role="staff"))
    return {"buyer": buyer, "auth": headers, "staff": staff, "dress": dress}


async def issue(client: httpx.AsyncClient, staff: dict[str, str], **terms: Any) -> Any:
    body = {"code": f"c{uuid.uuid4().hex[:10]}", "kind": "percent", "value": 1_000, **terms}
    made = await client.post(f"{API}/staff/vouchers", json=body, headers=staff)
    assert made.status_code == 201, made.text
    return made.json()


async def test_the_cart_reads_as_the_orm_path_reads_it_with_and_without_a_code(
    client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    isolated_db: Database,
    shoppers_cart: dict[str, Any],
) -> None:
    buyer, headers, staff = shoppers_cart["buyer"], shoppers_cart["auth"], shoppers_cart["staff"]

    async def same() -> Any:
        answer = await client.get(f"{API}/cart", headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.content == await old_cart(session, settings, buyer)
        return answer.json()

    bare = await same()
    assert bare["voucher"] is None
    assert [item["available"] for item in bare["items"]] == [True, True, False, False]
    assert len({item["vendor_id"] for item in bare["items"]}) == 2
    maxi = await category(session, "women-dresses-maxi-dresses")
    by_category = await issue(client, staff, scope="category", scope_ids=[str(maxi.id)], per_customer_limit=2)
    applied = await client.post(f"{API}/cart/voucher", json={"code": by_category["code"]}, headers=headers)
    assert applied.status_code == 200, applied.text
    priced = await same()
    with counted(isolated_db) as before:
        await old_cart(session, settings, buyer)
    with counted(isolated_db) as after:
        await cart_reads.own_cart(isolated_db, buyer.id, settings.currency)
    # Lines, the code, the categories of the cart's products, this shopper's uses of the code.
    assert (len(before), len(after)) == (4, 1), (before, after)
    assert priced["voucher"]["discount"]["amount"] == 90_000
    assert priced["voucher"]["problem"] is None
    # The code no longer covers anything once the dress is gone; then it is stopped.
    dress_item = next(i for i in priced["items"] if i["product_id"] == str(shoppers_cart["dress"].id))
    assert (await client.delete(f"{API}/cart/items/{dress_item['id']}", headers=headers)).status_code == 204
    assert (await same())["voucher"]["problem"]
    stopped = await client.patch(
        f"{API}/staff/vouchers/{by_category['id']}", json={"active": False}, headers=staff
    )
    assert stopped.status_code == 200, stopped.text
    assert (await same())["voucher"]["problem"]
    capped = await issue(client, staff, total_cap=1)
    assert (
        await client.post(f"{API}/cart/voucher", json={"code": capped["code"]}, headers=headers)
    ).is_success
    assert (await same())["voucher"]["discount"]["amount"] > 0
    empty = await client.get(f"{API}/cart", headers=auth(settings, await make_user(session)))
    assert empty.json() == {
        "items": [],
        "item_count": 0,
        "subtotal": {"amount": 0, "currency": settings.currency},
        "discount": {"amount": 0, "currency": settings.currency},
        "total": {"amount": 0, "currency": settings.currency},
        "voucher": None,
    }


async def test_statements_per_read_before_and_after(
    client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    isolated_db: Database,
    orders: dict[str, Any],
) -> None:
    buyer = orders["buyer"]
    order_id = orders["orders"]["delivered"].id
    with counted(isolated_db) as before_one:
        await old_order(session, buyer, order_id)
    with counted(isolated_db) as after_one:
        await reads.own_order(isolated_db, buyer.id, order_id)
    with counted(isolated_db) as before_page:
        await old_page(session, buyer, limit=20, cursor=None, status=None)
    with counted(isolated_db) as after_page:
        await reads.own_orders(isolated_db, buyer.id, limit=20, cursor=None)
    with counted(isolated_db) as before_cart:
        await old_cart(session, settings, buyer)
    with counted(isolated_db) as after_cart:
        await cart_reads.own_cart(isolated_db, buyer.id, settings.currency)
    assert (len(before_one), len(after_one)) == (4, 1), (before_one, after_one)
    assert (len(before_page), len(after_page)) == (3, 1), (before_page, after_page)
    assert (len(before_cart), len(after_cart)) == (2, 1), (before_cart, after_cart)
    # The handlers themselves use no ORM session: every statement of the request is a raw one.
    for path in (f"/orders/{order_id}", "/orders", "/cart"):
        with counted(isolated_db) as request:
            assert (await client.get(f"{API}{path}", headers=orders["auth"])).status_code == 200
        assert [s for s in request if s.startswith("orm")] == [], (path, request)
