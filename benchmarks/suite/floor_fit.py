"""The floor of products that fit me (``GET /fit/products``) and size advice
(``GET /products/{id}/fit``): the statements the API sends for them, in its order (and in its
transaction, for products that fit me), with the same scoring (``core.rules.fit``, pure
functions) in between.

Size advice runs the service's own statements (``ADVICE_SQL``, ``COUNTS_SQL``: the API sends them
on the pool's connection too, outside a transaction). Products that fit me still goes through the
ORM session in the API: its statements were captured once from a statement log of one request
(``before_cursor_execute`` on the API's engine) and are written here as that text, the walk
taken from the service's own constant; its body profile is the whole ``measurements`` row, as the
ORM reads it. Only the first page without a category filter is served (the benchmark's
requests); the cursor it hands out is the API's.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.params import FromPath

from benchmarks.suite.floor_base import Conn, caller, in_clause, pool_of, problem, respond, summary
from core.rules.fit import (
    FITS,
    SimilarShoppers,
    SizeFit,
    advise,
    fit_query_vector,
    score_size,
    with_shoppers,
)
from core.rules.orders import SOLD
from core.rules.shape_cells import nearby_cells, shape_cell
from db.pagination import encode_cursor
from db.services.fit.advice import ADVICE_SQL
from db.services.fit.search import _NEAREST_PROFILES, _PRODUCTS, EXACT_PROFILES, PROFILE_CANDIDATES, WALK
from db.services.fit.shopper_sizes import brand_scope, product_scope
from db.services.fit.shoppers import COUNTS_SQL, _summary

BODY_PROFILE_SQL = (
    "SELECT measurements.id, measurements.user_id, measurements.status, measurements.height_cm, "
    "measurements.weight_kg, measurements.front_key, measurements.side_key, measurements.measurements, "
    "measurements.confidence, measurements.embedding, measurements.error_code, measurements.error_message, "
    "measurements.model_name, measurements.model_version, measurements.timings, measurements.attempts, "
    "measurements.started_at, measurements.completed_at, measurements.photos_deleted_at, "
    "measurements.sa_orm_sentinel, measurements.created_at, measurements.updated_at \nFROM measurements \n"
    "WHERE measurements.user_id = $1::UUID AND measurements.status = $2::VARCHAR "
    "ORDER BY measurements.created_at DESC, measurements.id DESC \n LIMIT $3::INTEGER"
)
ESTIMATED_PROFILES_SQL = "SELECT reltuples FROM pg_class WHERE oid = 'fit_profiles'::regclass"
_DISTANCE = {True: "(fit_vector <#> CAST($1 AS vector)) + 0", False: "fit_vector <#> CAST($1 AS vector)"}
NEAREST_PROFILES_SQL = {
    exact: _NEAREST_PROFILES.format(distance=distance).replace(":n", "$2")
    for exact, distance in _DISTANCE.items()
}
_IN_STOCK = (
    "EXISTS (SELECT 1 FROM variants v"
    " WHERE v.product_id = {r}.product_id AND v.size = {r}.size AND v.stock > 0)"
)
WALK_SQL = (
    _PRODUCTS.format(
        categories="", category="", in_stock=_IN_STOCK.format(r="r"), in_stock_2=_IN_STOCK.format(r="r2")
    )
    .replace(":walk", "$1")
    .replace(":after", "$2")
    .replace(":ranked", "$3")
    .replace(":offset", "$4")
    .replace(":take", "$5")
)
SUMMARIES_SQL = (
    "SELECT products.id, products.title, products.slug, products.min_price, products.currency, "
    "products.vendor_id, vendors.name, products.category_id, brands.name AS name_1, products.thumbnail_key, "
    "products.in_stock \nFROM products JOIN vendors ON vendors.id = products.vendor_id "
    "LEFT OUTER JOIN brands ON brands.id = products.brand_id \nWHERE products.id IN ({ids})"
)
_NO_PRODUCT = UUID(int=0)


async def _body(conn: Conn, user_id: UUID) -> Any:
    return await conn.fetchrow(BODY_PROFILE_SQL, user_id, "ready", 1)


async def _ranked(conn: Conn, body: Any) -> list[tuple[tuple[float, float, str], UUID, float, float]]:
    """(sort key, profile id, score, centre distance) of the fitting profiles, best first."""
    estimated = await conn.fetchval(ESTIMATED_PROFILES_SQL)
    exact = estimated is None or estimated < EXACT_PROFILES
    if not exact:
        await conn.execute(f"SET LOCAL hnsw.ef_search = {PROFILE_CANDIDATES}")
    query = json.dumps(fit_query_vector(body["measurements"] or {}, body["confidence"] or {}))
    ranked = []
    for row in await conn.fetch(NEAREST_PROFILES_SQL[exact], query, PROFILE_CANDIDATES):
        fit = score_size(
            "", row["ranges"], body["measurements"] or {}, body["confidence"] or {}, row["garment"]
        )
        if fit.fit_score >= FITS:
            centre = round(fit.centre_distance, 6)
            ranked.append(((-fit.fit_score, centre, str(row["id"])), row["id"], fit.fit_score, centre))
    ranked.sort(key=lambda r: r[0])
    return ranked


async def _walk(conn: Conn, ranked: list[Any], limit: int) -> list[tuple[Any, UUID, str]]:
    found: list[tuple[Any, UUID, str]] = []
    seen: set[UUID] = set()
    start, ids = 0, [r[1] for r in ranked]
    while start < len(ranked) and len(found) <= limit:
        walk = ranked[start : start + WALK]
        after = [_NO_PRODUCT] * len(walk)
        await conn.execute("SET LOCAL enable_bitmapscan = off")
        rows = await conn.fetch(WALK_SQL, [r[1] for r in walk], after, ids, start, limit + 1 - len(found))
        await conn.execute("SET LOCAL enable_bitmapscan = on")
        for row in rows:
            if row["product_id"] not in seen:
                seen.add(row["product_id"])
                found.append((walk[row["ord"] - 1], row["product_id"], row["size"]))
        start += len(walk)
    return found


@get("/api/v1/fit/products")
async def fit_products(request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    user_id = caller(request.headers.get("authorization"))
    if user_id is None:
        return problem(401, "Authentication required.")
    if {"category", "cursor"} & set(request.query_params):
        return problem(422, "The floor serves the first page without a category only.")
    limit = int(request.query_params.get("limit", 20))
    async with pool_of(state).acquire() as conn, conn.transaction():
        body = await _body(conn, user_id)
        if body is None:
            return problem(409, "A body profile is required.")
        found = await _walk(conn, await _ranked(conn, body), limit)
        page = found[:limit]
        ids = [pid for _, pid, _ in page]
        rows = await conn.fetch(SUMMARIES_SQL.format(ids=in_clause(1, len(ids))), *ids) if ids else []
    summaries = {row[0]: row for row in rows}
    items = [
        {"product": summary(state, summaries[pid]), "size": size, "fit_score": r[2]}
        for r, pid, size in page
        if pid in summaries
    ]
    next_cursor = None
    if len(found) > limit:
        last, last_id, _ = page[-1]
        next_cursor = encode_cursor(["fit", last[2], last[3], str(last[1]), str(last_id)])
    return respond({"items": items, "next_cursor": next_cursor})


def _size_out(size: SizeFit) -> dict[str, Any]:
    notes = [
        {
            "measurement": n.measurement,
            "status": n.status,
            "delta_cm": n.delta_cm,
            "confidence": n.confidence,
            "counted": n.counted,
        }
        for n in size.notes
    ]
    return {"size": size.size, "fit_score": size.fit_score, "notes": notes}


async def _shoppers(conn: Conn, user_id: UUID, row: Any, body: dict[str, float]) -> SimilarShoppers | None:
    """``db.services.fit.shoppers.similar_shoppers``: the product's counts, else its brand's."""
    cell = shape_cell(body)
    if cell is None:
        return None
    product_key = product_scope(row["product_id"])
    brand_id, category_id = row["brand_id"], row["category_id"]
    brand_key = brand_scope(brand_id, category_id) if brand_id is not None else None
    scopes = [key for key in (product_key, brand_key) if key is not None]
    args = (scopes, nearby_cells(cell), sorted(SOLD), user_id, row["product_id"], brand_id, category_id)
    rows = [(r["kind"], r["scope"], r["size"], r["n"]) for r in await conn.fetch(COUNTS_SQL, *args)]
    found = _summary(rows, product_key, "product")
    if found is not None or brand_key is None:
        return found
    return _summary(rows, brand_key, "brand")


def _shoppers_out(shoppers: SimilarShoppers) -> dict[str, Any]:
    return {"count": shoppers.count, "size_distribution": shoppers.size_distribution, "scope": shoppers.scope}


@get("/api/v1/products/{product_id:uuid}/fit")
async def product_fit(
    product_id: FromPath[UUID], request: Request[Any, Any, Any], state: State
) -> Response[bytes]:
    """``db.services.fit.advice.size_advice``: its two statements on a pool connection, no
    transaction, as the API sends them."""
    user_id = caller(request.headers.get("authorization"))
    if user_id is None:
        return problem(401, "Authentication required.")
    async with pool_of(state).acquire() as conn:
        row = await conn.fetchrow(ADVICE_SQL, product_id, user_id)
        if row is None or row["product_id"] is None:
            return problem(404, "Product not found.")
        if row["measurement_id"] is None:
            return problem(409, "A body profile is required.")
        if not row["chart"]:
            return problem(422, "The product has no size chart.")
        body = {key: float(value) for key, value in (row["measurements"] or {}).items()}
        confidence = {key: float(value) for key, value in (row["confidence"] or {}).items()}
        garment = state.tree.garment_of(row["category_id"])
        advice = advise([(size, ranges) for size, ranges in row["chart"]], body, confidence, garment)
        advice = with_shoppers(advice, await _shoppers(conn, user_id, row, body))
    shoppers = advice.similar_shoppers
    return respond(
        {
            "product_id": product_id,
            "recommended_size": advice.recommended_size,
            "reason": advice.reason,
            "sizes": [_size_out(s) for s in advice.sizes],
            "measurement_id": row["measurement_id"],
            "basis": advice.basis,
            "similar_shoppers": None
            if shoppers is None
            else {
                "count": shoppers.count,
                "size_distribution": shoppers.size_distribution,
                "scope": shoppers.scope,
            },
        }
    )
