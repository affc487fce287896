"""Products that fit me: listed products with a size in stock whose chart row fits the caller.

Size-chart rows are grouped into fit profiles (``db.models.FitProfile``): every distinct row
(ranges + garment kind) once, as a fit vector whose inner product with the body profile is the
body's weighted distance to the centre of the ranges. Real catalogs share charts (a brand's
standard table behind thousands of products), so ranking profiles rather than rows keeps the
vector index small and its neighbours distinct.

1. The ``PROFILE_CANDIDATES`` profiles nearest the body are scored exactly
   (``core.rules.fit.score_size``) and those that fit (score >= ``core.rules.fit.FITS``) are ranked: best
   score first, then nearest to the centre of the ranges, then id. Up to ``EXACT_PROFILES``
   profiles (a catalog's distinct size rows rarely reach it) they are found by an exact scan,
   beyond it through the HNSW index over ``fit_vector`` (no filter applies at this step, so
   the index returns as many as asked). The exact scan is not a fallback for speed only: HNSW
   candidate lists fill up with near-identical vectors (charts a few millimetres apart, and
   index entries of rows not yet vacuumed), which can crowd out the live profile that fits.
2. Products are walked profile by profile in that order, each profile's products in id order
   (index ``(fit_profile_id, product_id)``): listed, in stock in that size, in the category
   filter, and not already shown under a better-ranked size of the same product.

The cursor is the last item's place in that order (its profile's rank key and the product id),
so pages neither repeat nor skip while the catalog changes. Each product appears once, with
the best-fitting of its sizes among the candidates.

Statements (``$n`` parameters, on the driver's connection from the pool: ``Database.read``, on
the replica when it may serve the request) run in one read-only transaction, whose settings the
first statement makes (``BODY_SQL``): the body profile with the planner's estimate of the
profiles, the nearest profiles (``NEAREST_SQL``), then one walk per ``WALK`` profiles with the
products' summaries joined (``WALK_SQL``). A first page: BEGIN, three statements, COMMIT.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from core.errors import InvalidInput
from core.rules.fit import FITS, fit_query_vector, score_size
from db.engine import Database, in_read_only_transaction
from db.pagination import decode_cursor, encode_cursor
from db.services.catalog.listing import SummaryRow
from db.services.catalog.taxonomy import CategoryTree
from db.services.fit.errors import BodyProfileRequired

# Fit profiles scored per request; also the HNSW candidate list size (hnsw.ef_search).
PROFILE_CANDIDATES = 200
# Below this many profiles (the planner's estimate) the nearest are found by an exact scan.
EXACT_PROFILES = 20_000
# Profiles walked per database round trip while filling a page.
WALK = 40
EF_SEARCH = str(PROFILE_CANDIDATES)
_NO_PRODUCT = UUID(int=0)


@dataclass(frozen=True)
class FitMatch:
    product: SummaryRow
    size: str
    fit_score: float


@dataclass(frozen=True)
class FitPage:
    items: list[FitMatch]
    next_cursor: str | None
    measurement_id: UUID


@dataclass(frozen=True)
class _Ranked:
    profile_id: UUID
    score: float
    centre_distance: float

    @property
    def key(self) -> tuple[float, float, str]:
        return (-self.score, self.centre_distance, str(self.profile_id))


# $1 the caller, $2 ``EF_SEARCH``. One row always: the caller's latest ready measurement (NULL
# columns without one; the latest as db.services.measurements.queries.body_profile picks it), the
# planner's estimate of the fit profiles (-1: never analysed), and the transaction's settings for
# the statements that follow. The walk's filters after the index (listed, in stock in the size,
# category) are correlated, so the planner expects about one row per profile and prefers a bitmap
# scan of every row of the profile plus a sort (300 ms for a profile behind 10k products) over
# reading the index in order until the page is full (1.5 ms): bitmap scans are off. The HNSW scan
# returns at most hnsw.ef_search rows: it is the number of candidates asked for.
BODY_SQL = """
SELECT m.id AS measurement_id, m.measurements, m.confidence,
       (SELECT reltuples FROM pg_class WHERE oid = 'fit_profiles'::regclass) AS estimated_profiles,
       set_config('enable_bitmapscan', 'off', true) AS enable_bitmapscan,
       set_config('hnsw.ef_search', $2, true) AS ef_search
