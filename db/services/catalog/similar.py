"""Visual similarity: "more like this" for a product, and search by photo.

Both rank listed products by the cosine similarity of their images' embeddings to a query
vector (a product's best-matching image counts), under the listing's own filters. They run on
the pool's connection (``Database.read``, on the replica when there is one) as statements written
once per shape (``similar_sql``), in a read-only transaction whose settings the first statement
makes. A first page of similar items: BEGIN, the product with the settings, the nearest rows
with the summaries, COMMIT. The passes (nearest rows, a wider pass, the exact statement) are
``db.services.vector_search``'s, whose docstring says how they were chosen and measured; its
``PRODUCT_IMAGES`` table and ``first_embedding`` state the same search for the search-quality
benchmarks, and the tests hold both to the same products.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import partial
from typing import Any
from uuid import UUID

import anyio
import asyncpg
from asyncpg import Record
from sqlalchemy import select
from sqlalchemy.sql.selectable import ScalarSelect

from core.adapters.images import shrink_checked
from core.rules.photo_search import QueryEmbedder
from core.settings import Settings
from db.engine import Database, in_read_only_transaction
from db.models import ProductImage
from db.models.catalog import EMBEDDING_DIMENSIONS
from db.services.catalog.errors import ProductNotFound
from db.services.catalog.images import MAX_IMAGES_PER_PRODUCT
from db.services.catalog.listing import SummaryRow
from db.services.catalog.similar_sql import (
    CONFIGURE_SQL,
    DISTANCE,
    FOUND,
    PRODUCT_SQL,
    RESTORE_SQL,
    Query,
    exact_sql,
    nearest_sql,
)
from db.services.catalog.taxonomy import CategoryTree
from db.services.vector_search import OVERFETCH, Strategy, VectorTable, next_pass, scan_settings

# The statements a search ran, in order (see ``vector_search.SearchResult.path``).
Path = tuple[Strategy, ...]

PRODUCT_IMAGES = VectorTable(
    key=ProductImage.id,
    vector=ProductImage.embedding,
    group=ProductImage.product_id,
    metric="cosine",
    max_group_rows=MAX_IMAGES_PER_PRODUCT,
)
# The query photo goes to the worker at most this size: twice the model's 224 px input, so its
# own resize still averages pixels, and a few tens of KB in the task queue instead of megabytes.
QUERY_IMAGE_SIDE = 448


@dataclass(frozen=True)
class SimilarityFilters:
    category: str | None = None
    max_price: int | None = None
    in_stock: bool | None = None


@dataclass(frozen=True)
class SimilarProduct:
    summary: SummaryRow
    # Cosine similarity of the query and the product's nearest image (1 - cosine distance).
    score: float


async def similar_products(
    database: Database, tree: CategoryTree, product_id: UUID, filters: SimilarityFilters, *, limit: int
) -> tuple[list[SimilarProduct], Path | None]:
    """Listed products that look like ``product_id`` (never itself), most similar first, and the
    statements run (``("nearest",)``, ``("nearest", "exact")``, ...).

    The query is the product's first image with an embedding (lowest position); a product with
    none yet has no similar products (empty list, and no statements).

    Raises:
        InvalidInput: an unknown category (422).
        ProductNotFound: no such listed product (404).
    """
    shape, values = _filters(tree, filters)

    async def search(conn: asyncpg.Connection) -> tuple[list[Record], Path | None] | None:
        return await in_read_only_transaction(
            conn, lambda: _product_search(conn, product_id, shape, values, limit), RESTORE_SQL
        )

    found = await database.read(search, replica=True)
    if found is None:
        raise ProductNotFound()
    return _products(found[0]), found[1]


async def search_by_photo(
    database: Database,
    tree: CategoryTree,
    embedder: QueryEmbedder,
    settings: Settings,
    data: bytes,
    filters: SimilarityFilters,
    *,
    limit: int,
) -> list[SimilarProduct]:
    """Listed products that look like the photo ``data``, most similar first.

    The photo is checked as every upload is, shrunk, and embedded by an inference worker.

    Raises:
        InvalidInput: an unknown category (422).
        ImageTooLarge (413), UnsupportedImage (415), UnusableImage (422): the photo is refused
            (UnusableImage also when the worker cannot decode it).
        ServiceUnavailable: no inference worker answered in time (503).
    """
    # Filters first: a request that cannot be answered costs no decoding and no inference.
    shape, values = _filters(tree, filters)
    query_image = await anyio.to_thread.run_sync(partial(_query_image, data, settings))
    vector = await embedder.embed(query_image)
    if len(vector) != EMBEDDING_DIMENSIONS:
        raise RuntimeError(f"the worker returned a {len(vector)}-d vector")
    text = json.dumps([float(v) for v in vector])  # pgvector's text form, as fit search sends it

    async def search(conn: asyncpg.Connection) -> tuple[list[Record], Path]:
        async def passes() -> tuple[list[Record], Path]:
            await conn.execute(CONFIGURE_SQL, *scan_settings(OVERFETCH * limit))
            return await _passes(conn, "vector", text, shape, values, limit)

        return await in_read_only_transaction(conn, passes, RESTORE_SQL)

    found, _ = await database.read(search, replica=True)
    return _products(found)


def _filters(tree: CategoryTree, filters: SimilarityFilters) -> tuple[tuple[str, ...], list[Any]]:
    """The filters' names (``listing_sql.CONDITIONS``) and values, in their order.

    Raises:
        InvalidInput: an unknown category (422).
    """
    names: list[str] = []
    values: list[Any] = []
    if filters.category:
        ids = tree.subtree_ids(filters.category)
        names.append("category" if len(ids) == 1 else "categories")
        values.append(ids[0] if len(ids) == 1 else list(ids))
    if filters.max_price is not None:
        names.append("max_price")
        values.append(filters.max_price)
    if filters.in_stock is not None:
        names.append("in_stock" if filters.in_stock else "out_of_stock")
    return tuple(names), values


async def _product_search(
    conn: asyncpg.Connection, product_id: UUID, shape: tuple[str, ...], values: list[Any], limit: int
) -> tuple[list[Record], Path | None] | None:
    """None: no such listed product."""
    found = await conn.fetchrow(PRODUCT_SQL, product_id, *scan_settings(OVERFETCH * limit))
    if found is None:
        return None
    if not found["has_embedding"]:
        return [], None
    return await _passes(conn, "product", product_id, shape, values, limit)


async def _passes(
    conn: asyncpg.Connection, query: Query, value: Any, shape: tuple[str, ...], values: list[Any], limit: int
) -> tuple[list[Record], Path]:
    """The nearest rows, then a wider pass or the exact statement while the page is short (the
    passes of ``vector_search.nearest``, whose docstring says why); the first pass's settings are
    made by the caller."""
    path: list[Strategy] = ["nearest"]
    rows = OVERFETCH * limit
    while True:
        found = await conn.fetch(nearest_sql(query, shape), value, *values, rows, limit)
        step = next_pass(
            path, len(found), int(found[0][FOUND]) if found else 0, rows, limit, MAX_IMAGES_PER_PRODUCT
        )
        if step is None:
            return found, tuple(path)
        strategy, rows = step
        path.append(strategy)
        if strategy == "exact":
            return await conn.fetch(exact_sql(query, shape), value, *values, limit), tuple(path)
        await conn.execute(CONFIGURE_SQL, *scan_settings(rows))


def _products(rows: list[Record]) -> list[SimilarProduct]:
    return [SimilarProduct(summary=SummaryRow(*row[:DISTANCE]), score=1.0 - row[DISTANCE]) for row in rows]


def _query_image(data: bytes, settings: Settings) -> bytes:
    """The checked photo, shrunk for the worker from one decode (runs in a thread)."""
    return shrink_checked(
        data,
        QUERY_IMAGE_SIDE,
        max_bytes=settings.max_image_bytes,
        max_pixels=settings.max_image_pixels,
        min_side=settings.min_image_side,
    )


def first_embedding(product_id: UUID) -> ScalarSelect[Any]:
    """The product's first image embedding (lowest position), as a scalar subquery: the query of
    ``similar_sql`` stated for ``vector_search``."""
    return (
        select(ProductImage.embedding)
        .where(
            ProductImage.product_id == product_id,
            ProductImage.embedding_status == "ready",
            ProductImage.embedding.is_not(None),
        )
        .order_by(ProductImage.position, ProductImage.id)
        .limit(1)
        .scalar_subquery()
    )
