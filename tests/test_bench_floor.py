"""The benchmark suite's floor app (``benchmarks/suite/floor.py``) answers every scenario's request
as the API does: same items in the same order, same money, same field names, and for order
creation the same rows written. This is what makes a scenario's ratio to its own floor honest.

Both apps run in this process on the real (committed) database with a small seeded catalog:
charted tops with photo embeddings, a shopper with a body profile and shoppers shaped like them
who bought and kept a size (counted per body-shape cell, as the refresh job does).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from litestar import Litestar
from sqlalchemy import text

from benchmarks.suite import floor
from core.settings import Settings
from db.engine import Database
from db.models import Product
from db.services.fit.shopper_sizes import refresh_shopper
from tests.support.catalog import make_store
from tests.support.http import serve
from tests.support.orders import make_order
from tests.support.similarity import add_image, direction
from tests.test_cart_orders import auth
from tests.test_fit import ALL_SIZES, charted_product
from tests.test_fit_shoppers import measured, shape, variant

pytestmark = pytest.mark.anyio

API = "/api/v1"
ADDRESS = {"full_name": "Bench Shopper", "line1": "1 Marina", "city": "Lagos", "country": "NG"}
TITLES = [
    "Floral cotton tee",
    "Striped linen shirt",
    "Floral silk blouse",
    "Plain cotton tank",
    "Denim shirt",
]


@dataclass
class Seeded:
    products: list[uuid.UUID]
    headers: dict[str, str]
    brand_slug: str


@dataclass
class Apps:
    api: httpx.AsyncClient
    floor: httpx.AsyncClient


@pytest.fixture
async def seeded(committed_db: Database, settings: Settings) -> Seeded:
    async with committed_db.session_maker() as session:
        store = await make_store(session)
        products = []
        for index, title in enumerate(TITLES):
            stocked = [(size, color, 0 if index == 3 and size == "M" else 40) for size, color, _ in ALL_SIZES]
            product_id = await charted_product(
                session,
                store,
                variants=stocked,
                title=title,
                price=1_000_000 + 250_000 * (index % 3),
                brand="Adire" if index % 2 == 0 else None,
            )
            product = await session.get(Product, product_id)
            assert product is not None
            await add_image(session, product, direction(12 * index, axis=1 + index % 2))
            products.append(product_id)
        me = await measured(session, shape(0.0))
        # Six shoppers shaped like this one kept L of the first product (the counts follow each
        # order as the job its status change defers does).
        kept = await variant(session, products[0], "L")
        for grown in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6):
            buyer = await measured(session, shape(grown))
            await make_order(session, buyer, [(kept, 1)], status="paid")
            await refresh_shopper(session, buyer.id)
    return Seeded(products=products, headers=auth(settings, me), brand_slug="adire")


@pytest.fixture
async def apps(
    make_app: Callable[..., Litestar], committed_db: Database, settings: Settings, seeded: Seeded
) -> AsyncIterator[Apps]:
    async with serve(make_app(database=committed_db)) as api, serve(floor.create_app(settings)) as bare:
        yield Apps(api=api, floor=bare)


async def both(apps: Apps, method: str, path: str, **kwargs: Any) -> tuple[httpx.Response, httpx.Response]:
    return (
        await apps.api.request(method, path, **kwargs),
        await apps.floor.request(method, path, **kwargs),
    )


async def same_answer(apps: Apps, path: str, **kwargs: Any) -> dict[str, Any]:
    api, bare = await both(apps, "GET", path, **kwargs)
    assert api.status_code == 200, api.text
    assert bare.status_code == 200, bare.text
    assert bare.json() == api.json(), path
    answer: dict[str, Any] = api.json()
    return answer


async def test_the_product_page_and_the_listing_answer_as_the_api(apps: Apps, seeded: Seeded) -> None:
    page = await same_answer(apps, f"{API}/products/{seeded.products[0]}")
    assert page["size_chart"]["rows"][2]["size"] == "M"
    assert len(page["variants"]) == len(ALL_SIZES)
    first = await same_answer(apps, f"{API}/products", params={"sort": "newest", "limit": 2})
    assert [item["id"] for item in first["items"]] == [str(p) for p in seeded.products[::-1][:2]]
    assert first["next_cursor"]
    after = {"sort": "newest", "limit": 2, "cursor": first["next_cursor"]}
    assert len((await same_answer(apps, f"{API}/products", params=after))["items"]) == 2
    for params in (
        {"sort": "price_asc", "limit": 3},
        {"sort": "price_desc", "category": "women-tops", "limit": 20},
        {"brand": seeded.brand_slug, "sort": "newest"},
        {"size": "M", "in_stock": "true", "sort": "price_asc"},
        {"min_price": 1_100_000, "max_price": 1_500_000},
    ):
        found = await same_answer(apps, f"{API}/products", params=params)
        assert found["items"], params
    price_page = await same_answer(apps, f"{API}/products", params={"sort": "price_asc", "limit": 3})
    cursor = {"sort": "price_asc", "limit": 3, "cursor": price_page["next_cursor"]}
    assert (await same_answer(apps, f"{API}/products", params=cursor))["items"]


async def test_search_answers_as_the_api(apps: Apps) -> None:
    exact = await same_answer(apps, f"{API}/products", params={"q": "floral cotton"})
    assert [item["title"] for item in exact["items"]] == ["Floral cotton tee"]
    ranked = await same_answer(apps, f"{API}/products", params={"q": "cotton", "limit": 1})
    assert ranked["next_cursor"]
    params = {"q": "cotton", "limit": 1, "cursor": ranked["next_cursor"]}
    rest = await same_answer(apps, f"{API}/products", params=params)
    titles = {item["title"] for item in ranked["items"] + rest["items"]}
    assert titles == {"Floral cotton tee", "Plain cotton tank"}
    typing = await same_answer(apps, f"{API}/products", params={"q": "striped lin", "category": "women-tops"})
    assert [item["title"] for item in typing["items"]] == ["Striped linen shirt"]
    assert (await same_answer(apps, f"{API}/products", params={"q": "velvet"}))["items"] == []


async def test_similar_items_answer_as_the_api_on_both_search_paths(apps: Apps, seeded: Seeded) -> None:
    path = f"{API}/products/{seeded.products[0]}/similar"
    nearest = await same_answer(apps, path, params={"limit": 2})
    assert [item["product"]["id"] for item in nearest["items"]] == [
        str(seeded.products[1]),
        str(seeded.products[2]),
    ]
    assert nearest["items"][0]["score"] == pytest.approx(math.cos(math.radians(12)), abs=1e-5)
    # More than the catalog holds: the nearest rows come back short and the exact search answers.
    every = await same_answer(apps, path, params={"limit": 10})
    assert len(every["items"]) == len(seeded.products) - 1
    missing = await both(apps, "GET", f"{API}/products/{uuid.uuid4()}/similar")
    assert [r.status_code for r in missing] == [404, 404]
    # A request shape the floor does not serve is refused, never answered differently.
    filtered = await apps.floor.get(path, params={"category": "women-tops"})
    assert filtered.status_code == 422


async def test_products_that_fit_and_size_advice_answer_as_the_api(apps: Apps, seeded: Seeded) -> None:
    headers = seeded.headers
    fitting = await same_answer(apps, f"{API}/fit/products", params={"limit": 2}, headers=headers)
    assert len(fitting["items"]) == 2
    assert fitting["next_cursor"]
    every = await same_answer(apps, f"{API}/fit/products", headers=headers)
    # The tank is out of stock in M, the size that fits: it is not listed as fitting in M.
    assert all(
        item["size"] != "M" for item in every["items"] if item["product"]["id"] == str(seeded.products[3])
    )
    advice = await same_answer(apps, f"{API}/products/{seeded.products[0]}/fit", headers=headers)
    shoppers = advice["similar_shoppers"]
    assert (shoppers["size_distribution"], shoppers["scope"]) == ({"L": 1.0}, "product")
    assert shoppers["count"] >= 5
    assert advice["recommended_size"] == "L"
    plain = await same_answer(apps, f"{API}/products/{seeded.products[1]}/fit", headers=headers)
    assert (plain["recommended_size"], plain["similar_shoppers"]) == ("M", None)
    missing = await both(apps, "GET", f"{API}/products/{uuid.uuid4()}/fit", headers=headers)
    assert [r.status_code for r in missing] == [404, 404]
    later = await apps.floor.get(
        f"{API}/fit/products", params={"cursor": fitting["next_cursor"]}, headers=headers
    )
    assert later.status_code == 422
    anonymous = await both(apps, "GET", f"{API}/fit/products")
    assert [r.status_code for r in anonymous] == [401, 401]


# --- order creation -------------------------------------------------------------------------------

GENERATED = {"id", "order_id", "fulfilment_id", "order_line_id"}


def without_generated(value: Any) -> Any:
    """The answer with what each order makes up anew (ids, its times) replaced by placeholders."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in GENERATED and item is not None:
                out[key] = "<id>"
            elif key in ("created_at", "expires_at"):
                made = datetime.fromisoformat(item)
                assert abs(made - datetime.now(UTC)) < timedelta(minutes=31), item
                out[key] = "<time>"
            else:
                out[key] = without_generated(item)
        return out
    if isinstance(value, list):
        return [without_generated(item) for item in value]
    return value


