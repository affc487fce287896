"""The worker's side of a measurement: claim it, then store its result or its failure.

A claim moves the row to ``processing`` and increments ``attempts``; the new value is the
claim's fencing token. A result or failure is stored only while the row is still ``processing``
under that same token, so when a message is redelivered (its worker died, or seemed to) and a
second worker claims the row, at most one of them stores anything, and a row that a sweep has
already failed stays failed.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from uuid import UUID

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from core.rules.measurements import MEASUREMENT_KEYS
from db.models import Measurement
from db.models.measurement import BODY_EMBEDDING_DIMENSIONS, FINISHED
from db.services.measurements.errors import InvalidReading, MeasurementAbandoned

# A measurement whose photos crashed or stalled this many workers is failed instead of retried.
MAX_CLAIMS = 5
PROCESSING_ERROR_MESSAGE = "We could not process these photos. Please try again."
PHOTOS_UNAVAILABLE_MESSAGE = "The photos are no longer available; please upload them again."


class Claim(msgspec.Struct, frozen=True, kw_only=True):
    """What a worker needs to measure: ids and keys only, no photo bytes."""

    measurement_id: UUID
    token: int
    front_key: str
    side_key: str
    height_cm: float


class BodyReading(msgspec.Struct, frozen=True, kw_only=True):
    """What the body pipeline found, in plain types."""

    measurements: dict[str, float]
    confidence: dict[str, float]
    embedding: list[float]
    model_name: str
    model_version: str
    timings_ms: dict[str, float]


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def _fail(measurement: Measurement, code: str, message: str, now: datetime) -> None:
    measurement.status = "failed"
    measurement.error_code = code[:40]
    measurement.error_message = message[:2000]
    measurement.completed_at = now


async def claim_measurement(
    session: AsyncSession, measurement_id: UUID, *, now: datetime | None = None
) -> Claim | None:
    """Claim a measurement for processing (the row is locked until the caller commits).

    Returns None when there is nothing to do: no such row, or already ``ready`` or ``failed``.
    A row still ``processing`` is claimed again: its worker died before finishing.

    Raises:
        MeasurementAbandoned: the row was claimed ``MAX_CLAIMS`` times already (its photos crash
            or stall workers) or its photos are gone; it is now ``failed``, which the unit of
            work commits.
    """
    measurement = await session.get(Measurement, measurement_id, with_for_update=True, populate_existing=True)
    if measurement is None or measurement.status in FINISHED:
        return None
    now = _now(now)
    if measurement.attempts >= MAX_CLAIMS:
        _fail(measurement, "processing_error", PROCESSING_ERROR_MESSAGE, now)
        raise MeasurementAbandoned("claimed too many times")
    if measurement.front_key is None or measurement.side_key is None:
        _fail(measurement, "photos_unavailable", PHOTOS_UNAVAILABLE_MESSAGE, now)
        raise MeasurementAbandoned("photos missing")
    measurement.status = "processing"
    measurement.attempts += 1
    measurement.started_at = now
    await session.flush()
    return Claim(
        measurement_id=measurement.id,
        token=measurement.attempts,
        front_key=measurement.front_key,
        side_key=measurement.side_key,
        height_cm=measurement.height_cm,
    )


async def _claimed(session: AsyncSession, claim: Claim) -> Measurement | None:
    measurement = await session.get(
        Measurement, claim.measurement_id, with_for_update=True, populate_existing=True
    )
    if measurement is None or measurement.status != "processing" or measurement.attempts != claim.token:
        return None
    return measurement


def check_reading(reading: BodyReading) -> None:
    """Raises InvalidReading unless the reading has the 14 measurements (finite cm), their
    confidences (0..1) and a finite embedding of the right size."""
    for name, values in (("measurements", reading.measurements), ("confidence", reading.confidence)):
        if set(values) != set(MEASUREMENT_KEYS):
            raise InvalidReading(f"{name} keys differ from the 14 measurement keys")
        if not all(math.isfinite(v) for v in values.values()):
            raise InvalidReading(f"{name} has a value that is not a finite number")
    if not all(0.0 <= v <= 1.0 for v in reading.confidence.values()):
        raise InvalidReading("confidence outside 0..1")
    if len(reading.embedding) != BODY_EMBEDDING_DIMENSIONS or not all(
        math.isfinite(v) for v in reading.embedding
    ):
        raise InvalidReading(f"embedding is not {BODY_EMBEDDING_DIMENSIONS} finite numbers")


async def store_reading(
    session: AsyncSession, claim: Claim, reading: BodyReading, *, now: datetime | None = None
) -> Measurement | None:
    """Store the result of ``claim``: the measurement becomes ``ready``.

    Returns None (and stores nothing) when the claim is stale: the row was claimed again since,
    finished, or deleted.

    Raises:
        InvalidReading: the reading is malformed (nothing is stored).
    """
    check_reading(reading)
    measurement = await _claimed(session, claim)
    if measurement is None:
        return None
    measurement.status = "ready"
    measurement.measurements = {key: round(float(reading.measurements[key]), 2) for key in MEASUREMENT_KEYS}
    measurement.confidence = {key: round(float(reading.confidence[key]), 4) for key in MEASUREMENT_KEYS}
    measurement.embedding = [float(v) for v in reading.embedding]
    measurement.model_name = reading.model_name[:64]
    measurement.model_version = reading.model_version[:32]
    measurement.timings = {name: round(float(ms), 2) for name, ms in reading.timings_ms.items()}
    measurement.error_code = None
    measurement.error_message = None
    measurement.completed_at = _now(now)
    await session.flush()
    return measurement


async def store_failure(
    session: AsyncSession,
    claim: Claim,
    code: str,
    message: str,
    *,
    model_name: str | None = None,
    model_version: str | None = None,
    now: datetime | None = None,
) -> Measurement | None:
    """Store why ``claim`` could not be measured: the measurement becomes ``failed``.

    ``message`` is shown to the user. Returns None (and stores nothing) when the claim is stale.
    """
    measurement = await _claimed(session, claim)
    if measurement is None:
        return None
    _fail(measurement, code, message, _now(now))
    measurement.model_name = model_name
    measurement.model_version = model_version
    await session.flush()
    return measurement
