"""Fit profiles: the distinct size-chart rows in fit space, shared by every product whose chart
has that row (see ``db.models.FitProfile``)."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.rules.fit import Ranges, fit_profile_key, fit_row_vector
from db.models import FitProfile


async def fit_profile_ids(session: AsyncSession, rows: Sequence[Ranges], garment: str | None) -> list[UUID]:
    """The fit profile of each row (same order), created when new; safe under concurrency."""
    keys = [fit_profile_key(ranges, garment) for ranges in rows]
    new = {
        key: {
            "key": key,
            "garment": garment,
            "ranges": {k: list(v) for k, v in ranges.items()},
            "fit_vector": fit_row_vector(ranges, garment),
        }
        for key, ranges in zip(keys, rows, strict=True)
    }
    if new:
        await session.execute(
            insert(FitProfile)
            .values(list(new.values()))
            .on_conflict_do_nothing(index_elements=[FitProfile.key])
        )
    found = dict(
        (await session.execute(select(FitProfile.key, FitProfile.id).where(FitProfile.key.in_(keys)))).all()
    )
    return [found[key] for key in keys]
