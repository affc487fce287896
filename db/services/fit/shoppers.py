"""Shoppers like me: what the shoppers with body shapes like the caller's kept.

Shoppers like the caller are those in the caller's body-shape cell or a neighbouring one
(``core.rules.shape_cells``). What they kept, the sizes in their orders that were paid for and
not cancelled, refunded or expired, is counted ahead of time per product (and per brand within
a category) and cell (``db.services.fit.shopper_sizes``), so this reads a few rows in one
statement (``COUNTS_SQL``, on the driver's connection like the rest of size advice): the
product's counts, or when fewer than ``core.rules.fit.SIMILAR_SHOPPERS_MIN`` shoppers bought
it, the brand's in the same category. The caller's own purchases are taken out. Only the
aggregate leaves this module (``core.rules.fit.summarise_counts``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal
from uuid import UUID

from core.rules.fit import SimilarShoppers, summarise_counts
from core.rules.orders import SOLD
from core.rules.shape_cells import nearby_cells, shape_cell
from db.engine import Database
from db.services.fit.shopper_sizes import brand_scope, product_scope

# (kind, scope, size, shoppers): the totals and per-size counts of the scopes ($1) over the cells
# ($2), and the caller's ($4) own kept (scope, size) pairs when the counts include the caller
# ($3 the kept statuses; $5, $6, $7 the product, its brand and category).
COUNTS_SQL = """
SELECT 'total' AS kind, scope, '' AS size, sum(shoppers)::int AS n FROM shopper_totals
WHERE scope = ANY($1::text[]) AND cell = ANY($2::bigint[]) GROUP BY scope
UNION ALL
SELECT 'size', scope, size, sum(shoppers)::int FROM shopper_sizes
WHERE scope = ANY($1::text[]) AND cell = ANY($2::bigint[]) GROUP BY scope, size
UNION ALL
SELECT DISTINCT 'own', s.scope, s.size, 1 FROM (
    SELECT unnest(ARRAY['p:' || ol.product_id, 'b:' || p.brand_id || ':' || p.category_id]) AS scope,
           ol.size
    FROM shopper_cells sc
    JOIN orders o ON o.user_id = sc.user_id AND o.status = ANY($3::text[])
    JOIN order_lines ol ON ol.order_id = o.id
    JOIN products p ON p.id = ol.product_id
    WHERE sc.user_id = $4 AND sc.cell = ANY($2::bigint[])
      AND (ol.product_id = $5 OR (p.brand_id = $6 AND p.category_id = $7))
) s
WHERE s.scope = ANY($1::text[])
"""
_SOLD = sorted(SOLD)


def _summary(
    rows: list[tuple[str, str, str, int]], scope_key: str, scope: Literal["product", "brand"]
) -> SimilarShoppers | None:
    total = 0
    sizes: dict[str, int] = {}
    own: set[str] = set()
    for kind, key, size, n in rows:
        if key != scope_key:
            continue
        if kind == "total":
            total = n
        elif kind == "size":
            sizes[size] = n
        else:
            own.add(size)
    if own:  # the caller counted once in the total and once per size they kept
        total -= 1
        for size in own:
            sizes[size] = sizes.get(size, 0) - 1
    return summarise_counts(total, sizes, scope)


async def similar_shoppers(
    database: Database,
    *,
    user_id: UUID,
    measurements: Mapping[str, float],
    product_id: UUID,
    brand_id: UUID | None,
    category_id: UUID,
) -> SimilarShoppers | None:
    """The sizes kept by shoppers shaped like the caller, or None when too few to show."""
    cell = shape_cell(measurements)
    if cell is None:
        return None
    product_key = product_scope(product_id)
    brand_key = brand_scope(brand_id, category_id) if brand_id is not None else None
    scopes = [key for key in (product_key, brand_key) if key is not None]
    found_rows = await database.fetch(
        COUNTS_SQL,
        scopes,
        nearby_cells(cell),
        _SOLD,
        user_id,
        product_id,
        brand_id,
        category_id,
        replica=True,
    )
    rows = [(r["kind"], r["scope"], r["size"], r["n"]) for r in found_rows]
    found = _summary(rows, product_key, "product")
    if found is not None or brand_key is None:
        return found
    return _summary(rows, brand_key, "brand")
