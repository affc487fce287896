"""The body profile fit works from: the caller's latest ready measurement."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from db.services.fit.errors import BodyProfileRequired
from db.services.measurements.errors import BodyProfileNotFound
from db.services.measurements.queries import body_profile


@dataclass(frozen=True)
class BodyProfile:
    measurement_id: UUID
    measurements: dict[str, float]
    confidence: dict[str, float]
    # Body-shape embedding ("shoppers like me"); None for measurements made before it existed.
    embedding: list[float] | None = None


async def body_profile_for_fit(session: AsyncSession, user_id: UUID) -> BodyProfile:
    """The user's body profile (their latest ready measurement), as numbers.

    Raises:
        BodyProfileRequired: the user has no ready measurement (409).
    """
    try:
        found = await body_profile(session, user_id)
    except BodyProfileNotFound:
        raise BodyProfileRequired from None
    embedding = [float(x) for x in found.embedding] if found.embedding is not None else None
    return BodyProfile(found.id, dict(found.measurements or {}), dict(found.confidence or {}), embedding)
