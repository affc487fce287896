"""Products that fit me: listed, in-stock products with a size whose chart row fits the caller.

Every size-chart row is stored as a fit vector (``core.fit``): the body profile's inner
product with it is the body's weighted distance to the centre of that size's ranges. The
search takes the rows nearest the body (HNSW over ``fit_vector``, or an exact scan when the
category filter is selective), keeps rows whose size is in stock, scores each exactly
(``core.fit.score_size``), keeps each product's best size if it fits (score >=
``core.fit.FITS``) and orders by score, then product id.

Pages: the cursor holds the last (score, product id) and how many items were served; the next
page re-runs the search with a candidate pool grown to cover the items already served, and
continues after the cursor. Candidates are the ``MAX_POOL`` rows nearest the body, so the
list covers the best few hundred matches, not every product that fits in some size.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import InvalidInput
from core.fit import FITS, fit_query_vector, score_size
from db.pagination import decode_cursor, encode_cursor
from db.services.catalog.listing import SummaryRow, summary_rows
from db.services.catalog.taxonomy import CategoryTree
from db.services.fit.profile import body_profile_for_fit

# Chart rows fetched per product wanted: a body is near two or three sizes of most products.
ROWS_PER_ITEM = 3
MAX_POOL = 900
# pgvector 0.6 filters HNSW results after the index scan, which yields at most hnsw.ef_search
# rows: a category holding a small share of the catalog leaves too few. Below this many listed
# products in the category an exact scan of their chart rows is cheap (a few thousand rows);
# above it the HNSW scan widens to MAX_EF_SEARCH, and an exact scan still follows if the
# widened scan came back short.
EXACT_BELOW_PRODUCTS = 3000
MAX_EF_SEARCH = 1000


@dataclass(frozen=True)
class _Plan:
    exact: bool
    ef_search: int


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


_CANDIDATES = """
SELECT r.product_id, r.size, r.ranges, p.category_id
FROM size_chart_rows r
JOIN products p ON p.id = r.product_id
WHERE p.is_listed AND p.in_stock {category}
  AND EXISTS (SELECT 1 FROM variants v WHERE v.product_id = r.product_id AND v.size = r.size AND v.stock > 0)
ORDER BY {distance}
LIMIT :pool
"""
# The index serves "fit_vector <#> q"; adding zero makes the same order an exact scan.
_INDEXED = "r.fit_vector <#> CAST(:q AS vector)"
_EXACT = "(r.fit_vector <#> CAST(:q AS vector)) + 0"

_COUNT_LISTED = """
SELECT count(*) FROM (
  SELECT 1 FROM products p WHERE p.is_listed AND p.in_stock {category} LIMIT :cap
) AS matching
"""


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
    profile = await body_profile_for_fit(session, user_id)
    after_score, after_id, served = _decode(cursor) if cursor else (math.inf, None, 0)
    category_ids = _category_ids(tree, category)
    category_sql = "AND p.category_id = ANY(:categories)" if category_ids is not None else ""
    params: dict[str, Any] = {
        "q": json.dumps(fit_query_vector(profile.measurements, profile.confidence)),
        "pool": min(MAX_POOL, ROWS_PER_ITEM * (served + limit + 1) + 30),
    }
    if category_ids is not None:
        params["categories"] = category_ids
    plan = await _plan(session, category_sql, params)
    rows = await _candidates(session, category_sql, params, plan)
    if not plan.exact and category_sql and len(rows) < params["pool"]:
        rows = await _candidates(session, category_sql, params, _Plan(exact=True, ef_search=0))

    best: dict[UUID, tuple[float, str]] = {}
    for row in rows:
        fit = score_size(
            row.size, row.ranges, profile.measurements, profile.confidence, tree.garment_of(row.category_id)
        )
        if fit.fit_score >= FITS and fit.fit_score > best.get(row.product_id, (-1.0, ""))[0]:
            best[row.product_id] = (fit.fit_score, row.size)
    ranked = sorted(best.items(), key=lambda item: (-item[1][0], item[0]))
    after = [
        (pid, score, size)
        for pid, (score, size) in ranked
        if score < after_score or (score == after_score and after_id is not None and pid > after_id)
    ]
    page = after[:limit]
    summaries = {row.id: row for row in await summary_rows(session, [pid for pid, _, _ in page])}
    items = [FitMatch(summaries[pid], size, score) for pid, score, size in page if pid in summaries]
    more = len(after) > limit or (len(rows) >= params["pool"] and params["pool"] < MAX_POOL)
    next_cursor = None
    if page and more:
        last_id, last_score, _ = page[-1]
        next_cursor = encode_cursor(["fit", last_score, str(last_id), served + len(page)])
    return FitPage(items=items, next_cursor=next_cursor, measurement_id=profile.measurement_id)


async def _plan(session: AsyncSession, category_sql: str, params: dict[str, Any]) -> _Plan:
    """Exact scan for a selective category, else HNSW wide enough for the rows wanted."""
    if category_sql:
        matching = await session.scalar(
            text(_COUNT_LISTED.format(category=category_sql)), {**params, "cap": EXACT_BELOW_PRODUCTS}
        )
        if int(matching or 0) < EXACT_BELOW_PRODUCTS:
            return _Plan(exact=True, ef_search=0)
        return _Plan(exact=False, ef_search=MAX_EF_SEARCH)
    return _Plan(exact=False, ef_search=max(40, min(MAX_EF_SEARCH, 2 * int(params["pool"]))))


async def _candidates(
    session: AsyncSession, category_sql: str, params: dict[str, Any], plan: _Plan
) -> list[Any]:
    if not plan.exact:
        # SET takes no bind parameters; the value is an int computed here.
        await session.execute(text(f"SET LOCAL hnsw.ef_search = {int(plan.ef_search)}"))
    sql = _CANDIDATES.format(category=category_sql, distance=_EXACT if plan.exact else _INDEXED)
    return list((await session.execute(text(sql), params)).all())


def _category_ids(tree: CategoryTree, category: str | None) -> list[UUID] | None:
    if not category:
        return None
    node = tree.find(category)
    if node is None:
        raise InvalidInput("Unknown category.", errors=[{"field": "category", "message": "unknown category"}])
    return tree.descendant_ids(node)


def _decode(cursor: str) -> tuple[float, UUID, int]:
    values = decode_cursor(cursor)
    invalid = InvalidInput(
        "The cursor is not valid.", errors=[{"field": "cursor", "message": "invalid cursor"}]
    )
    if values[0] != "fit" or len(values) != 4:
        raise invalid
    try:
        return float(values[1]), UUID(str(values[2])), max(0, int(values[3]))
    except (TypeError, ValueError):
        raise invalid from None
