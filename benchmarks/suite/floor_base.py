"""What every floor handler shares (``floor.py`` says what the floor is): the pool, JSON, the
product summary every list answers with, the caller named by the access token, the category tree.

Nothing here runs per request but dict building and one base64 decode; no validation, no
dependency injection, no ORM.
"""

from __future__ import annotations

import base64
from typing import Any
from uuid import UUID

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy
from litestar import Response
from litestar.datastructures import State

from db.services.catalog.taxonomy import CategoryNode, CategoryTree

DECODE = msgspec.json.Decoder()
ENCODE = msgspec.json.Encoder()
NOBODY = UUID(int=0)
# A connection of the pool, or one of its own.
Conn = asyncpg.Connection | PoolConnectionProxy
# The category tree (``resources.categories`` in the API, cached there too): read once at start.
CATEGORIES_SQL = "SELECT id, parent_id, name, slug, garment FROM categories ORDER BY position, name"


def money(amount: int, currency: str) -> dict[str, Any]:
    return {"amount": amount, "currency": currency}


def pool_of(state: State) -> asyncpg.Pool:
    pool: asyncpg.Pool = state.pool
    return pool


def media_url(state: State, key: str | None) -> str | None:
    return f"{state.media_base_url}/{key}" if key else None


def summary(state: State, row: Any) -> dict[str, Any]:
    """A product summary from a row in ``SummaryRow``'s column order (the listing's, similar's and
    the fit search's SELECT all give it)."""
    return {
        "id": row[0],
        "title": row[1],
        "slug": row[2],
        "price": money(row[3], row[4]),
        "vendor": {"id": row[5], "name": row[6]},
        "category_id": row[7],
        "brand": row[8],
        "thumbnail_url": media_url(state, row[9]),
        "in_stock": row[10],
    }


def respond(body: Any, status_code: int = 200) -> Response[bytes]:
    return Response(ENCODE.encode(body), status_code=status_code, media_type="application/json")


def problem(status_code: int, title: str) -> Response[bytes]:
    body = {"type": "about:blank", "title": title, "status": status_code}
    return Response(ENCODE.encode(body), status_code=status_code, media_type="application/problem+json")


def caller(authorization: str | None) -> UUID | None:
    """The user an access token names: its ``sub`` claim, read without checking the signature,
    expiry, issuer or audience (the API's authentication is what the floor leaves out)."""
    if not authorization or not authorization.startswith("Bearer "):
        return None
    try:
        payload = authorization[7:].split(".")[1]
        claims = DECODE.decode(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return UUID(claims["sub"])
    except (IndexError, KeyError, ValueError, msgspec.DecodeError):
        return None


def in_clause(start: int, count: int, cast: str = "::UUID") -> str:
    """``$start, $start+1, ...`` as SQLAlchemy renders an IN list of ``count`` values."""
    return ", ".join(f"${n}{cast}" for n in range(start, start + count))


async def category_tree(conn: Conn) -> CategoryTree:
    by_id = {
        row["id"]: CategoryNode(
            id=row["id"],
            name=row["name"],
            slug=row["slug"],
            garment=row["garment"],
            parent_id=row["parent_id"],
        )
        for row in await conn.fetch(CATEGORIES_SQL)
    }
    roots: list[CategoryNode] = []
    for node in by_id.values():
        parent = by_id.get(node.parent_id) if node.parent_id else None
        (parent.children if parent else roots).append(node)
    return CategoryTree(roots=roots, by_id=by_id, by_slug={n.slug: n for n in by_id.values()})


def pairs(rows: list[Any]) -> dict[Any, Any]:
    """Two-column rows as a dict, first column the key."""
    return {row[0]: row[1] for row in rows}
