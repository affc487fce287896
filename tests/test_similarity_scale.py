"""Filtered similarity search on 100,000 products with embeddings: a selective filter still
fills the page (the planner scores the filter's rows), a broad one is served by an iterative
HNSW scan, and a scan that stops at ``hnsw.max_scan_tuples`` short of a page falls back to exact
search.

The catalog is generated in SQL into a database of its own for this module (about a minute,
most of it building the HNSW index) and dropped afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any
from uuid import UUID

import anyio
import asyncpg
import msgspec
import pytest
from litestar import Litestar
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from core.settings import Settings
from db import migrate
from db.engine import Database, create_database
from db.models import Category, Product
from db.services import vector_search
from db.services.catalog import similar
from db.services.catalog.similar import SimilarityFilters
from db.services.catalog.similar_sql import CONFIGURE_SQL, exact_sql, nearest_sql
from db.services.catalog.taxonomy import CategoryTree, load_category_tree
from db.services.vector_search import OVERFETCH, scan_settings
from tests.conftest import Services
from tests.support.http import serve
from tests.support.similarity import (
    DRESSES,
    HALF_PRICE,
    HNSW_INDEX,
    SHOES,
    database_url,
    drop_database,
    recreate_database,
    seed_similarity_catalog,
)

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

API = "/api/v1"
PRODUCTS = 100_000


@pytest.fixture(scope="module")
async def large_catalog(services: Services, settings: Settings) -> AsyncIterator[Database]:
    name = f"{make_url(services.database_url).database}_similarity"
    await recreate_database(services.database_url, name)
    try:
        local = msgspec.structs.replace(settings, database_url=database_url(services.database_url, name))
        await anyio.to_thread.run_sync(migrate.upgrade, local)
        timings = await seed_similarity_catalog(local.require_database_url(), products=PRODUCTS)
        print(f"seeded {PRODUCTS} products: {timings}")  # shown with -s: what the fixture costs
        database = create_database(local, "test")
        try:
            yield database
        finally:
            await database.dispose()
    finally:
        await drop_database(services.database_url, name)


@pytest.fixture(scope="module")
async def tree(large_catalog: Database) -> CategoryTree:
    async with large_catalog.session_maker() as session:
        return await load_category_tree(session)


@pytest.fixture(scope="module")
async def tee(large_catalog: Database) -> UUID:
    """A listed t-shirt: not a dress, not a shoe."""
    async with large_catalog.session_maker() as session:
        found = await session.scalar(
            select(Product.id)
            .join(Category, Category.id == Product.category_id)
            .where(Category.slug == "women-tops-t-shirts", Product.is_listed)
            .order_by(Product.slug)
            .limit(1)
        )
    assert found is not None
    return found


def subtree(tree: CategoryTree, slug: str) -> set[str]:
    node = tree.find(slug)
    assert node is not None
    return {str(i) for i in tree.descendant_ids(node)}


async def brute_force(session: AsyncSession, product_id: UUID, where: str, **params: Any) -> list[str]:
    """The true 20 nearest listed products under ``where``: every distance computed (ordering by
    an aggregate is nothing an index can serve)."""
    rows = await session.scalars(
        text(
            "SELECT i.product_id FROM product_images i JOIN products p ON p.id = i.product_id "
            f"WHERE p.is_listed AND p.id <> :me AND i.embedding IS NOT NULL AND {where} "
            "GROUP BY i.product_id "
            "ORDER BY min(i.embedding <=> (SELECT q.embedding FROM product_images q "
            "WHERE q.product_id = :me ORDER BY q.position LIMIT 1)) LIMIT 20"
        ),
        {"me": product_id, **params},
    )
    return [str(product) for product in rows]


async def test_a_filter_matching_two_percent_still_returns_a_full_page(
    large_catalog: Database, make_app: Callable[..., Litestar], tree: CategoryTree, tee: UUID
) -> None:
    async with serve(make_app(database=large_catalog)) as client:
        response = await client.get(
            f"{API}/products/{tee}/similar", params={"category": DRESSES, "limit": 20}
        )
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert len(items) == 20
    dresses = subtree(tree, DRESSES)
    assert all(item["product"]["category_id"] in dresses for item in items)
    scores = [item["score"] for item in items]
    assert scores == sorted(scores, reverse=True)
    async with large_catalog.session_maker() as session:
        dress_ids = [UUID(i) for i in dresses]
        truth = await brute_force(session, tee, "p.category_id = ANY(:ids)", ids=dress_ids)
    assert [item["product"]["id"] for item in items] == truth


async def test_selective_filters_are_served_from_the_filters_own_indexes(
    large_catalog: Database, tree: CategoryTree, tee: UUID
) -> None:
    narrow = SimilarityFilters(category=DRESSES, in_stock=True, max_price=HALF_PRICE)
    found, path = await similar.similar_products(large_catalog, tree, tee, narrow, limit=20)
    assert path == ("nearest",)
    assert len(found) == 20
    assert all(p.summary.in_stock and p.summary.price_amount <= HALF_PRICE for p in found)
    plan = await nearest_plan(large_catalog, tree, tee, narrow)
    async with large_catalog.session_maker() as session:
        dress_ids = [UUID(i) for i in subtree(tree, DRESSES)]
        truth = await brute_force(
            session, tee, "p.category_id = ANY(:ids) AND p.in_stock AND p.min_price <= :cap", ids=dress_ids,
            cap=HALF_PRICE,
        )  # fmt: skip
    assert HNSW_INDEX not in plan, plan
    assert "ix_products_listed_category" in plan, plan
    assert [str(p.summary.id) for p in found] == truth


async def test_broad_filters_use_the_index_and_still_fill_the_page(
    large_catalog: Database, make_app: Callable[..., Litestar], tree: CategoryTree, tee: UUID
) -> None:
    everything = SimilarityFilters()
    unfiltered, plain = await similar.similar_products(large_catalog, tree, tee, everything, limit=20)
    half, by_price = await similar.similar_products(
        large_catalog, tree, tee, SimilarityFilters(max_price=HALF_PRICE), limit=20
    )
    assert plain == ("nearest",)
    assert by_price == ("nearest",)
    for filters in (SimilarityFilters(), SimilarityFilters(max_price=HALF_PRICE)):
        plan = await nearest_plan(large_catalog, tree, tee, filters)
        assert f"Index Scan using {HNSW_INDEX}" in plan, plan
    for found in (unfiltered, half):
        assert len(found) == 20
        assert len({p.summary.id for p in found}) == 20  # one entry per product
        assert tee not in {p.summary.id for p in found}
    assert all(p.summary.price_amount <= HALF_PRICE for p in half)
    async with large_catalog.session_maker() as session:
        truth = await brute_force(session, tee, "p.min_price <= :cap", cap=HALF_PRICE)
    recall = len({str(p.summary.id) for p in half} & set(truth)) / 20
    assert recall >= 0.9, recall
    async with serve(make_app(database=large_catalog)) as client:
        response = await client.get(f"{API}/products/{tee}/similar", params={"max_price": HALF_PRICE})
    assert [i["product"]["id"] for i in response.json()["items"]] == [str(p.summary.id) for p in half]


async def test_a_scan_that_stops_short_of_a_page_falls_back_to_exact_search(
    large_catalog: Database, tree: CategoryTree, tee: UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 10% of the catalog, but none of it anywhere near a t-shirt: the index scan passes thousands
    # of rows before it reaches a shoe. Capped at 25 index rows per row asked (1,000 here), it
    # stops with none found.
    # (At pgvector's default candidate list of 40: the searches' own 100 start with enough shoes.)
    monkeypatch.setattr(vector_search, "SCAN_TUPLES_PER_ROW", 25)
    monkeypatch.setattr(vector_search, "EF_MIN", 40)
    shoes = SimilarityFilters(category=SHOES)
    found, path = await similar.similar_products(large_catalog, tree, tee, shoes, limit=20)
    plan = await nearest_plan(large_catalog, tree, tee, shoes)
    async with large_catalog.session_maker() as session:
        shoe_ids = [UUID(i) for i in subtree(tree, SHOES)]
        truth = await brute_force(session, tee, "p.category_id = ANY(:ids)", ids=shoe_ids)
    assert f"Index Scan using {HNSW_INDEX}" in plan, plan
    assert path == ("nearest", "exact")
    assert [str(p.summary.id) for p in found] == truth


async def test_the_exact_and_index_queries_use_the_intended_indexes(
    large_catalog: Database, tree: CategoryTree, tee: UUID
) -> None:
    shape, values = similar._filters(tree, SimilarityFilters(category=DRESSES))
    async with large_catalog.raw_reader() as conn, conn.transaction():
        await conn.execute(CONFIGURE_SQL, *scan_settings(OVERFETCH * 20))
        exact_plan = await explain(conn, exact_sql("product", shape), tee, *values, 20)
        index_plan = await explain(conn, nearest_sql("product", ()), tee, OVERFETCH * 20, 20)
    assert HNSW_INDEX not in exact_plan, exact_plan
    assert "ix_products_listed_category" in exact_plan, exact_plan
    assert "ix_product_images_product" in exact_plan, exact_plan
    assert "Seq Scan" not in exact_plan, exact_plan
    assert f"Index Scan using {HNSW_INDEX}" in index_plan, index_plan
    assert "Seq Scan" not in index_plan, index_plan


async def nearest_plan(
    database: Database, tree: CategoryTree, product_id: UUID, filters: SimilarityFilters
) -> str:
    """The plan of the first statement a similar-products search runs, with its settings."""
    shape, values = similar._filters(tree, filters)
    rows = OVERFETCH * 20
    async with database.raw_reader() as conn, conn.transaction():
        await conn.execute(CONFIGURE_SQL, *scan_settings(rows))
        return await explain(conn, nearest_sql("product", shape), product_id, *values, rows, 20)


async def explain(conn: asyncpg.Connection, sql: str, *args: Any) -> str:
    rows = await conn.fetch(f"EXPLAIN {sql}", *args)
    return "\n".join(row[0] for row in rows)
