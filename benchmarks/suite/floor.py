"""The physical floor of each benchmarked endpoint: a bare Litestar app with one handler per
scenario, at the API's path, running the SQL the API runs for that request.

Each handler takes a raw asyncpg connection from a pool of the API's size, sends the API's
statements (text, ``$n`` parameters) in the API's order and transaction, and answers the JSON
the API answers (``tests/test_bench_floor.py`` holds every handler to the API's answer for the
same request: same items in the same order, same money, same field names). Served by the same
granian command as the API, on the same CPU (``stack.SuiteStack.start_floor``); the suite
measures each scenario's floor closed loop in the same run, so a scenario's ``floor_ratio`` is
its throughput over its own floor's.

    granian --interface asgi --factory benchmarks.suite.floor:create_app ...

Where each handler's SQL comes from:

- product page (``GET /products/{id}``): ``db.services.catalog.listing.DETAIL_SQL``, the very
  text the API sends.
- listing and search (``GET /products``): ``db.services.catalog.listing.listing_query``, the
  function that writes the API's SELECT per shape of request and binds its values; the same
  text constants (``listing_sql``), the same ``$n`` order. A search by relevance reads its page
  from a kept ranking as the API does (``db.services.catalog.ranked_search``, the same class, its
  ``catalog`` version read from the same Redis), else runs the full query.
- similar (``GET /products/{id}/similar``): ``db.services.catalog.similar_sql``'s statements,
  the very text the API sends, with its passes decided by the same ``vector_search.next_pass``.
- size advice (``floor_fit.py``): the service's own ``ADVICE_SQL`` and ``COUNTS_SQL``.
- products that fit me (``floor_fit.py``): the service's own ``BODY_SQL``, ``NEAREST_SQL`` and
  ``WALK_SQL``, in a read-only transaction as the API sends them.
- order creation (``floor_orders.py``): an ORM path, captured from a statement log of one
  request, as that module says.

What is left out, everywhere: authentication (the caller is the access token's ``sub``, read
without checking the token), input validation (the benchmark's requests are well formed; other
shapes, such as filters on similar, a later page of products that fit me or a cart order, are
refused with 422 rather than answered differently), middleware (request ids,
security headers, metrics, logging), dependency injection, the ORM (no statement building or
compiling, no session, no result objects) and the API's error mapping (a short problem body
for the misses the scenarios can meet: 404, 409, 422).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
from asyncpg import Record
from litestar import Litestar, Request, Response, get
from litestar.datastructures import State
from litestar.params import FromPath
from redis.asyncio import Redis

from benchmarks.search_quality.stack import asyncpg_dsn
from benchmarks.suite.floor_base import (
    DECODE,
    NOBODY,
    Conn,
    category_tree,
    media_url,
    money,
    pool_of,
    problem,
    respond,
    summary,
)
from benchmarks.suite.floor_fit import fit_products, product_fit
from benchmarks.suite.floor_orders import place_order
from core.errors import InvalidInput
from core.page_versions import PageVersions
from core.rules.measurements import MEASUREMENT_KEYS
from core.settings import Settings, load_settings
from db.pagination import encode_cursor
from db.services.catalog.images import MAX_IMAGES_PER_PRODUCT
from db.services.catalog.listing import DETAIL_SQL, ListingFilters, listing_query
from db.services.catalog.ranked_search import RankedSearches
from db.services.catalog.similar_sql import (
    CONFIGURE_SQL,
    DISTANCE,
    FOUND,
    PRODUCT_SQL,
    exact_sql,
    nearest_sql,
)
from db.services.vector_search import OVERFETCH, Strategy, next_pass, scan_settings
from tasks.runtime.factory import redis_url_for


# --- product page --------------------------------------------------------------------------------
def _size_chart(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not rows:
        return None
    return {
        "rows": [
            {"size": r["size"], **{k: r["ranges"][k] for k in MEASUREMENT_KEYS if k in r["ranges"]}}
            for r in rows
        ]
    }


def _image(state: State, image: dict[str, Any]) -> dict[str, Any]:
    thumbnails = image["thumbnails"] or {}
    return {
        "id": image["id"],
        "position": image["position"],
        "status": image["status"],
        "embedding_status": image["embedding_status"],
        "width": image["width"],
        "height": image["height"],
        "url": media_url(state, image["original_key"]),
        "thumbnails": {name: media_url(state, key) or "" for name, key in thumbnails.items()},
    }


@get("/api/v1/products/{product_id:uuid}")
async def product(product_id: FromPath[UUID], state: State) -> Response[bytes]:
    row = await pool_of(state).fetchrow(DETAIL_SQL, product_id, NOBODY)
    if row is None:
        return problem(404, "Product not found.")
    currency, count = row["currency"], row["rating_count"]
    return respond(
        {
            "id": row["id"],
            "title": row["title"],
            "slug": row["slug"],
            "description": row["description"],
            "status": row["status"],
            "price": money(row["min_price"], currency),
            "vendor": {"id": row["vendor_id"], "name": row["vendor_name"]},
            "category_id": row["category_id"],
            "brand": row["brand"],
            "attributes": row["attributes"] or {},
            "in_stock": row["in_stock"],
            "thumbnail_url": media_url(state, row["thumbnail_key"]),
            "variants": [
                {
                    "id": v["id"],
                    "sku": v["sku"],
                    "size": v["size"],
                    "color": v["color"],
                    "price": money(v["price_amount"], currency),
                    "stock": v["stock"],
                    "in_stock": v["stock"] > 0,
                }
                for v in DECODE.decode(row["variants"])
            ],
            "images": [_image(state, i) for i in DECODE.decode(row["images"])],
            "size_chart": _size_chart(DECODE.decode(row["size_chart"])),
            "rating": {"average": round(row["rating_sum"] / count, 2) if count else None, "count": count},
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
        }
    )


# --- listing and search ----------------------------------------------------------------------------
def _filters(params: Any) -> ListingFilters:
    def number(name: str) -> int | None:
        value = params.get(name)
        return int(value) if value is not None else None

    in_stock = params.get("in_stock")
    return ListingFilters(
        q=params.get("q"),
        category=params.get("category"),
        brand=params.get("brand"),
        vendor=UUID(params["vendor"]) if params.get("vendor") else None,
        min_price=number("min_price"),
        max_price=number("max_price"),
        size=params.get("size"),
        color=params.get("color"),
        in_stock=None if in_stock is None else in_stock == "true",
        sort=params.get("sort"),
    )


class _PoolReader:
    """The pool in ``Database.fetch``'s shape, for the kept ranking (no replica here)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def fetch(self, sql: str, *args: Any, replica: bool = False) -> list[Record]:
        rows: list[Record] = await self._pool.fetch(sql, *args)
        return rows