FROM (SELECT 1) one
LEFT JOIN (
    SELECT m.id, m.measurements, m.confidence FROM measurements m
    WHERE m.user_id = $1 AND m.status = 'ready'
    ORDER BY m.created_at DESC, m.id DESC LIMIT 1
) m ON true
"""
# What a transaction the search did not open itself keeps after it (the settings' defaults).
_RESTORE = "SET LOCAL enable_bitmapscan = DEFAULT; SET LOCAL hnsw.ef_search = DEFAULT"
_NEAREST_PROFILES = """
SELECT id, garment, ranges FROM fit_profiles
ORDER BY {distance}
LIMIT $2
"""
# $1 the query vector (text), $2 how many. Keyed by "exact": the index serves
# "fit_vector <#> q"; adding zero keeps the order but makes the scan exact.
NEAREST_SQL = {
    True: _NEAREST_PROFILES.format(distance="(fit_vector <#> CAST($1 AS vector)) + 0"),
    False: _NEAREST_PROFILES.format(distance="fit_vector <#> CAST($1 AS vector)"),
}
# The chart row's size is on sale: a variant of that size has stock.
_IN_STOCK = (
    "EXISTS (SELECT 1 FROM variants v"
    " WHERE v.product_id = {r}.product_id AND v.size = {r}.size AND v.stock > 0)"
)
_PRODUCTS = """
SELECT w.ord, x.product_id, x.size
FROM unnest(CAST($1 AS uuid[]), CAST($2 AS uuid[])) WITH ORDINALITY AS w(profile_id, after_id, ord)
{categories}
CROSS JOIN LATERAL (
  SELECT r.product_id, r.size
  FROM size_chart_rows r
  JOIN products p ON p.id = r.product_id
  WHERE r.fit_profile_id = w.profile_id AND r.product_id > w.after_id {category}
    AND p.is_listed AND p.in_stock
    AND {in_stock}
    AND NOT EXISTS (
      SELECT 1 FROM size_chart_rows r2
      WHERE r2.product_id = r.product_id
        AND r2.fit_profile_id = ANY((CAST($3 AS uuid[]))[1:($4 + w.ord - 1)])
        AND {in_stock_2}
    )
  ORDER BY r.product_id
  LIMIT $5
) AS x
ORDER BY w.ord, x.product_id
LIMIT $5
"""
# With a category filter each (profile, category) pair is read in product order from its own
# index range, and the pairs of one profile are merged by the outer ORDER BY.
_PER_CATEGORY = "CROSS JOIN unnest(CAST($6 AS uuid[])) AS c(category_id)"
# The walk with each product's summary (SummaryRow's columns, in its order, from the 4th on).
_WALK = """
SELECT f.ord, f.product_id, f.size,
       p.id, p.title, p.slug, p.min_price, p.currency, p.vendor_id, ve.name AS vendor_name,
       p.category_id, b.name AS brand, p.thumbnail_key, p.in_stock
