"""Object-level access: an object that is not the caller's is reported as not found (never 403),
so ids of other users' objects reveal nothing."""

from __future__ import annotations

from typing import Any, TypeVar
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from core.errors import NotFound

M = TypeVar("M")


async def get_owned(
    session: AsyncSession,
    model: type[M],
    object_id: UUID,
    owner_column: InstrumentedAttribute[Any],
    owner_id: UUID,
    *,
    not_found: type[NotFound] = NotFound,
    for_update: bool = False,
) -> M:
    """Load ``model`` ``object_id`` if ``owner_column`` equals ``owner_id``.

    Raises:
        ``not_found``: the object does not exist or belongs to someone else (indistinguishably).
    """
    stmt = select(model).where(model.id == object_id, owner_column == owner_id)  # type: ignore[attr-defined]
    if for_update:
        stmt = stmt.with_for_update()
    found = await session.scalar(stmt)
    if found is None:
        raise not_found()
    return found