def _cursor_after(sort: str, last: Any) -> str:
    if sort == "newest":
        return encode_cursor([sort, str(last[0])])
    if sort in ("price_asc", "price_desc"):
        return encode_cursor([sort, last[3], str(last[0])])
    return encode_cursor([sort, float(last[11]), str(last[0])])


@get("/api/v1/products")
async def products(request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    params = request.query_params
    limit = int(params.get("limit", 20))
    try:
        query = listing_query(state.tree, _filters(params), limit=limit, cursor=params.get("cursor"))
    except InvalidInput as exc:
        return problem(422, exc.detail)
    if query is None:
        return respond({"items": [], "next_cursor": None})
    rows = None
    if query.ranked is not None:
        rows = await state.searches.page(_PoolReader(pool_of(state)), query.ranked)
    if rows is None:
        rows = await pool_of(state).fetch(query.sql, *query.args)
    next_cursor = None
    if len(rows) > limit:
        del rows[limit:]
        next_cursor = _cursor_after(query.sort, rows[-1])
    return respond({"items": [summary(state, r) for r in rows], "next_cursor": next_cursor})


# --- similar ------------------------------------------------------------------------------------------
async def _nearest(conn: Conn, product_id: UUID, limit: int) -> list[Any]:
    """``similar._passes``: the nearest rows, then a wider pass or the exact statement while the
    page is short (``vector_search.next_pass`` decides, as for the API)."""
    path: list[Strategy] = ["nearest"]
    rows = OVERFETCH * limit
    while True:
        found = await conn.fetch(nearest_sql("product", ()), product_id, rows, limit)
        step = next_pass(
            path, len(found), int(found[0][FOUND]) if found else 0, rows, limit, MAX_IMAGES_PER_PRODUCT
        )
        if step is None:
            return list(found)
        strategy, rows = step
        path.append(strategy)
        if strategy == "exact":
            return list(await conn.fetch(exact_sql("product", ()), product_id, limit))
        await conn.execute(CONFIGURE_SQL, *scan_settings(rows))


@get("/api/v1/products/{product_id:uuid}/similar")
async def similar(
    product_id: FromPath[UUID], request: Request[Any, Any, Any], state: State
) -> Response[bytes]:
    if {"category", "max_price", "in_stock"} & set(request.query_params):
        return problem(422, "The floor serves similar items without filters only.")
    limit = int(request.query_params.get("limit", 20))
    async with pool_of(state).acquire() as conn, conn.transaction(readonly=True):
        found = await conn.fetchrow(PRODUCT_SQL, product_id, *scan_settings(OVERFETCH * limit))
        if found is None:
            return problem(404, "Product not found.")
        rows = await _nearest(conn, product_id, limit) if found[0] else []
    items = [{"product": summary(state, r), "score": round(1.0 - float(r[DISTANCE]), 6)} for r in rows]
    return respond({"items": items})


@get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


HANDLERS = [product, products, similar, fit_products, product_fit, place_order, health]


def create_app(settings: Settings | None = None) -> Litestar:
    """The floor app on ``settings`` (default: the environment's, as granian's factory call)."""
    settings = settings or load_settings()

    async def open_pool(app: Litestar) -> None:
        async def init(conn: Conn) -> None:
            await conn.set_type_codec("jsonb", schema="pg_catalog", encoder=str, decoder=DECODE.decode)

        app.state.settings = settings
        app.state.media_base_url = settings.media_base_url.rstrip("/")

        async def keep(conn: asyncpg.Connection) -> None:
            """No session reset on release (asyncpg's default sends RESET ALL, CLOSE ALL, UNLISTEN
            and an advisory unlock each time, a round trip the API's pool does not make): the
            handlers leave nothing behind (their settings and locks are transaction-local)."""

        app.state.pool = pool = await asyncpg.create_pool(
            asyncpg_dsn(settings.require_database_url()),
            min_size=settings.db_pool_size_api,
            max_size=settings.db_pool_size_api,
            init=init,
            reset=keep,
        )
        async with pool.acquire() as conn:
            app.state.tree = await category_tree(conn)
        app.state.redis = redis = Redis.from_url(redis_url_for(settings))
        app.state.searches = RankedSearches(PageVersions(redis))

    async def close_pool(app: Litestar) -> None:
        await app.state.pool.close()
        await app.state.redis.aclose()

    return Litestar(HANDLERS, on_startup=[open_pool], on_shutdown=[close_pool], debug=False)