FROM ({products}) AS f
JOIN products p ON p.id = f.product_id
JOIN vendors ve ON ve.id = p.vendor_id
LEFT JOIN brands b ON b.id = p.brand_id
ORDER BY f.ord, f.product_id
"""
# $1 the walked profiles, $2 the product id to continue after in each, $3 every ranked profile,
# $4 the first walked profile's index among them, $5 how many rows at most, $6 the categories.
# Keyed by "with a category filter".
WALK_SQL = {
    filtered: _WALK.format(
        products=_PRODUCTS.format(
            categories=_PER_CATEGORY if filtered else "",
            category="AND r.category_id = c.category_id" if filtered else "",
            in_stock=_IN_STOCK.format(r="r"),
            in_stock_2=_IN_STOCK.format(r="r2"),
        )
    )
    for filtered in (False, True)
}
_SUMMARY = slice(3, 14)


async def products_that_fit(
    database: Database,
    tree: CategoryTree,
    user_id: UUID,
    *,
    category: str | None,
    limit: int,
    cursor: str | None,
) -> FitPage:
    """A page of products with a size that fits the user's body profile, best fit first.

    Raises:
        BodyProfileRequired: the user has no ready measurement (409).
        InvalidInput: an unknown category or a cursor from another query (422).
    """

    async def search(conn: asyncpg.Connection) -> FitPage | None:
        return await _search(conn, tree, user_id, category=category, limit=limit, cursor=cursor)

    page = await database.read(search, replica=True)
    if page is None and database.replica is not None:
        # The replica may not have replayed yet a measurement a worker has just finished (workers'
        # writes leave no fence): a refusal is confirmed on the primary.
        page = await database.read(search)
    if page is None:
        raise BodyProfileRequired
    return page


async def _search(
    conn: asyncpg.Connection,
    tree: CategoryTree,
    user_id: UUID,
    *,
    category: str | None,
    limit: int,
    cursor: str | None,
) -> FitPage | None:
    """The page in a read-only transaction of its own (None: no ready measurement)."""
    return await in_read_only_transaction(
        conn, lambda: _page(conn, tree, user_id, category=category, limit=limit, cursor=cursor), _RESTORE
    )


async def _page(
    conn: asyncpg.Connection,
    tree: CategoryTree,
    user_id: UUID,
    *,
    category: str | None,
    limit: int,
    cursor: str | None,
) -> FitPage | None:
    body = await conn.fetchrow(BODY_SQL, user_id, EF_SEARCH)
    if body is None or body["measurement_id"] is None:
        return None
    category_ids = tree.subtree_ids(category) if category else None
    garments = None if category_ids is None else {tree.garment_of(c) for c in category_ids}
    ranked = await _ranked_profiles(conn, body, garments)

    start, after_id = _resume(ranked, cursor) if cursor else (0, _NO_PRODUCT)
    found = await _fitting_products(conn, ranked, start, after_id, category_ids, limit)

    page = found[:limit]
    items = [FitMatch(SummaryRow(*row[_SUMMARY]), row["size"], r.score) for r, row in page]
    next_cursor = None
    if len(found) > limit:
        last, last_row = page[-1]
        next_cursor = encode_cursor(
            ["fit", last.score, last.centre_distance, str(last.profile_id), str(last_row["product_id"])]
        )
    return FitPage(items=items, next_cursor=next_cursor, measurement_id=body["measurement_id"])


def _resume(ranked: list[_Ranked], cursor: str) -> tuple[int, UUID]:
    """Where a page after ``cursor`` starts: the index of its profile in ``ranked`` and the product
    id to continue after.

    Raises:
        InvalidInput: a cursor from another query (422).
    """
    cursor_key, after_id = _decode(cursor)
    start = next((i for i, r in enumerate(ranked) if r.key >= cursor_key), len(ranked))
    if start < len(ranked) and ranked[start].key != cursor_key:
        after_id = _NO_PRODUCT  # the cursor's profile is gone: continue with the next one
    return start, after_id


async def _fitting_products(
    conn: asyncpg.Connection,
    ranked: list[_Ranked],
    start: int,
    after_id: UUID,
    category_ids: list[UUID] | None,
    limit: int,
) -> list[tuple[_Ranked, asyncpg.Record]]:
    """Up to ``limit + 1`` (profile, walk row) in page order, from ``ranked[start]`` on, ``WALK``
    profiles per round trip; one more than the page tells that another page follows."""
    sql = WALK_SQL[category_ids is not None]
    found: list[tuple[_Ranked, asyncpg.Record]] = []
    seen: set[UUID] = set()
    ids = [r.profile_id for r in ranked]
    while start < len(ranked) and len(found) <= limit:
        walk = ranked[start : start + WALK]
        args: list[Any] = [
            [r.profile_id for r in walk],
            [after_id] + [_NO_PRODUCT] * (len(walk) - 1),
            ids,
            start,
            limit + 1 - len(found),
        ]
        if category_ids is not None:
            args.append(category_ids)
        for row in await conn.fetch(sql, *args):
            if row["product_id"] not in seen:  # two sizes of one product with equal ranges
                seen.add(row["product_id"])
                found.append((walk[row["ord"] - 1], row))
        start, after_id = start + len(walk), _NO_PRODUCT
    return found


async def _ranked_profiles(
    conn: asyncpg.Connection, body: asyncpg.Record, garments: set[str | None] | None
) -> list[_Ranked]:
    """The fit profiles near the body that fit it, best first."""
    estimated = body["estimated_profiles"]
    exact = estimated is None or estimated < EXACT_PROFILES  # -1: never analysed, i.e. new and small
    measurements, confidence = dict(body["measurements"] or {}), dict(body["confidence"] or {})
    rows = await conn.fetch(
        NEAREST_SQL[exact], json.dumps(fit_query_vector(measurements, confidence)), PROFILE_CANDIDATES
    )
    return ranked_fits(rows, measurements, confidence, garments)


def ranked_fits(
    rows: Sequence[Any],
    measurements: dict[str, float],
    confidence: dict[str, float],
    garments: set[str | None] | None = None,
) -> list[_Ranked]:
    """The profiles (``NEAREST_SQL`` rows) that fit the body, best first."""
    ranked = []
    for row in rows:
        if garments is not None and row["garment"] not in garments:
            continue
        fit = score_size("", row["ranges"], measurements, confidence, row["garment"])
        if fit.fit_score >= FITS:
            ranked.append(_Ranked(row["id"], fit.fit_score, round(fit.centre_distance, 6)))
    ranked.sort(key=lambda r: r.key)
    return ranked


def _decode(cursor: str) -> tuple[tuple[float, float, str], UUID]:
    values = decode_cursor(cursor)
    invalid = InvalidInput(
        "The cursor is not valid.", errors=[{"field": "cursor", "message": "invalid cursor"}]
    )
    if values[0] != "fit" or len(values) != 5:
        raise invalid
    try:
        profile_id, product_id = UUID(str(values[3])), UUID(str(values[4]))
        return (-float(values[1]), float(values[2]), str(profile_id)), product_id
    except (TypeError, ValueError):
        raise invalid from None
