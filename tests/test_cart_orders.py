"""Cart and orders over HTTP on the real database: pricing, caps, idempotency, stock, ownership."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.adapters.tokens import TokenSigner
from core.settings import Settings
from db.models import CartItem, IdempotencyKey, Order, OrderEvent, User, Variant
from tests.support.catalog import make_product, make_store
from tests.support.http import problem
from tests.support.identity import make_user
from tests.support.orders import variants_of

pytestmark = pytest.mark.anyio

API = "/api/v1"
ADDRESS = {"full_name": "Ada Obi", "line1": "1 Marina", "city": "Lagos", "country": "NG"}


def auth(settings: Settings, user: User) -> dict[str, str]:
    return {"Authorization": f"Bearer {TokenSigner(settings).issue(user.id, user.role)}"}


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def stock_of(session: AsyncSession, variant: Variant) -> tuple[int, int]:
    await session.refresh(variant)
    return variant.stock, variant.reserved


async def place(
    client: httpx.AsyncClient, headers: dict[str, str], items: list[tuple[Variant, int]] | None, **extra: Any
) -> httpx.Response:
    body: dict[str, Any] = {"shipping_address": ADDRESS, **extra}
    if items is not None:
        body["items"] = [{"variant_id": str(v.id), "quantity": q} for v, q in items]
    return await client.post(f"{API}/orders", json=body, headers={**headers, **key()})


@pytest.fixture
async def shop(session: AsyncSession) -> dict[str, Any]:
    store = await make_store(session, name="Lagos Loom")
    tee = await make_product(session, store, title="Linen tee", price=1_500_000, variants=[("M", "white", 5)])
    dress = await make_product(
        session, store, title="Ankara dress", price=4_000_000, variants=[("S", "blue", 2), ("M", "blue", 0)]
    )
    draft = await make_product(session, store, title="Draft", status="draft", variants=[("M", "red", 3)])
    return {
        "tee": (await variants_of(session, tee))[0],
        "dress_s": next(v for v in await variants_of(session, dress) if v.size == "S"),
        "dress_m": next(v for v in await variants_of(session, dress) if v.size == "M"),
        "draft": (await variants_of(session, draft))[0],
        "tee_product": tee,
    }


# --- cart -----------------------------------------------------------------------------------


async def test_cart_lines_are_priced_from_the_catalog_and_capped(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings, shop: dict[str, Any]
) -> None:
    buyer = auth(settings, await make_user(session))
    tee, dress = shop["tee"], shop["dress_s"]
    assert (
        await client.post(f"{API}/cart/items", json={"variant_id": str(tee.id), "quantity": 2}, headers=buyer)
    ).status_code == 201
    again = await client.post(
        f"{API}/cart/items", json={"variant_id": str(tee.id), "quantity": 1}, headers=buyer
    )
    assert again.status_code == 201
    await client.post(f"{API}/cart/items", json={"variant_id": str(dress.id), "quantity": 1}, headers=buyer)
    cart = (await client.get(f"{API}/cart", headers=buyer)).json()
    lines = {line["sku"]: line for line in cart["items"]}
    assert lines[tee.sku]["quantity"] == 3
    assert lines[tee.sku]["unit_price"] == {"amount": 1_500_000, "currency": "NGN"}
    assert lines[tee.sku]["line_total"]["amount"] == 4_500_000
    assert lines[tee.sku]["available"] is True
    assert cart["subtotal"]["amount"] == 4_500_000 + 4_000_000
    assert cart["item_count"] == 4

    # A price change shows at once: carts never store prices.
    await session.execute(update(Variant).where(Variant.id == tee.id).values(price_amount=1_000_000))
    cart = (await client.get(f"{API}/cart", headers=buyer)).json()
    assert next(i for i in cart["items"] if i["sku"] == tee.sku)["unit_price"]["amount"] == 1_000_000

    item_id = next(i["id"] for i in cart["items"] if i["sku"] == tee.sku)
    over = await client.patch(f"{API}/cart/items/{item_id}", json={"quantity": 11}, headers=buyer)
    assert problem(over, 422)["errors"][0]["field"] == "quantity"
    over = await client.post(
        f"{API}/cart/items", json={"variant_id": str(tee.id), "quantity": 8}, headers=buyer
    )
    problem(over, 422)
    ok = await client.patch(f"{API}/cart/items/{item_id}", json={"quantity": 6}, headers=buyer)
    assert ok.status_code == 200
    assert next(i for i in ok.json()["items"] if i["id"] == item_id)["quantity"] == 6
    # More than the stock is allowed in a cart, but shown as not available.
    assert next(i for i in ok.json()["items"] if i["id"] == item_id)["available"] is False
    assert (await client.delete(f"{API}/cart/items/{item_id}", headers=buyer)).status_code == 204
    assert len((await client.get(f"{API}/cart", headers=buyer)).json()["items"]) == 1


async def test_cart_refuses_bad_items_and_hides_other_carts(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings, shop: dict[str, Any]
) -> None:
    buyer = auth(settings, await make_user(session))
    other = auth(settings, await make_user(session))
    unknown = await client.post(
        f"{API}/cart/items", json={"variant_id": str(uuid.uuid4()), "quantity": 1}, headers=buyer
    )
    assert problem(unknown, 422)["errors"][0]["field"] == "variant_id"
    draft = await client.post(
        f"{API}/cart/items", json={"variant_id": str(shop["draft"].id), "quantity": 1}, headers=buyer
    )
    problem(draft, 422)
    zero = await client.post(
        f"{API}/cart/items", json={"variant_id": str(shop["tee"].id), "quantity": 0}, headers=buyer
    )
    problem(zero, 422)
    extra = await client.post(
        f"{API}/cart/items",
        json={"variant_id": str(shop["tee"].id), "quantity": 1, "price": 1},
        headers=buyer,
    )
    problem(extra, 422)
    problem(await client.get(f"{API}/cart"), 401)

    added = await client.post(
        f"{API}/cart/items", json={"variant_id": str(shop["tee"].id), "quantity": 1}, headers=buyer
    )
    item_id = added.json()["items"][0]["id"]
    problem(await client.patch(f"{API}/cart/items/{item_id}", json={"quantity": 2}, headers=other), 404)
    problem(await client.delete(f"{API}/cart/items/{item_id}", headers=other), 404)
    assert (await client.get(f"{API}/cart", headers=other)).json()["items"] == []


# --- placing orders -------------------------------------------------------------------------


async def test_an_order_reserves_stock_and_snapshots_its_lines(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings, shop: dict[str, Any]
) -> None:
    user = await make_user(session)
    buyer = auth(settings, user)
    tee, dress = shop["tee"], shop["dress_s"]
    response = await place(client, buyer, [(tee, 2), (dress, 1)])
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["status"] == "pending_payment"
    assert order["total"] == {"amount": 2 * 1_500_000 + 4_000_000, "currency": "NGN"}
    assert order["subtotal"] == order["total"]
    assert order["shipping"]["amount"] == 0
    assert order["item_count"] == 3
    line = next(line for line in order["lines"] if line["sku"] == tee.sku)
    assert line["title"] == "Linen tee"
    assert line["size"] == "M"
    assert line["color"] == "white"
    assert line["vendor"]["name"] == "Lagos Loom"
    assert line["unit_price"]["amount"] == 1_500_000
    assert line["line_total"]["amount"] == 3_000_000
    expires = datetime.fromisoformat(order["expires_at"])
    assert timedelta(minutes=29) < expires - datetime.now(UTC) <= timedelta(minutes=30)
    assert await stock_of(session, tee) == (3, 2)
    assert await stock_of(session, dress) == (1, 1)

    # Later catalog edits do not change the order.
    await session.execute(update(Variant).where(Variant.id == tee.id).values(price_amount=9_999))
    again = (await client.get(f"{API}/orders/{order['id']}", headers=buyer)).json()
    assert (
        next(line for line in again["lines"] if line["sku"] == tee.sku)["unit_price"]["amount"] == 1_500_000
    )
    events = (
        await session.scalars(select(OrderEvent).where(OrderEvent.order_id == uuid.UUID(order["id"])))
    ).all()
    assert [(e.from_status, e.to_status, e.actor, e.actor_id) for e in events] == [
        (None, "pending_payment", "buyer", user.id)
    ]


async def test_an_order_from_the_cart_empties_it(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings, shop: dict[str, Any]
) -> None:
    user = await make_user(session)
    buyer = auth(settings, user)
    empty = await place(client, buyer, None)
    assert problem(empty, 422)["errors"][0]["field"] == "items"
    await client.post(
        f"{API}/cart/items", json={"variant_id": str(shop["tee"].id), "quantity": 2}, headers=buyer
    )
    response = await place(client, buyer, None)
    assert response.status_code == 201, response.text
    assert [(line["sku"], line["quantity"]) for line in response.json()["lines"]] == [(shop["tee"].sku, 2)]
    assert await session.scalar(select(func.count()).where(CartItem.user_id == user.id)) == 0


async def test_not_enough_stock_reserves_nothing(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings, shop: dict[str, Any]
) -> None:
    user = await make_user(session)
    buyer = auth(settings, user)
    tee, dress_m = shop["tee"], shop["dress_m"]
    body = problem(await place(client, buyer, [(tee, 1), (dress_m, 1)]), 409)
    assert "stock" in body["detail"]
    too_many = problem(await place(client, buyer, [(tee, 6)]), 409)
    assert too_many["type"].endswith("out_of_stock")
    assert await stock_of(session, tee) == (5, 0)
    assert await session.scalar(select(func.count()).where(Order.user_id == user.id)) == 0


async def test_bad_orders_are_refused_naming_the_field(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings, shop: dict[str, Any]
) -> None:
    buyer = auth(settings, await make_user(session))
    tee = shop["tee"]
    body: dict[str, Any] = {
        "shipping_address": ADDRESS,
        "items": [{"variant_id": str(tee.id), "quantity": 1}],
    }
    missing_key = await client.post(f"{API}/orders", json=body, headers=buyer)
    assert problem(missing_key, 422)["errors"][0]["field"].lower() == "idempotency-key"
    no_address = await client.post(f"{API}/orders", json={"items": body["items"]}, headers={**buyer, **key()})
    assert problem(no_address, 422)["errors"][0]["field"] == "shipping_address"
    bad_country = {**body, "shipping_address": {**ADDRESS, "country": "Nigeria"}}
    assert (
        "country"
        in problem(await client.post(f"{API}/orders", json=bad_country, headers={**buyer, **key()}), 422)[
            "errors"
        ][0]["field"]
    )
    unknown_body = {**body, "items": [{"variant_id": str(uuid.uuid4()), "quantity": 1}]}
    unknown = problem(await client.post(f"{API}/orders", json=unknown_body, headers={**buyer, **key()}), 422)
    assert unknown["errors"][0]["field"] == "items[0].variant_id"
    draft = problem(await place(client, buyer, [(shop["draft"], 1)]), 422)
    assert draft["errors"][0]["field"] == "items[0].variant_id"
    over_cap = problem(await place(client, buyer, [(tee, 11)]), 422)
    assert over_cap["errors"][0]["field"].startswith("items")
    problem(
        await client.post(
            f"{API}/orders",
            content=b"{not json",
            headers={**buyer, **key(), "content-type": "application/json"},
        ),
        400,
    )
    problem(await client.post(f"{API}/orders", json=body, headers=key()), 401)
    assert await stock_of(session, tee) == (5, 0)


async def test_the_same_idempotency_key_replays_the_order(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings, shop: dict[str, Any]
) -> None:
    user = await make_user(session)
    buyer = auth(settings, user)
    tee = shop["tee"]
    body = {"shipping_address": ADDRESS, "items": [{"variant_id": str(tee.id), "quantity": 1}]}
    headers = {**buyer, **key()}
    first = await client.post(f"{API}/orders", json=body, headers=headers)
    assert first.status_code == 201
    # The same body with other formatting and key order is the same request.
    reordered = {"items": body["items"], "shipping_address": dict(reversed(list(ADDRESS.items())))}
    second = await client.post(f"{API}/orders", json=reordered, headers=headers)
    assert second.status_code == 200
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    assert await stock_of(session, tee) == (4, 1)

    other_body = {**body, "items": [{"variant_id": str(tee.id), "quantity": 2}]}
    reused = problem(await client.post(f"{API}/orders", json=other_body, headers=headers), 422)
    assert reused["type"].endswith("idempotency_key_reused")

    # Keys are per user: another shopper's same key is theirs alone.
    other = auth(settings, await make_user(session))
    assert (
        await client.post(
            f"{API}/orders", json=body, headers={**other, "Idempotency-Key": headers["Idempotency-Key"]}
        )
    ).status_code == 201

    # After 24 hours a key is free again.
    await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.user_id == user.id)
        .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    )
    third = await client.post(f"{API}/orders", json=body, headers=headers)
    assert third.status_code == 201
    assert third.json()["id"] != first.json()["id"]


async def test_a_failed_order_leaves_its_key_free(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings, shop: dict[str, Any]
) -> None:
    buyer = auth(settings, await make_user(session))
    dress_m = shop["dress_m"]
    body = {"shipping_address": ADDRESS, "items": [{"variant_id": str(dress_m.id), "quantity": 1}]}
    headers = {**buyer, **key()}
    problem(await client.post(f"{API}/orders", json=body, headers=headers), 409)
    await session.execute(update(Variant).where(Variant.id == dress_m.id).values(stock=1))
    assert (await client.post(f"{API}/orders", json=body, headers=headers)).status_code == 201


# --- reading and cancelling -----------------------------------------------------------------


async def test_orders_are_listed_for_their_buyer_only(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings, shop: dict[str, Any]
) -> None:
    buyer = auth(settings, await make_user(session))
    other = auth(settings, await make_user(session))
    ids = [(await place(client, buyer, [(shop["tee"], 1)])).json()["id"] for _ in range(3)]
    page = (await client.get(f"{API}/orders", params={"limit": 2}, headers=buyer)).json()
    assert [o["id"] for o in page["items"]] == ids[::-1][:2]
    rest = (await client.get(f"{API}/orders", params={"cursor": page["next_cursor"]}, headers=buyer)).json()
    assert [o["id"] for o in rest["items"]] == [ids[0]]
    assert rest["next_cursor"] is None
    assert (await client.get(f"{API}/orders", params={"status": "paid"}, headers=buyer)).json()["items"] == []
    problem(await client.get(f"{API}/orders", params={"status": "lost"}, headers=buyer), 422)
    assert (await client.get(f"{API}/orders", headers=other)).json()["items"] == []
    problem(await client.get(f"{API}/orders/{ids[0]}", headers=other), 404)
    problem(await client.post(f"{API}/orders/{ids[0]}/cancel", headers=other), 404)
    problem(await client.post(f"{API}/orders/{ids[0]}/payments", headers=other), 404)
    problem(await client.get(f"{API}/orders/{uuid.uuid4()}", headers=buyer), 404)
    problem(await client.get(f"{API}/orders"), 401)


async def test_cancelling_releases_stock_once(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings, shop: dict[str, Any]
) -> None:
    buyer = auth(settings, await make_user(session))
    tee = shop["tee"]
    order = (await place(client, buyer, [(tee, 5)])).json()
    assert await stock_of(session, tee) == (0, 5)
    product = shop["tee_product"]
    await session.refresh(product)
    assert not product.in_stock
    cancelled = await client.post(f"{API}/orders/{order['id']}/cancel", headers=buyer)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert await stock_of(session, tee) == (5, 0)
    await session.refresh(product)
    assert product.in_stock
    again = problem(await client.post(f"{API}/orders/{order['id']}/cancel", headers=buyer), 409)
    assert again["type"].endswith("order_not_cancellable")
    assert await stock_of(session, tee) == (5, 0)
    problem(await client.post(f"{API}/orders/{order['id']}/payments", headers=buyer), 409)
