"""Shoppers like me: what the shoppers with the nearest body shapes kept.

Neighbours are the ``NEIGHBOURS`` ready measurements of other shoppers nearest to the caller's
body-shape embedding (Euclidean, HNSW ``ix_measurements_embedding_hnsw``). What they kept is
the sizes in their orders that were paid for and not cancelled, refunded or expired
(``core.rules.orders.SOLD``), of this product, or when fewer than ``core.rules.fit.SIMILAR_SHOPPERS_MIN``
of them bought it, of products of the same brand in the same category. Only the aggregate
leaves this module (``core.rules.fit.summarise_shoppers``).
"""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from core.rules.fit import SimilarShoppers, summarise_shoppers
from core.rules.orders import SOLD

NEIGHBOURS = 200

_NEIGHBOURS_KEPT = """
WITH neighbours AS (
    SELECT DISTINCT user_id FROM (
        SELECT m.user_id FROM measurements m
        WHERE m.status = 'ready' AND m.user_id <> :me
        ORDER BY m.embedding <-> CAST(:embedding AS vector)
        LIMIT :k
    ) nearest
)
SELECT DISTINCT o.user_id, ol.size
FROM neighbours n
JOIN orders o ON o.user_id = n.user_id AND o.status = ANY(:sold)
JOIN order_lines ol ON ol.order_id = o.id
"""
_PRODUCT = _NEIGHBOURS_KEPT + "WHERE ol.product_id = :product_id"
_BRAND = (
    _NEIGHBOURS_KEPT
    + "JOIN products p ON p.id = ol.product_id WHERE p.brand_id = :brand_id AND p.category_id = :category_id"
)


async def similar_shoppers(
    session: AsyncSession,
    *,
    user_id: UUID,
    embedding: list[float] | None,
    product_id: UUID,
    brand_id: UUID | None,
    category_id: UUID,
) -> SimilarShoppers | None:
    """The sizes kept by shoppers shaped like the caller, or None when too few to show."""
    if embedding is None:
        return None
    params = {"me": user_id, "embedding": str(embedding), "k": NEIGHBOURS, "sold": sorted(SOLD)}
    # An HNSW scan returns at most ef_search rows (40 by default) before the filter drops the
    # caller's own measurements: widen it past the neighbours wanted, for this transaction only.
    ef = max(NEIGHBOURS + 20, 40)
    await session.execute(text("SELECT set_config('hnsw.ef_search', :ef, true)"), {"ef": str(ef)})
    rows = await session.execute(text(_PRODUCT), {**params, "product_id": product_id})
    found = summarise_shoppers([(str(u), size) for u, size in rows], "product")
    if found is not None or brand_id is None:
        return found
    rows = await session.execute(text(_BRAND), {**params, "brand_id": brand_id, "category_id": category_id})
    return summarise_shoppers([(str(u), size) for u, size in rows], "brand")
