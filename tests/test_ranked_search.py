"""A search by relevance reads its pages from the query's kept ranking
(db/services/catalog/ranked_search.py). Checked here: its pages are the full query's pages, page
after page, with filters, also when the ranking keeps only a few matches (the rest read by the
full query); a deep page and a selective filter that the kept ranking cannot fill fall back to
the full query and answer the same; a catalog write (through the vendor API) makes the next
search rank again; a product unlisted since the ranking was kept is never served."""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from core.page_versions import CATALOG, PageVersions
from core.settings import Settings
from db.engine import Database
from db.models import Product
from db.services.catalog import products as product_service
from db.services.catalog.listing import ListingFilters, list_products, listing_query
from db.services.catalog.ranked_search import RankedSearches
from db.services.catalog.taxonomy import CategoryTree, load_category_tree
from tests.support.catalog import make_product, make_store
from tests.support.identity import make_user
from tests.support.returns import auth

pytestmark = pytest.mark.anyio
API = "/api/v1"


async def walk(
    database: Database,
    tree: CategoryTree,
    filters: ListingFilters,
    *,
    limit: int,
    searches: RankedSearches | None,
) -> list[UUID]:
    """Every product of a search, page after page, with the kept ranking or without."""
    seen: list[UUID] = []
    cursor = None
    for _ in range(60):
        page = await list_products(database, tree, filters, limit=limit, cursor=cursor, searches=searches)
        seen += [row[0] for row in page.rows]
        cursor = page.next_cursor
        if cursor is None:
            return seen
    raise AssertionError(f"{filters}: more than 60 pages")


async def linen_catalog(session: AsyncSession) -> UUID:
    """A store whose products match "linen" at different ranks (and some do not)."""
    store = await make_store(session)
    for i in range(9):
        await make_product(session, store, title=f"Linen shirt {i}", price=1_000 + i)
    await make_product(session, store, title="Linen", description="Linen, linen and more linen.", price=2_000)
    await make_product(session, store, title="Cotton shirt", description="Lined with linen.", price=2_500)
    await make_product(session, store, title="Linen scarf", price=1_100, variants=[("S", "white", 0)])
    await make_product(session, store, title="Silk scarf", category_slug="women-tops-knitwear")
    return store.id


async def test_pages_from_a_kept_ranking_are_the_full_querys_pages(
    session: AsyncSession, isolated_db: Database, redis: Redis
) -> None:
    vendor = await linen_catalog(session)
    tree = await load_category_tree(session)
    versions = PageVersions(redis)
    for top in (3, 1000):
        searches = RankedSearches(versions, top=top)
        for q in ("linen", "linen ", "lin", "shirt lin", '"linen shirt"', "linen -cotton"):
            for extra in ({}, {"in_stock": True}, {"max_price": 1_002}, {"size": "M"}):
                filters = ListingFilters(q=q, vendor=vendor, **extra)
                for limit in (2, 5):
                    want = await walk(isolated_db, tree, filters, limit=limit, searches=None)
                    got = await walk(isolated_db, tree, filters, limit=limit, searches=searches)
                    assert got == want, (top, q, extra, limit)
        assert len(searches) == 6
    whole = await walk(isolated_db, tree, ListingFilters(q="linen", vendor=vendor), limit=50, searches=None)
    assert len(whole) == 12


async def page_of(
    database: Database,
    tree: CategoryTree,
    filters: ListingFilters,
    searches: RankedSearches,
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[UUID], str | None]:
    page = await list_products(database, tree, filters, limit=limit, cursor=cursor, searches=searches)
    return [row[0] for row in page.rows], page.next_cursor


async def test_a_deep_page_and_a_selective_filter_fall_back_to_the_full_query(
    session: AsyncSession, isolated_db: Database, redis: Redis
) -> None:
    vendor = await linen_catalog(session)
    tree = await load_category_tree(session)
    searches = RankedSearches(PageVersions(redis), top=3)
    linen = ListingFilters(q="linen", vendor=vendor)
    whole = await walk(isolated_db, tree, linen, limit=50, searches=None)

    # Page one of two-row pages (three rows read) is the kept three; page two is not.
    first, cursor = await page_of(isolated_db, tree, linen, searches, limit=2, cursor=None)
    assert first == whole[:2]
    query = listing_query(tree, linen, limit=2, cursor=cursor)
    assert query is not None
    assert query.ranked is not None
    second = await searches.page(isolated_db, query.ranked)
    assert second is None  # one kept match after the cursor, three rows asked for
    # A deep page, past everything the ranking kept: the full query answers it.
    deep, _ = await page_of(isolated_db, tree, linen, searches, limit=2, cursor=cursor)
    assert deep == whole[2:4]
    _, cursor = await page_of(isolated_db, tree, linen, searches, limit=4, cursor=None)
    deeper, _ = await page_of(isolated_db, tree, linen, searches, limit=4, cursor=cursor)
    assert deeper == whole[4:8]

    # A filter that only a match ranked below the kept three passes.
    last = await session.get(Product, whole[-1])
    assert last is not None
    only = ListingFilters(q="linen", vendor=vendor, min_price=last.min_price, max_price=last.min_price)
    want = await walk(isolated_db, tree, only, limit=5, searches=None)
    assert whole[-1] in want
    assert not set(want) & set(whole[:3])
    query = listing_query(tree, only, limit=5, cursor=None)
    assert query is not None
    assert query.ranked is not None
    assert await searches.page(isolated_db, query.ranked) is None
    assert await walk(isolated_db, tree, only, limit=5, searches=searches) == want

    # With every match kept, the same filter is answered from the ranking itself.
    everything = RankedSearches(PageVersions(redis))
    rows = await everything.page(isolated_db, query.ranked)
    assert rows is not None
    assert [row[0] for row in rows] == want


