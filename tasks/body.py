"""Body measurement: the inference task, and its periodic upkeep (queue ``critical``).

``inference.body.measure`` claims the measurement, reads its photos from private storage, runs
the body pipeline in a thread, stores the result or the reason it failed, commits, and only then
announces the new status on Redis. It may run more than once for one measurement (a redelivery
after a worker died): a finished measurement is left alone, and only the latest claim can store
a result. Photos and measurements are personal data; neither is ever logged.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from uuid import UUID

import anyio
from taskiq import Context, TaskiqDepends

from core.adapters.storage import ObjectNotFound
from core.jobs import defer
from core.logging import get_logger
from core.settings import get_settings
from core.task_names import REFRESH_SHOPPER_SIZES
from db.services.measurements.errors import InvalidReading, MeasurementAbandoned
from db.services.measurements.events import publish_status
from db.services.measurements.housekeeping import delete_expired_photos, fail_stuck_measurements
from db.services.measurements.processing import (
    PHOTOS_UNAVAILABLE_MESSAGE,
    PROCESSING_ERROR_MESSAGE,
    BodyReading,
    Claim,
    check_reading,
    claim_measurement,
    store_failure,
    store_reading,
)
from inference.body_measure.errors import MeasurementRejected
from inference.body_measure.measurer import BodyMeasurer, BodyResult
from inference.memory import release_freed_memory
from tasks.runtime.broker import queue_task
from tasks.runtime.resources import Models, Resources

log = get_logger(__name__)

PHOTO_BATCH = 200


class Failure(Exception):
    """Why a claimed measurement could not be measured (stored as its error)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code)
        self.code = code
        self.message = message


def _reading(result: BodyResult) -> BodyReading:
    reading = BodyReading(
        measurements={key: float(value) for key, value in result.measurements.items()},
        confidence={key: float(value) for key, value in result.confidence.items()},
        embedding=[float(v) for v in result.embedding.reshape(-1)],
        model_name=result.model,
        model_version=result.version,
        timings_ms=dict(result.timings_ms),
    )
    check_reading(reading)
    return reading


def _measure(body: BodyMeasurer, front: bytes, side: bytes, height_cm: float) -> BodyResult:
    try:
        return body.measure(front, side, height_cm)
    finally:
        # decoded photos and masks are tens of MB: give them back rather than keep the peak
        release_freed_memory()


def _last_attempt(context: Context, max_attempts: int) -> bool:
    labels = context.message.labels
    return int(labels.get("attempt", 1)) >= int(labels.get("max_attempts", max_attempts))


async def _take_reading(
    resources: Resources, models: Models, claim: Claim, context: Context, measurement_id: str
) -> BodyReading | Failure:
    """The body reading of the claimed photos, or the failure to store in its place.

    Raises:
        Exception: an unexpected error before the last attempt, for the task to be retried.
    """
    try:
        try:
            front = await resources.private_storage.get(claim.front_key)
            side = await resources.private_storage.get(claim.side_key)
        except ObjectNotFound:
            raise Failure("photos_unavailable", PHOTOS_UNAVAILABLE_MESSAGE) from None
        try:
            result = await anyio.to_thread.run_sync(
                _measure, models.body, front, side, claim.height_cm, limiter=models.body_limiter
            )
        except MeasurementRejected as exc:
            raise Failure(exc.code, exc.message) from None
        finally:
            del front, side
        return _reading(result)
    except Failure as exc:
        return exc
    except InvalidReading:
        # The pipeline broke its own contract; running it again gives the same answer.
        log.exception("body pipeline returned a malformed reading", measurement_id=measurement_id)
        return Failure("processing_error", PROCESSING_ERROR_MESSAGE)
    except Exception:
        if not _last_attempt(context, resources.settings.task_max_attempts):
            raise
        log.exception("body measurement failed on its last attempt", measurement_id=measurement_id)
        return Failure("processing_error", PROCESSING_ERROR_MESSAGE)


@queue_task("inference", "body.measure")
async def measure_body(
    measurement_id: str, resources: Resources, context: Annotated[Context, TaskiqDepends()]
) -> str:
    """Measure one measurement's photos (idempotent). Returns what happened: ``ready``,
    ``failed``, ``nothing_to_do`` (finished or missing) or ``superseded`` (claimed again since).

    Unusable photos are a stored failure, not a task failure. An unexpected error is retried;
    on the last attempt it is stored as ``processing_error``.
    """
    models = resources.require_models()
    key = UUID(measurement_id)
    try:
        async with resources.uow() as session:
            claim = await claim_measurement(session, key)
    except MeasurementAbandoned as exc:
        log.warning("measurement abandoned", measurement_id=measurement_id, reason=exc.detail)
        await publish_status(resources.redis, key, "failed")
        return "failed"
    if claim is None:
        return "nothing_to_do"
    await publish_status(resources.redis, key, "processing")

    outcome = await _take_reading(resources, models, claim, context, measurement_id)

    async with resources.uow() as session:
        if isinstance(outcome, BodyReading):
            stored = await store_reading(session, claim, outcome)
            if stored is not None:
                # A new body shape may move the shopper to another cell of "shoppers like me".
                defer(REFRESH_SHOPPER_SIZES, str(stored.user_id), durable=True)
        else:
            stored = await store_failure(
                session,
                claim,
                outcome.code,
                outcome.message,
                model_name=models.body.name,
                model_version=models.body.version,
            )
    if stored is None:
        return "superseded"
    await publish_status(resources.redis, key, stored.status)
    log.info(
        "body measured",
        measurement_id=measurement_id,
        status=stored.status,
        error_code=stored.error_code,
        timings_ms=outcome.timings_ms if isinstance(outcome, BodyReading) else None,
    )
    return stored.status


@queue_task(
    "critical",
    "body.fail_stuck",
    schedule=[{"interval": get_settings().measurement_sweep_interval_seconds}],
    max_attempts="1",  # the next sweep is the retry
)
async def fail_stuck_task(resources: Resources) -> int:
    """Fail (``timeout``) measurements pending or processing for longer than MEASUREMENT_TIMEOUT_SECONDS."""
    async with resources.uow() as session:
        failed = await fail_stuck_measurements(
            session, older_than=timedelta(seconds=resources.settings.measurement_timeout_seconds)
        )
    for measurement_id in failed:
        await publish_status(resources.redis, measurement_id, "failed")
    if failed:
        log.warning("measurements timed out", count=len(failed))
    return len(failed)


@queue_task(
    "critical",
    "body.delete_expired_photos",
    schedule=[{"interval": 3600}],
    max_attempts="1",  # the next run is the retry
)
async def delete_expired_photos_task(resources: Resources) -> int:
    """Delete the photos of measurements finished more than MEASUREMENT_PHOTO_RETENTION_DAYS ago."""
    retention = timedelta(days=resources.settings.measurement_photo_retention_days)
    total = 0
    while True:
        async with resources.uow() as session:
            count = await delete_expired_photos(
                session, resources.private_storage, older_than=retention, limit=PHOTO_BATCH
            )
        total += count
        if count < PHOTO_BATCH:
            break
    if total:
        log.info("expired body photos deleted", measurements=total)
    return total
