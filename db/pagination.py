"""Keyset pagination with opaque cursors (stable under concurrent inserts; no OFFSET)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from uuid import UUID

import msgspec
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from core.errors import InvalidInput

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: Sequence[T]
    next_cursor: str | None


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(values)).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    """Raises InvalidInput (422, field ``cursor``) for anything this module did not produce."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = msgspec.json.decode(raw)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        values = None
    if not isinstance(values, list) or not values:
        raise InvalidInput(
            "The cursor is not valid.", errors=[{"field": "cursor", "message": "invalid cursor"}]
        )
    return values


def cursor_id(cursor: str) -> UUID:
    """The id in a cursor made by :func:`keyset_page`. Raises InvalidInput (422)."""
    try:
        return UUID(str(decode_cursor(cursor)[0]))
    except ValueError:
        raise InvalidInput(
            "The cursor is not valid.", errors=[{"field": "cursor", "message": "invalid cursor"}]
        ) from None


async def keyset_page(
    session: AsyncSession,
    stmt: Select[Any],
    id_column: InstrumentedAttribute[UUID],
    *,
    limit: int,
    cursor: str | None,
) -> Page[Any]:
    """Newest first by a UUIDv7 key (time-ordered), ``limit`` rows after ``cursor``."""
    if cursor is not None:
        stmt = stmt.where(id_column < cursor_id(cursor))
    rows = list((await session.scalars(stmt.order_by(id_column.desc()).limit(limit + 1))).all())
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor([str(getattr(rows[-1], id_column.key))]) if more and rows else None
    return Page(items=rows, next_cursor=next_cursor)