async def test_a_renamed_product_is_found_once_the_catalog_version_moves(
    session: AsyncSession, isolated_db: Database, redis: Redis, settings: Settings
) -> None:
    store = await make_store(session)
    shirt = await make_product(session, store, title="Linen shirt")
    dress = await make_product(session, store, title="Cotton dress")
    tree = await load_category_tree(session)
    versions = PageVersions(redis)
    searches = RankedSearches(versions)
    linen = ListingFilters(q="linen", vendor=store.id)
    assert await walk(isolated_db, tree, linen, limit=10, searches=searches) == [shirt.id]

    await product_service.update_product(
        session, store, dress.id, currency=settings.currency, changes={"title": "Linen dress"}
    )
    await session.flush()
    # The ranking is kept under the counter it was read with: until a write moves it, the
    # rename is not looked for (every write through a unit of work moves it after its commit).
    assert await walk(isolated_db, tree, linen, limit=10, searches=searches) == [shirt.id]
    await versions.bump([CATALOG])
    found = await walk(isolated_db, tree, linen, limit=10, searches=searches)
    assert sorted(found) == sorted([shirt.id, dress.id])
    assert found == await walk(isolated_db, tree, linen, limit=10, searches=None)


async def test_a_product_renamed_through_the_vendor_api_is_on_the_next_search(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await make_user(session, role="vendor")
    store = await make_store(session, owner, name=f"Search Loom {uuid.uuid4().hex[:6]}")
    shirt = await make_product(session, store, title="Linen shirt")
    dress = await make_product(session, store, title="Cotton dress")
    search: dict[str, Any] = {"q": "linen", "vendor": str(store.id)}
    first = await client.get(f"{API}/products", params=search)
    assert first.status_code == 200, first.text
    assert [item["id"] for item in first.json()["items"]] == [str(shirt.id)]

    renamed = await client.patch(
        f"{API}/vendor/products/{dress.id}", json={"title": "Linen dress"}, headers=auth(settings, owner)
    )
    assert renamed.status_code == 200, renamed.text

    both = await client.get(f"{API}/products", params=search)
    assert both.status_code == 200, both.text
    assert sorted(item["id"] for item in both.json()["items"]) == sorted([str(shirt.id), str(dress.id)])
    # One per page as well: pages the page cache never held, read from the new ranking.
    one = await client.get(f"{API}/products", params={**search, "limit": 1})
    cursor = one.json()["next_cursor"]
    two = await client.get(f"{API}/products", params={**search, "limit": 1, "cursor": cursor})
    paged = [one.json()["items"][0]["id"], two.json()["items"][0]["id"]]
    assert paged == [item["id"] for item in both.json()["items"]]
    assert two.json()["next_cursor"] is None


async def test_a_product_unlisted_since_its_ranking_was_kept_is_never_served(
    session: AsyncSession, isolated_db: Database, redis: Redis
) -> None:
    store = await make_store(session)
    shirt = await make_product(session, store, title="Linen shirt")
    scarf = await make_product(session, store, title="Linen scarf")
    tree = await load_category_tree(session)
    searches = RankedSearches(PageVersions(redis))
    linen = ListingFilters(q="linen", vendor=store.id)
    assert sorted(await walk(isolated_db, tree, linen, limit=10, searches=searches)) == sorted(
        [shirt.id, scarf.id]
    )
    kept = searches.kept("prefix", ("linen", "linen:*"))
    assert kept is not None
    assert shirt.id in kept.ids

    # Unlisted without the counter moving (a bump lost to a Redis outage): the ranking stays,
    # but its rows are read as they are now.
    await session.execute(update(Product).where(Product.id == shirt.id).values(is_listed=False))
    await session.flush()
    for limit in (1, 10):
        assert await walk(isolated_db, tree, linen, limit=limit, searches=searches) == [scarf.id]
    assert searches.kept("prefix", ("linen", "linen:*")) is kept


async def test_without_redis_every_search_ranks_every_match(
    session: AsyncSession, isolated_db: Database
) -> None:
    vendor = await linen_catalog(session)
    tree = await load_category_tree(session)
    # Nothing listens on port 1: the catalog version cannot be read, so no ranking is kept.
    unreachable = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    try:
        searches = RankedSearches(PageVersions(unreachable))
        for in_stock in (None, True):
            filters = ListingFilters(q="linen", vendor=vendor, in_stock=in_stock)
            want = await walk(isolated_db, tree, filters, limit=3, searches=None)
            assert want
            assert await walk(isolated_db, tree, filters, limit=3, searches=searches) == want
            query = listing_query(tree, filters, limit=3, cursor=None)
            assert query is not None
            assert query.ranked is not None
            assert await searches.page(isolated_db, query.ranked) is None
        assert len(searches) == 0
    finally:
        await unreachable.aclose()