ROWS_WRITTEN = {
    "order": "SELECT status, currency, subtotal_amount, shipping_amount, discount_amount, total_amount, "
    "item_count, shipping_address, round(extract(epoch FROM expires_at - created_at) / 60) AS hold_minutes "
    "FROM orders WHERE id = :id",
    "lines": "SELECT variant_id, product_id, vendor_id, title, vendor_name, sku, size, color, "
    "unit_price_amount, quantity, line_total_amount, discount_amount, commission_bps, final_sale "
    "FROM order_lines WHERE order_id = :id ORDER BY sku",
    "fulfilments": "SELECT vendor_id, status, currency, shipping_method, shipping_amount, return_window_days "
    "FROM fulfilments WHERE order_id = :id",
    "audit": "SELECT from_status, to_status, actor, actor_id FROM order_events WHERE order_id = :id",
    "key": "SELECT response_status, response_body->>'id' = :text_id AS own FROM idempotency_keys "
    "WHERE order_id = :id",
    # What placing writes: the fan-out job (a worker running it adds the jobs it defers).
    "outbox": "SELECT task_name, args->>1 AS kind, dispatched_at IS NOT NULL AS marked_sent "
    "FROM outbox_messages WHERE args->>0 = :text_id AND task_name = 'emails.orders.fan_out_placed'",
}


