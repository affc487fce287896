"""The physical floor of the product page: a bare Litestar app with one handler.

``GET /api/v1/products/{id}`` (the API's path) runs the product page's primary query
(``db.services.catalog.listing.DETAIL_SQL``, the very text the API sends) on a raw asyncpg pool
of the API's size, decodes the JSON aggregates with msgspec and answers the product as
msgspec-encoded JSON. No middleware, no ORM, no dependency injection, no
logging per request: what is left is granian, Litestar's routing, one round trip to PostgreSQL
and JSON. Served by the same granian command as the API, on the same CPU (``stack.SuiteStack.start_floor``).

    granian --interface asgi --factory benchmarks.suite.floor:create_app ...
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import msgspec
from litestar import Litestar, Response, get
from litestar.datastructures import State

from benchmarks.search_quality.stack import asyncpg_dsn
from core.settings import load_settings
from db.services.catalog.listing import DETAIL_SQL

NOBODY = UUID(int=0)
_JSON = msgspec.json.Decoder()
_ENCODE = msgspec.json.Encoder()


def _money(amount: int, currency: str) -> dict[str, Any]:
    return {"amount": amount, "currency": currency}


@get("/api/v1/products/{product_id:uuid}", sync_to_thread=False)
async def product(product_id: UUID, state: State) -> Response[bytes]:
    pool: asyncpg.Pool = state.pool
    row = await pool.fetchrow(DETAIL_SQL, product_id, NOBODY)
    if row is None:
        return Response(b'{"status":404}', status_code=404, media_type="application/json")
    currency = row["currency"]
    body = {
        "id": row["id"],
        "title": row["title"],
        "slug": row["slug"],
        "description": row["description"],
        "status": row["status"],
        "price": _money(row["price_amount"], currency),
        "in_stock": row["in_stock"],
        "attributes": row["attributes"],
        "category_id": row["category_id"],
        "vendor": {"id": row["vendor_id"], "name": row["vendor_name"]},
        "brand": row["brand"],
        "rating": {"count": row["rating_count"], "sum": row["rating_sum"]},
        "variants": [
            {**v, "price": _money(v.pop("price_amount"), currency), "in_stock": v["stock"] > 0}
            for v in _JSON.decode(row["variants"])
        ],
        "images": _JSON.decode(row["images"]),
        "size_chart": _JSON.decode(row["size_chart"]),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }
    return Response(_ENCODE.encode(body), media_type="application/json")


@get("/health", sync_to_thread=False)
async def health() -> dict[str, str]:
    return {"status": "ok"}


def create_app() -> Litestar:
    settings = load_settings()

    async def open_pool(app: Litestar) -> None:
        async def init(conn: asyncpg.Connection) -> None:
            await conn.set_type_codec("jsonb", schema="pg_catalog", encoder=str, decoder=_JSON.decode)

        app.state.pool = await asyncpg.create_pool(
            asyncpg_dsn(settings.require_database_url()),
            min_size=settings.db_pool_size_api,
            max_size=settings.db_pool_size_api,
            init=init,
        )

    async def close_pool(app: Litestar) -> None:
        await app.state.pool.close()

    return Litestar([product, health], on_startup=[open_pool], on_shutdown=[close_pool], debug=False)
