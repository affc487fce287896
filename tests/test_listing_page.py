"""The listing page's read path: its SELECT is written once per shape of request and runs on the
driver's connection (db.services.catalog.listing.listing_query, Database.fetch). Checked here: it
finds the same products as the filters every other search shares (filter_conditions), in the
sort's order across keyset pages, cursors keep their format, and on the API's own pool the
connections go back and one the server dropped is replaced."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from litestar import Litestar
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.engine import Database
from db.models import Brand, Product
from db.pagination import encode_cursor
from db.services.catalog.listing import ListingFilters, filter_conditions
from db.services.catalog.taxonomy import load_category_tree
from tests.support.catalog import make_product, make_store
from tests.support.http import serve
from tests.support.identity import make_user
from tests.support.pool import drop_api_connections

pytestmark = pytest.mark.anyio
API = "/api/v1"


async def walk(client: httpx.AsyncClient, params: dict[str, Any], *, limit: int) -> list[str]:
    """Every product of a listing, page after page."""
    seen: list[str] = []
    cursor = None
    for _ in range(50):
        page_params = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        response = await client.get(f"{API}/products", params=page_params)
        assert response.status_code == 200, (params, response.text)
        page = response.json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError(f"{params}: more than 50 pages")


async def test_filters_find_what_the_shared_filter_conditions_find_in_the_sorts_order(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    specs: list[dict[str, Any]] = [
        {"title": "Linen tee", "price": 900_000, "brand": "Lagos Loom", "variants": [("S", "Red", 3)]},
        {"title": "Linen shirt", "price": 900_000, "category_slug": "men-tops-shirts"},
        {"title": "Silk tee", "price": 1_250_000, "brand": "Lagos Loom", "variants": [("M", "red", 0)]},
        {"title": "Denim jeans", "price": 2_500_000, "category_slug": "women-bottoms-jeans"},
        {"title": "Wax print jeans", "price": 2_500_000, "category_slug": "women-bottoms-jeans"},
        {
            "title": "Linen trousers",
            "price": 1_800_000,
            "brand": "Adire House",
            "variants": [("L", "white", 0)],
        },
        {
            "title": "Cotton tee",
            "price": 400_000,
            "variants": [("m", "Teal Blue", 2), ("XL", "teal blue", 1)],
        },
    ]
    for spec in specs:
        await make_product(session, store, **spec)
    brand_id = await session.scalar(select(Brand.id).where(Brand.slug == "lagos-loom"))
    tree = await load_category_tree(session)
    v = str(store.id)
    cases: list[dict[str, Any]] = [
        {},
        {"category": "women"},
        {"category": "women-bottoms-jeans"},
        {"category": str(tree.by_slug["women-tops"].id)},
        {"brand": "lagos-loom"},
        {"brand": "Adire House"},
        {"brand": str(brand_id)},
        {"brand": "no-such-brand"},
        {"min_price": 900_000},
        {"max_price": 1_250_000},
        {"min_price": 900_000, "max_price": 2_000_000},
        {"size": " m "},
        {"color": "TEAL  blue"},
        {"in_stock": True},
        {"in_stock": False},
        {"category": "women", "brand": "lagos-loom", "in_stock": True, "max_price": 2_000_000},
        {"category": "women", "size": "M", "color": "red"},
    ]
    order = {
        "newest": lambda p: (-p.id.int,),
        "price_asc": lambda p: (p.min_price, p.id.int),
        "price_desc": lambda p: (-p.min_price, -p.id.int),
    }
    for case in cases:
        filters = ListingFilters(vendor=store.id, **case)
        conditions = await filter_conditions(session, tree, filters)
        expected = (
            list((await session.scalars(select(Product).where(*conditions))).all())
            if conditions is not None
            else []
        )
        for sort, key in order.items():
            want = [str(p.id) for p in sorted(expected, key=key)]
            for limit in (2, 100):
                got = await walk(client, {"vendor": v, "sort": sort, **case}, limit=limit)
                assert got == want, (case, sort, limit)


async def test_search_pages_in_rank_order_with_the_filters(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    for i in range(7):
        await make_product(session, store, title=f"Linen shirt {i}", price=1_000 + i)
    await make_product(session, store, title="Linen", description="Linen, linen and more linen.")
    await make_product(session, store, title="Cotton shirt", description="Lined with linen.")
    await make_product(session, store, title="Silk scarf", category_slug="women-tops-knitwear")
    v = str(store.id)
    for q in ("linen", "linen ", "lin", "shirt lin", '"linen shirt"', "linen -cotton"):
        first = await client.get(f"{API}/products", params={"vendor": v, "q": q, "limit": 100})
        assert first.status_code == 200, first.text
        whole = [item["id"] for item in first.json()["items"]]
        assert whole, q
        assert await walk(client, {"vendor": v, "q": q}, limit=3) == whole, q
        in_stock = await walk(client, {"vendor": v, "q": q, "in_stock": True}, limit=2)
        assert in_stock == whole, q  # every product here has stock
        cheap = await walk(client, {"vendor": v, "q": q, "max_price": 1_003, "sort": "price_asc"}, limit=2)
        prices = [(await session.get(Product, pid)) for pid in cheap]
        assert all(p is not None and p.min_price <= 1_003 for p in prices), q
    assert await walk(client, {"vendor": v, "q": "!!!"}, limit=5) == []
    linen = await walk(client, {"vendor": v, "q": "linen"}, limit=100)
    assert linen[0] == str(await session.scalar(select(Product.id).where(Product.title == "Linen")))


async def test_cursors_keep_their_format_and_prices_beyond_32_bits_page(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    made = [
        await make_product(session, store, title=f"Gown {p}", price=p) for p in (3_000_000_000, 4_000_000_000)
    ]
    cheaper, dearer = (str(p.id) for p in made)
    v = str(store.id)
    assert await walk(client, {"vendor": v, "sort": "price_asc"}, limit=1) == [cheaper, dearer]
    assert await walk(client, {"vendor": v, "sort": "price_desc"}, limit=1) == [dearer, cheaper]
    # Cursors as clients hold them: [sort, price or rank, id] and [sort, id].
    for params in (
        {"sort": "price_asc", "cursor": encode_cursor(["price_asc", 3_000_000_000, cheaper])},
        {"sort": "newest", "cursor": encode_cursor(["newest", dearer])},
    ):
        response = await client.get(f"{API}/products", params={"vendor": v, **params})
        assert response.status_code == 200, response.text
        assert [item["id"] for item in response.json()["items"]] == [
            dearer if "price" in params["sort"] else cheaper
        ]
    page = (await client.get(f"{API}/products", params={"vendor": v, "q": "gown", "limit": 1})).json()
    assert page["next_cursor"] is not None
    rank_cursor = encode_cursor(["relevance", 0.1, page["items"][0]["id"]])
    response = await client.get(f"{API}/products", params={"vendor": v, "q": "gown", "cursor": rank_cursor})
    assert response.status_code == 200, response.text
    for bad in (encode_cursor(["newest", "not-an-id"]), encode_cursor(["price_asc", "x", cheaper])):
        response = await client.get(f"{API}/products", params={"sort": "price_asc", "cursor": bad})
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == "cursor"


async def test_pages_go_back_to_the_pool_and_a_dropped_connection_is_replaced(
    committed_db: Database, api_database: Database, make_app: Callable[..., Litestar]
) -> None:
    async with committed_db.session_maker() as session:
        store = await make_store(session, await make_user(session, role="vendor"))
        for i in range(3):
            await make_product(session, store, title=f"Linen shirt {i}")
    params: dict[str, Any] = {"vendor": str(store.id), "limit": 2}
    async with serve(make_app(database=api_database)) as client:
        for _ in range(3):
            page = await client.get(f"{API}/products", params=params)
            assert page.status_code == 200, page.text
            assert len(page.json()["items"]) == 2
        pool = api_database.engine.pool
        assert pool.checkedout() == 0  # type: ignore[attr-defined]

        assert await drop_api_connections(committed_db) >= 1
        for _ in range(3):
            again = await client.get(f"{API}/products", params={**params, "q": "linen"})
            assert again.status_code == 200, again.text
            assert len(again.json()["items"]) == 2
        assert pool.checkedout() == 0  # type: ignore[attr-defined]
