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
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import InvalidInput
from core.rules.fit import FITS, fit_query_vector, score_size
from db.pagination import decode_cursor, encode_cursor
from db.services.catalog.listing import SummaryRow, summary_rows
from db.services.catalog.taxonomy import CategoryTree
from db.services.fit.profile import BodyProfile, body_profile_for_fit

# Fit profiles scored per request; also the HNSW candidate list size (hnsw.ef_search).
PROFILE_CANDIDATES = 200
# Below this many profiles (the planner's estimate) the nearest are found by an exact scan.
EXACT_PROFILES = 20_000
# Profiles walked per database round trip while filling a page.
WALK = 40
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


_NEAREST_PROFILES = """
SELECT id, garment, ranges FROM fit_profiles
ORDER BY {distance}
LIMIT :n
"""
# The index serves "fit_vector <#> q"; adding zero keeps the order but makes the scan exact.
_INDEXED = "fit_vector <#> CAST(:q AS vector)"
_EXACT = "(fit_vector <#> CAST(:q AS vector)) + 0"
_ESTIMATED_PROFILES = text("SELECT reltuples FROM pg_class WHERE oid = 'fit_profiles'::regclass")
# The chart row's size is on sale: a variant of that size has stock.
_IN_STOCK = (
    "EXISTS (SELECT 1 FROM variants v"
    " WHERE v.product_id = {r}.product_id AND v.size = {r}.size AND v.stock > 0)"
)
_PRODUCTS = """
SELECT w.ord, x.product_id, x.size
FROM unnest(CAST(:walk AS uuid[]), CAST(:after AS uuid[])) WITH ORDINALITY AS w(profile_id, after_id, ord)
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
        AND r2.fit_profile_id = ANY((CAST(:ranked AS uuid[]))[1:(:offset + w.ord - 1)])
        AND {in_stock_2}
    )
  ORDER BY r.product_id
  LIMIT :take
) AS x
ORDER BY w.ord, x.product_id
LIMIT :take
"""
# With a category filter each (profile, category) pair is read in product order from its own
# index range, and the pairs of one profile are merged by the outer ORDER BY.
_PER_CATEGORY = "CROSS JOIN unnest(CAST(:categories AS uuid[])) AS c(category_id)"


async def products_that_fit(
    session: AsyncSession,
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
    body = await body_profile_for_fit(session, user_id)
    category_ids = tree.subtree_ids(category) if category else None
    garments = None if category_ids is None else {tree.garment_of(c) for c in category_ids}
    ranked = await _ranked_profiles(session, body, garments)

    start, after_id = _resume(ranked, cursor) if cursor else (0, _NO_PRODUCT)
    found = await _fitting_products(session, ranked, start, after_id, category_ids, limit)

    page = found[:limit]
    summaries = {row.id: row for row in await summary_rows(session, [pid for _, pid, _ in page])}
    items = [FitMatch(summaries[pid], size, r.score) for r, pid, size in page if pid in summaries]
    next_cursor = None
    if len(found) > limit:
        last, last_id, _ = page[-1]
        next_cursor = encode_cursor(
            ["fit", last.score, last.centre_distance, str(last.profile_id), str(last_id)]
        )
    return FitPage(items=items, next_cursor=next_cursor, measurement_id=body.measurement_id)


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
    session: AsyncSession,
    ranked: list[_Ranked],
    start: int,
    after_id: UUID,
    category_ids: list[UUID] | None,
    limit: int,
) -> list[tuple[_Ranked, UUID, str]]:
    """Up to ``limit + 1`` (profile, product id, size) in page order, from ``ranked[start]`` on,
    ``WALK`` profiles per round trip; one more than the page tells that another page follows."""
    sql = text(
        _PRODUCTS.format(
            categories=_PER_CATEGORY if category_ids is not None else "",
            category="AND r.category_id = c.category_id" if category_ids is not None else "",
            in_stock=_IN_STOCK.format(r="r"),
            in_stock_2=_IN_STOCK.format(r="r2"),
        )
    )
    found: list[tuple[_Ranked, UUID, str]] = []
    seen: set[UUID] = set()
    while start < len(ranked) and len(found) <= limit:
        walk = ranked[start : start + WALK]
        params: dict[str, Any] = {
            "walk": [r.profile_id for r in walk],
            "after": [after_id] + [_NO_PRODUCT] * (len(walk) - 1),
            "ranked": [r.profile_id for r in ranked],
            "offset": start,
            "take": limit + 1 - len(found),
        }
        if category_ids is not None:
            params["categories"] = category_ids
        for row in await _walk_products(session, sql, params):
            if row.product_id not in seen:  # two sizes of one product with equal ranges
                seen.add(row.product_id)
                found.append((walk[row.ord - 1], row.product_id, row.size))
        start, after_id = start + len(walk), _NO_PRODUCT
    return found


async def _walk_products(session: AsyncSession, sql: Any, params: dict[str, Any]) -> list[Any]:
    """Run the walk with each profile's products read in index order.

    The filters after the index (listed, in stock in the size, category) are correlated, so the
    planner expects about one row per profile and prefers a bitmap scan of every row of the
    profile plus a sort (300 ms for a profile behind 10k products) over reading the index in
    order until the page is full (1.5 ms). Bitmap scans are off for this statement only.
    """
    await session.execute(text("SET LOCAL enable_bitmapscan = off"))
    try:
        return list(await session.execute(sql, params))
    finally:
        await session.execute(text("SET LOCAL enable_bitmapscan = on"))


async def _ranked_profiles(
    session: AsyncSession, body: BodyProfile, garments: set[str | None] | None
) -> list[_Ranked]:
    """The fit profiles near the body that fit it, best first."""
    estimated = await session.scalar(_ESTIMATED_PROFILES)
    exact = estimated is None or estimated < EXACT_PROFILES  # -1: never analysed, i.e. new and small
    if not exact:
        # SET takes no bind parameters; the value is a constant of this module.
        await session.execute(text(f"SET LOCAL hnsw.ef_search = {PROFILE_CANDIDATES}"))
    rows = await session.execute(
        text(_NEAREST_PROFILES.format(distance=_EXACT if exact else _INDEXED)),
        {"q": json.dumps(fit_query_vector(body.measurements, body.confidence)), "n": PROFILE_CANDIDATES},
    )
    ranked = []
    for row in rows:
        if garments is not None and row.garment not in garments:
            continue
        fit = score_size("", row.ranges, body.measurements, body.confidence, row.garment)
        if fit.fit_score >= FITS:
            ranked.append(_Ranked(row.id, fit.fit_score, round(fit.centre_distance, 6)))
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
