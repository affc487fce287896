"""Size advice for one product: the caller's body profile against the product's size chart.

A hot read (a shopper asks it on every product page they open), so it runs on the driver's
connection straight from the pool, like the product page (``Database.fetch_row``): one statement
for the product, the caller's latest ready measurement and the size chart (``ADVICE_SQL``), one
for what shoppers like the caller kept (``db.services.fit.shoppers.COUNTS_SQL``).
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from core.rules.fit import FitAdvice, advise, with_shoppers
from db.engine import Database
from db.services.catalog.errors import ProductNotFound
from db.services.catalog.taxonomy import CategoryTree
from db.services.fit.errors import BodyProfileRequired, NoSizeChart
from db.services.fit.shoppers import similar_shoppers

# $1 the product, $2 the caller. One row always: NULL product columns when the product is not
# there (or not listed and not the caller's own), NULL measurement columns when the caller has no
# ready measurement (the latest, as db.services.measurements.queries.body_profile picks it).
ADVICE_SQL = """
SELECT p.id AS product_id, p.category_id, p.brand_id,
       m.id AS measurement_id, m.measurements, m.confidence,
       (SELECT coalesce(jsonb_agg(jsonb_build_array(s.size, s.ranges) ORDER BY s.position), '[]'::jsonb)
        FROM size_chart_rows s WHERE s.product_id = $1) AS chart
FROM (SELECT 1) one
LEFT JOIN (
    SELECT p.id, p.category_id, p.brand_id FROM products p JOIN vendors v ON v.id = p.vendor_id
    WHERE p.id = $1 AND (p.is_listed OR v.owner_id = $2)
) p ON true
LEFT JOIN (
    SELECT m.id, m.measurements, m.confidence FROM measurements m
    WHERE m.user_id = $2 AND m.status = 'ready'
    ORDER BY m.created_at DESC, m.id DESC LIMIT 1
) m ON true
"""


@dataclass(frozen=True)
class ProductFit:
    product_id: UUID
    measurement_id: UUID
    advice: FitAdvice


async def size_advice(database: Database, tree: CategoryTree, user_id: UUID, product_id: UUID) -> ProductFit:
    """Every size of the product's chart scored against the user's body profile, what shoppers
    shaped like them kept, and the size to recommend (or why none).

    Raises:
        ProductNotFound: no such product, or not listed and not the caller's own (404).
        BodyProfileRequired: the caller has no ready measurement (409).
        NoSizeChart: the product has no size chart (422).
    """
    row = await database.fetch_row(ADVICE_SQL, product_id, user_id, replica=True)
    refused = row is None or row["product_id"] is None or row["measurement_id"] is None
    if refused and database.replica is not None:
        # The replica may not have replayed yet a measurement a worker has just finished (workers'
        # writes leave no fence): a refusal is confirmed on the primary.
        row = await database.fetch_row(ADVICE_SQL, product_id, user_id)
    if row is None or row["product_id"] is None:
        raise ProductNotFound
    if row["measurement_id"] is None:
        raise BodyProfileRequired
    if not row["chart"]:
        raise NoSizeChart
    body = {key: float(value) for key, value in (row["measurements"] or {}).items()}
    confidence = {key: float(value) for key, value in (row["confidence"] or {}).items()}
    advice = advise(
        [(size, ranges) for size, ranges in row["chart"]],
        body,
        confidence,
        tree.garment_of(row["category_id"]),
    )
    shoppers = await similar_shoppers(
        database,
        user_id=user_id,
        measurements=body,
        product_id=product_id,
        brand_id=row["brand_id"],
        category_id=row["category_id"],
    )
    return ProductFit(
        product_id=product_id, measurement_id=row["measurement_id"], advice=with_shoppers(advice, shoppers)
    )
