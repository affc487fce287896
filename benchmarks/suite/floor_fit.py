"""The floor of products that fit me (``GET /fit/products``) and size advice
(``GET /products/{id}/fit``): the statements the API sends for them, in its order (and in its
transaction, for products that fit me), with the same scoring (``core.rules.fit``, pure
functions) in between.

Both run the service's own statements on the pool's connection, as the API sends them: size
advice ``ADVICE_SQL`` and ``COUNTS_SQL`` outside a transaction, products that fit me ``BODY_SQL``
(which makes the transaction's settings), ``NEAREST_SQL`` and ``WALK_SQL`` in a read-only
transaction. Only the first page of products that fit me without a category filter is served (the
benchmark's requests); the cursor it hands out is the API's.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.params import FromPath

from benchmarks.suite.floor_base import Conn, caller, pool_of, problem, respond, summary
from core.rules.fit import (
    SimilarShoppers,
    SizeFit,
    advise,
    fit_query_vector,
    with_shoppers,
)
from core.rules.orders import SOLD
from core.rules.shape_cells import nearby_cells, shape_cell
from db.pagination import encode_cursor
from db.services.fit.advice import ADVICE_SQL
from db.services.fit.search import (
    BODY_SQL,
    EF_SEARCH,
    EXACT_PROFILES,
    NEAREST_SQL,
    PROFILE_CANDIDATES,
    WALK,
    WALK_SQL,
    ranked_fits,
)
from db.services.fit.shopper_sizes import brand_scope, product_scope
from db.services.fit.shoppers import COUNTS_SQL, _summary

_NO_PRODUCT = UUID(int=0)


async def _ranked(conn: Conn, body: Any) -> list[Any]:
    """The fitting profiles (``db.services.fit.search``'s ranking), best first."""
    estimated = body["estimated_profiles"]
    exact = estimated is None or estimated < EXACT_PROFILES
    measurements, confidence = dict(body["measurements"] or {}), dict(body["confidence"] or {})
    query = json.dumps(fit_query_vector(measurements, confidence))
    return ranked_fits(
        await conn.fetch(NEAREST_SQL[exact], query, PROFILE_CANDIDATES), measurements, confidence
    )


async def _walk(conn: Conn, ranked: list[Any], limit: int) -> list[tuple[Any, Any]]:
    found: list[tuple[Any, Any]] = []
    seen: set[UUID] = set()
    start, ids = 0, [r.profile_id for r in ranked]
    while start < len(ranked) and len(found) <= limit:
        walk = ranked[start : start + WALK]
        after = [_NO_PRODUCT] * len(walk)
        rows = await conn.fetch(
            WALK_SQL[False], [r.profile_id for r in walk], after, ids, start, limit + 1 - len(found)
        )
        for row in rows:
            if row["product_id"] not in seen:
                seen.add(row["product_id"])
                found.append((walk[row["ord"] - 1], row))
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
    async with pool_of(state).acquire() as conn, conn.transaction(readonly=True):
        body = await conn.fetchrow(BODY_SQL, user_id, EF_SEARCH)
        if body is None or body["measurement_id"] is None:
            return problem(409, "A body profile is required.")
        found = await _walk(conn, await _ranked(conn, body), limit)
    page = found[:limit]
    items = [
        {"product": summary(state, row[3:]), "size": row["size"], "fit_score": r.score} for r, row in page
    ]
    next_cursor = None
    if len(found) > limit:
        last, last_row = page[-1]
        next_cursor = encode_cursor(
            ["fit", last.score, last.centre_distance, str(last.profile_id), str(last_row["product_id"])]
        )
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