async def rows_written(database: Database, order_id: str) -> dict[str, list[tuple[Any, ...]]]:
    async with database.engine.connect() as conn:
        return {
            name: [
                tuple(row)
                for row in await conn.execute(text(sql), {"id": uuid.UUID(order_id), "text_id": order_id})
            ]
            for name, sql in ROWS_WRITTEN.items()
        }


async def stock_of(database: Database, variant_id: uuid.UUID) -> tuple[int, int]:
    async with database.engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT stock, reserved FROM variants WHERE id = :id"), {"id": variant_id}
            )
        ).one()
        return row[0], row[1]


async def test_order_creation_answers_and_writes_as_the_api(
    apps: Apps, seeded: Seeded, committed_db: Database
) -> None:
    async with committed_db.session_maker() as session:
        wanted = await variant(session, seeded.products[1], "S")
        sold_out = await variant(session, seeded.products[3], "M")
    body = {"items": [{"variant_id": str(wanted.id), "quantity": 2}], "shipping_address": ADDRESS}
    before = await stock_of(committed_db, wanted.id)
    placed = []
    for client in (apps.api, apps.floor):
        headers = {**seeded.headers, "Idempotency-Key": str(uuid.uuid4())}
        response = await client.post(f"{API}/orders", json=body, headers=headers)
        assert response.status_code == 201, response.text
        again = await client.post(f"{API}/orders", json=body, headers=headers)
        assert (again.status_code, again.json()) == (200, response.json())
        placed.append(response.json())
    api, bare = placed
    assert without_generated(bare) == without_generated(api)
    assert api["total"] == {"amount": 2 * 1_250_000 + api["shipping"]["amount"], "currency": "NGN"}
    assert await stock_of(committed_db, wanted.id) == (before[0] - 4, before[1] + 4)
    written = await rows_written(committed_db, api["id"])
    assert written == await rows_written(committed_db, bare["id"])
    assert [len(written[name]) for name in ROWS_WRITTEN] == [1, 1, 1, 1, 1, 1]
    assert all(marked for _, _, marked in written["outbox"])
    # The oversell guard: nothing in stock, nothing reserved, the same refusal.
    short = {"items": [{"variant_id": str(sold_out.id), "quantity": 1}], "shipping_address": ADDRESS}
    refused = await both(
        apps, "POST", f"{API}/orders", json=short, headers={**seeded.headers, "Idempotency-Key": "short"}
    )
    assert [r.status_code for r in refused] == [409, 409]
    assert await stock_of(committed_db, sold_out.id) == (0, 0)
