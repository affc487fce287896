"""The body profile fit works from: the caller's latest ready measurement."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Measurement
from db.services.fit.errors import BodyProfileRequired


@dataclass(frozen=True)
class BodyProfile:
    measurement_id: UUID
    measurements: dict[str, float]
    confidence: dict[str, float]


async def body_profile_for_fit(session: AsyncSession, user_id: UUID) -> BodyProfile:
    """The user's latest ready measurement, as numbers.

    Raises:
        BodyProfileRequired: the user has no ready measurement (409).
    """
    row = (
        await session.execute(
            select(Measurement.id, Measurement.measurements, Measurement.confidence)
            .where(Measurement.user_id == user_id, Measurement.status == "ready")
            .order_by(Measurement.created_at.desc(), Measurement.id.desc())
            .limit(1)
        )
    ).first()
    if row is None or not row.measurements:
        raise BodyProfileRequired
    return BodyProfile(row.id, dict(row.measurements), dict(row.confidence or {}))
