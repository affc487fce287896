"""Periodic upkeep: failing measurements that never finished, deleting photos past retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.adapters.storage import ObjectStorage
from db.models import Measurement

TIMEOUT_MESSAGE = "Measuring took too long. Please upload your photos again."


async def fail_stuck_measurements(
    session: AsyncSession, *, older_than: timedelta, now: datetime | None = None, limit: int = 500
) -> list[UUID]:
    """Fail (code ``timeout``) measurements still pending, or processing, ``older_than`` after
    they were created, or last claimed. Returns their ids.

    Rows locked by a worker that is storing a result right now are skipped (the next sweep sees
    them finished); a worker that finishes a row after this failed it stores nothing.
    """
    now = now or datetime.now(UTC)
    cutoff = now - older_than
    stuck = (
        select(Measurement.id)
        .where(
            Measurement.status.in_(("pending", "processing")),
            # started_at >= created_at, so this bound lets the in-flight index narrow the scan.
            Measurement.created_at < cutoff,
            func.coalesce(Measurement.started_at, Measurement.created_at) < cutoff,
        )
        .order_by(Measurement.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    failed = await session.scalars(
        update(Measurement)
        .where(Measurement.id.in_(stuck.scalar_subquery()))
        .values(status="failed", error_code="timeout", error_message=TIMEOUT_MESSAGE, completed_at=now)
        .returning(Measurement.id)
        .execution_options(synchronize_session=False)
    )
    return list(failed.all())


async def delete_expired_photos(
    session: AsyncSession,
    storage: ObjectStorage,
    *,
    older_than: timedelta,
    now: datetime | None = None,
    limit: int = 200,
) -> int:
    """Delete the photos of measurements finished more than ``older_than`` ago and clear their
    keys; the measurements themselves stay. Returns how many measurements lost their photos.

    Objects are deleted before the rows are committed; if the commit fails the next run deletes
    them again (deleting a missing object is not an error).
    """
    now = now or datetime.now(UTC)
    rows = (
        await session.scalars(
            select(Measurement)
            .where(
                Measurement.photos_deleted_at.is_(None),
                Measurement.completed_at.is_not(None),
                Measurement.completed_at < now - older_than,
            )
            .order_by(Measurement.completed_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    for measurement in rows:
        for key in (measurement.front_key, measurement.side_key):
            if key:
                await storage.delete(key)
        measurement.front_key = None
        measurement.side_key = None
        measurement.photos_deleted_at = now
    await session.flush()
    return len(rows)
