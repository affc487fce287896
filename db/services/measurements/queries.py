"""Reading measurements: one of the caller's, and the body profile (the latest ready one)."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Measurement
from db.ownership import get_owned
from db.services.measurements.errors import BodyProfileNotFound, MeasurementNotFound


async def own_measurement(session: AsyncSession, user_id: UUID, measurement_id: UUID) -> Measurement:
    """One of ``user_id``'s measurements.

    Raises:
        MeasurementNotFound: no such measurement, or someone else's (indistinguishably, 404).
    """
    return await get_owned(
        session, Measurement, measurement_id, Measurement.user_id, user_id, not_found=MeasurementNotFound
    )


async def body_profile(session: AsyncSession, user_id: UUID) -> Measurement:
    """The user's latest ready measurement.

    Raises:
        BodyProfileNotFound: the user has none (404).
    """
    found = await session.scalar(
        select(Measurement)
        .where(Measurement.user_id == user_id, Measurement.status == "ready")
        .order_by(Measurement.created_at.desc(), Measurement.id.desc())
        .limit(1)
    )
    if found is None:
        raise BodyProfileNotFound
    return found


async def fresh_measurement(
    session_maker: async_sessionmaker[AsyncSession], measurement_id: UUID
) -> Measurement | None:
    """The measurement as committed right now, read in a short session of its own (for
    long-lived readers such as an event stream, which must not hold a connection)."""
    async with session_maker() as session:
        return await session.get(Measurement, measurement_id)
