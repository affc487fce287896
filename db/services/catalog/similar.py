"""Visual similarity: "more like this" for a product, and search by photo.

Both rank listed products by the cosine similarity of their images' embeddings to a query
vector (a product's best-matching image counts), under the listing's own filters. How the
search runs (HNSW with iterative scans, or exact) is ``db.services.vector_search``'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any
from uuid import UUID

import anyio
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import ScalarSelect, Subquery

from core.adapters.images import shrink_checked
from core.rules.photo_search import QueryEmbedder
from core.settings import Settings
from db.models import Product, ProductImage
from db.models.catalog import EMBEDDING_DIMENSIONS
from db.services.catalog.errors import ProductNotFound
from db.services.catalog.images import MAX_IMAGES_PER_PRODUCT
from db.services.catalog.listing import ListingFilters, SummaryRow, filter_conditions, summary_select
from db.services.catalog.taxonomy import CategoryTree
from db.services.vector_search import Query, SearchResult, VectorTable, nearest

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
    session: AsyncSession, tree: CategoryTree, product_id: UUID, filters: SimilarityFilters, *, limit: int
) -> tuple[list[SimilarProduct], SearchResult | None]:
    """Listed products that look like ``product_id`` (never itself), most similar first.

    The query is the product's first image with an embedding (lowest position); a product with
    none yet has no similar products (empty list, and no search result).

    Raises:
        InvalidInput: an unknown category (422).
        ProductNotFound: no such listed product (404).
    """
    conditions = await _conditions(session, tree, filters)
    query = first_embedding(product_id)
    found = (
        await session.execute(
            select(Product.id, query.is_not(None)).where(Product.id == product_id, Product.is_listed)
        )
    ).first()
    if found is None:
        raise ProductNotFound()
    if not found[1]:
        return [], None
    # The vector stays in the database: each search statement reads it with one index lookup.
    return await _search(session, query, [*conditions, Product.id != product_id], limit=limit)


async def search_by_photo(
    session: AsyncSession,
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
    conditions = await _conditions(session, tree, filters)
    query_image = await anyio.to_thread.run_sync(partial(_query_image, data, settings))
    vector = await embedder.embed(query_image)
    if len(vector) != EMBEDDING_DIMENSIONS:
        raise RuntimeError(f"the worker returned a {len(vector)}-d vector")
    products, _ = await _search(session, vector, conditions, limit=limit)
    return products


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
    """The product's first image embedding (lowest position), as a scalar subquery."""
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


async def _conditions(session: AsyncSession, tree: CategoryTree, filters: SimilarityFilters) -> list[Any]:
    as_listing = ListingFilters(
        category=filters.category, max_price=filters.max_price, in_stock=filters.in_stock
    )
    conditions = await filter_conditions(session, tree, as_listing)
    assert conditions is not None  # only a brand filter can rule everything out
    return conditions


def _with_summaries(ranked: Subquery) -> Select[Any]:
    return summary_select().join(ranked, ranked.c.group == Product.id)


async def _search(
    session: AsyncSession, vector: Query, conditions: list[Any], *, limit: int
) -> tuple[list[SimilarProduct], SearchResult]:
    matching = (
        select(ProductImage.id)
        .select_from(ProductImage)
        .join(Product, Product.id == ProductImage.product_id)
        .where(*conditions)
    )
    result = await nearest(
        session, PRODUCT_IMAGES, vector, matching=matching, limit=limit, project=_with_summaries
    )
    products = [
        SimilarProduct(summary=SummaryRow(*tuple(n.row)[:11]), score=1.0 - n.distance)
        for n in result.neighbours
    ]
    return products, result
