"""Recompute the listing columns of products from their variants, vendor, brand and category."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from core.page_versions import touch_product, touch_shared

# One statement for one product or a whole store. The search document weighs the title (A) over
# brand and category names (B) over the description (C).
_REFRESH = """
UPDATE products AS p SET
    min_price = COALESCE(agg.min_price, p.price_amount),
    in_stock = COALESCE(agg.in_stock, false),
    sizes = COALESCE(agg.sizes, '{{}}'),
    colors = COALESCE(agg.colors, '{{}}'),
    is_listed = (p.status = 'active' AND ve.status = 'active'),
    search_vector =
        setweight(to_tsvector('english', p.title), 'A')
        || setweight(to_tsvector('english', COALESCE(b.name, '') || ' ' || c.name), 'B')
        || setweight(to_tsvector('english', p.description), 'C'),
    updated_at = now()
FROM products AS p2
JOIN vendors AS ve ON ve.id = p2.vendor_id
JOIN categories AS c ON c.id = p2.category_id
LEFT JOIN brands AS b ON b.id = p2.brand_id
LEFT JOIN LATERAL (
    SELECT min(COALESCE(v.price_amount, p2.price_amount)) AS min_price,
           bool_or(v.stock > 0) AS in_stock,
           array_agg(DISTINCT v.size) AS sizes,
           array_agg(DISTINCT v.color) AS colors
    FROM variants AS v WHERE v.product_id = p2.id
) AS agg ON true
WHERE p.id = p2.id AND {where}
"""


async def refresh_listing(
    session: AsyncSession,
    *,
    product_id: UUID | None = None,
    vendor_id: UUID | None = None,
    vendor_ids: list[UUID] | None = None,
) -> None:
    """Bring ``min_price``, ``in_stock``, ``sizes``, ``colors``, ``is_listed`` and
    ``search_vector`` up to date for one product, every product of a store, or of many stores."""
    if vendor_ids is not None:
        await session.execute(text(_REFRESH.format(where="p2.vendor_id = ANY(:keys)")), {"keys": vendor_ids})
        touch_shared()
    elif product_id is not None:
        await session.execute(text(_REFRESH.format(where="p2.id = :key")), {"key": product_id})
        touch_product(product_id)
    elif vendor_id is not None:
        await session.execute(text(_REFRESH.format(where="p2.vendor_id = :key")), {"key": vendor_id})
        # Every page of the store changes (its status or name): the counter they all share.
        touch_shared()
    else:
        raise ValueError("refresh_listing needs a product or a vendor")
