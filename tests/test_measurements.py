"""Body measurements without the model: uploads (and every way one is refused), ownership, the
body profile, the worker's claim and result rules, the event stream, and the periodic upkeep."""

from __future__ import annotations

import io
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import msgspec
import pytest
from litestar import Litestar
from PIL import Image
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core import task_names
from core.adapters.storage import ObjectNotFound, ObjectStorage, build_private_storage
from core.jobs import job_buffer
from core.rules.measurements import MEASUREMENT_KEYS
from core.settings import Settings, SettingsError, load_settings
from db.engine import Database
from db.models import Measurement, OutboxMessage, User
from db.services.measurements import housekeeping, processing, uploads
from db.services.measurements.errors import InvalidReading, MeasurementAbandoned
from db.services.measurements.events import channel, publish_status
from db.services.measurements.processing import BodyReading, Claim
from tests.support.catalog import image_bytes
from tests.support.http import problem, serve
from tests.support.identity import bearer, login, make_user
from tests.support.images import metadata_of, phone_photo
from tests.test_catalog_images import png_header_only

pytestmark = pytest.mark.anyio

API = "/api/v1"


# --- helpers ------------------------------------------------------------------------------


class PhotoBytes:
    """An uploaded photo held in memory (what the API hands the service is a spooled file)."""

    def __init__(self, data: bytes) -> None:
        self._buffer = io.BytesIO(data)

    async def read(self, size: int = -1) -> bytes:
        return self._buffer.read(size)

    async def seek(self, offset: int) -> int:
        return self._buffer.seek(offset)


def photo(size: tuple[int, int] = (480, 720), fmt: str = "JPEG") -> bytes:
    return image_bytes(fmt, size)


def truncated_jpeg() -> bytes:
    data = image_bytes("JPEG", (900, 1200), quality=95)
    return data[: len(data) // 2]


def private_files(settings: Settings) -> set[Path]:
    root = settings.private_media_dir
    return {Path(folder) / name for folder, _, names in os.walk(root) for name in names}


async def signed_in(client: httpx.AsyncClient, session: AsyncSession) -> tuple[User, dict[str, str]]:
    user = await make_user(session)
    return user, bearer(await login(client, user.email))


async def upload(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    *,
    front: bytes | None = None,
    side: bytes | None = None,
    fields: dict[str, str] | None = None,
) -> httpx.Response:
    files = {}
    if front is not None:
        files["front"] = ("front.jpg", front, "image/jpeg")
    if side is not None:
        files["side"] = ("side.jpg", side, "image/jpeg")
    return await client.post(
        f"{API}/measurements",
        headers=auth,
        files=files,
        data=fields if fields is not None else {"height_cm": "172.5"},
    )


async def measurement_count(session: AsyncSession, user: User) -> int:
    return int(
        await session.scalar(
            select(func.count()).select_from(Measurement).where(Measurement.user_id == user.id)
        )
        or 0
    )


async def queued_measurements(session: AsyncSession) -> int:
    return int(
        await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.task_name == task_names.MEASURE_BODY)
        )
        or 0
    )


def reading(**changes: Any) -> BodyReading:
    values = {
        "measurements": {key: 50.0 + index for index, key in enumerate(MEASUREMENT_KEYS)},
        "confidence": dict.fromkeys(MEASUREMENT_KEYS, 0.9),
        "embedding": [1.0] + [0.0] * 31,
        "model_name": "body-measure",
        "model_version": "2026.11.1",
        "timings_ms": {"total": 812.5},
    }
    return BodyReading(**{**values, **changes})


async def new_measurement(
    session: AsyncSession, user: User, storage: ObjectStorage, settings: Settings, **fields: Any
) -> Measurement:
    """A measurement made through the upload service, photos stored (its job is not sent)."""
    with job_buffer():
        measurement = await uploads.create_measurement(
            session,
            storage,
            settings,
            user.id,
            front=PhotoBytes(photo()),
            side=PhotoBytes(photo()),
            height_cm=fields.pop("height_cm", 170.0),
            weight_kg=fields.pop("weight_kg", None),
        )
    for name, value in fields.items():
        setattr(measurement, name, value)
    await session.flush()
    return measurement


@pytest.fixture
def private_storage(settings: Settings) -> ObjectStorage:
    return build_private_storage(settings)


# --- uploads ------------------------------------------------------------------------------


async def test_upload_is_accepted_stored_privately_and_queued(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings, private_storage: ObjectStorage
) -> None:
    user, auth = await signed_in(client, session)
    front, side = photo(), photo((600, 800), "PNG")
    response = await upload(
        client, auth, front=front, side=side, fields={"height_cm": "172.5", "weight_kg": "68"}
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert response.headers["location"] == f"{API}/measurements/{body['id']}"
    assert uuid.UUID(body["id"]).version == 7
    assert body["status"] == "pending"
    assert body["height_cm"] == 172.5
    assert body["weight_kg"] == 68
    for name in ("measurements", "confidence", "error", "model", "completed_at"):
        assert body[name] is None
    assert body["created_at"]

    row = await session.get(Measurement, uuid.UUID(body["id"]))
    assert row is not None
    assert row.user_id == user.id
    assert row.front_key is not None
    assert row.side_key is not None
    assert row.front_key.endswith("front.jpg")
    assert row.side_key.endswith("side.png")
    for key, sent in ((row.front_key, front), (row.side_key, side)):
        with (
            Image.open(io.BytesIO(await private_storage.get(key))) as kept,
            Image.open(io.BytesIO(sent)) as ours,
        ):
            assert (kept.format, kept.size) == (ours.format, ours.size)
    # Personal photos are not under the public media folder, nor reachable at /media.
    assert not (settings.media_dir / row.front_key).exists()
    assert (await client.get(f"/media/{row.front_key}")).status_code == 404
    outbox = await session.scalar(
        select(OutboxMessage).where(OutboxMessage.task_name == task_names.MEASURE_BODY)
    )
    assert outbox is not None
    assert outbox.args == [body["id"]]

    # The owner reads it back; the same body.
    again = await client.get(response.headers["location"], headers=auth)
    assert again.status_code == 200
    assert again.json() == body


async def test_body_photos_are_stored_without_exif_gps_or_camera(
    client: httpx.AsyncClient, session: AsyncSession, private_storage: ObjectStorage
) -> None:
    _, auth = await signed_in(client, session)
    sent = phone_photo((720, 480), orientation=6)
    response = await upload(client, auth, front=sent, side=phone_photo((480, 720), orientation=1))
    assert response.status_code == 202, response.text
    row = await session.get(Measurement, uuid.UUID(response.json()["id"]))
    assert row is not None
    assert row.front_key is not None
    assert row.side_key is not None
    front = await private_storage.get(row.front_key)
    assert metadata_of(front) == {}
    assert metadata_of(await private_storage.get(row.side_key)) == {}
    with Image.open(io.BytesIO(front)) as upright:
        assert upright.size == (480, 720)  # the orientation is applied to the pixels


async def test_heic_and_exif_rotated_photos_are_accepted(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, auth = await signed_in(client, session)
    rotated = Image.new("RGB", (720, 480), (10, 120, 200))
    exif = rotated.getexif()
    exif[0x0112] = 6
    out = io.BytesIO()
    rotated.save(out, format="JPEG", exif=exif.tobytes())
    response = await upload(client, auth, front=out.getvalue(), side=photo(fmt="HEIF"))
    assert response.status_code == 202, response.text


def _bad_photo_cases() -> list[Any]:
    return [
        pytest.param(b"this is not an image, whatever the file name says", 415, id="text"),
        pytest.param(b"", 415, id="empty"),
        pytest.param(image_bytes("GIF", (400, 600)), 415, id="gif"),
        pytest.param(truncated_jpeg(), 422, id="truncated"),
        pytest.param(png_header_only(40_000, 40_000), 422, id="bomb"),
        pytest.param(image_bytes("PNG", (1, 1)), 422, id="1x1"),
        pytest.param(image_bytes("JPEG", (240, 900)), 422, id="too-narrow"),
    ]


@pytest.mark.parametrize("which", ["front", "side"])
@pytest.mark.parametrize(("data", "status"), _bad_photo_cases())
async def test_bad_photos_are_refused_and_nothing_is_kept(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings, which: str, data: bytes, status: int
) -> None:
    user, auth = await signed_in(client, session)
    before = private_files(settings)
    photos: dict[str, bytes] = {"front": photo(), "side": photo(), which: data}
    started = time.perf_counter()
    response = await upload(client, auth, front=photos["front"], side=photos["side"])
    elapsed = time.perf_counter() - started
    body = problem(response, status)
    assert which in body["detail"]
    if status == 422:
        assert body["errors"] == [{"field": which, "message": body["errors"][0]["message"]}]
    assert elapsed < 2.0  # refused from the header, without decoding gigapixels
    assert await measurement_count(session, user) == 0
    assert await queued_measurements(session) == 0
    assert private_files(settings) == before


@pytest.mark.parametrize(
    ("fields", "missing", "field"),
    [
        ({"height_cm": "170"}, "front", "front"),
        ({"height_cm": "170"}, "side", "side"),
        ({}, None, "height_cm"),
        ({"height_cm": "50"}, None, "height_cm"),
        ({"height_cm": "300"}, None, "height_cm"),
        ({"height_cm": "99.9"}, None, "height_cm"),
        ({"height_cm": "tall"}, None, "height_cm"),
        ({"height_cm": "nan"}, None, "height_cm"),
        ({"height_cm": "170", "weight_kg": "12"}, None, "weight_kg"),
        ({"height_cm": "170", "weight_kg": "heavy"}, None, "weight_kg"),
    ],
    ids=[
        "no-front",
        "no-side",
        "no-height",
        "height-50",
        "height-300",
        "height-99.9",
        "height-text",
        "height-nan",
        "weight-12",
        "weight-text",
    ],
)
async def test_missing_or_invalid_fields_are_422_naming_the_field(
    client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    fields: dict[str, str],
    missing: str | None,
    field: str,
) -> None:
    user, auth = await signed_in(client, session)
    before = private_files(settings)
    photos: dict[str, bytes | None] = {"front": photo(), "side": photo()}
    if missing:
        photos[missing] = None
    body = problem(await upload(client, auth, front=photos["front"], side=photos["side"], fields=fields), 422)
    assert field in [error["field"] for error in body["errors"]], body
    assert await measurement_count(session, user) == 0
    assert await queued_measurements(session) == 0
    assert private_files(settings) == before


async def test_a_photo_sent_as_a_plain_field_is_422(client: httpx.AsyncClient, session: AsyncSession) -> None:
    user, auth = await signed_in(client, session)
    response = await client.post(
        f"{API}/measurements",
        headers=auth,
        files={"side": ("side.jpg", photo(), "image/jpeg")},
        data={"height_cm": "170", "front": "not a file"},
    )
    body = problem(response, 422)
    assert "front" in [error["field"] for error in body["errors"]]
    assert await measurement_count(session, user) == 0


async def test_photo_over_the_size_limit_is_413(
    make_app: Callable[..., Litestar], session: AsyncSession, settings: Settings
) -> None:
    small = msgspec.structs.replace(settings, max_image_bytes=100_000)
    async with serve(make_app(settings=small)) as client:
        user, auth = await signed_in(client, session)
        before = private_files(settings)
        noise = io.BytesIO()
        Image.frombytes("RGB", (200, 200), os.urandom(200 * 200 * 3)).save(noise, format="PNG")
        assert 100_000 < len(noise.getvalue()) < small.measurement_request_max_bytes // 2
        body = problem(await upload(client, auth, front=photo(), side=noise.getvalue()), 413)
        assert "side" in body["detail"]
        # A body larger than two photos can be is refused while it streams in.
        huge = os.urandom(small.measurement_request_max_bytes + 1)
        problem(await upload(client, auth, front=huge, side=photo()), 413)
        assert await measurement_count(session, user) == 0
        assert await queued_measurements(session) == 0
        assert private_files(settings) == before


async def test_uploads_need_a_login(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    before = private_files(settings)
    problem(await upload(client, {}, front=photo(), side=photo()), 401)
    problem(
        await upload(client, {"Authorization": "Bearer forged.token.value"}, front=photo(), side=photo()), 401
    )
    for path in (f"{API}/measurements/{uuid.uuid4()}", f"{API}/me/body-profile"):
        problem(await client.get(path), 401)
    assert await session.scalar(select(func.count()).select_from(Measurement)) == 0
    assert await queued_measurements(session) == 0
    assert private_files(settings) == before


async def test_uploads_are_rate_limited_per_user(
    make_app: Callable[..., Litestar], session: AsyncSession, settings: Settings, redis: Redis
) -> None:
    limited = msgspec.structs.replace(settings, measurement_uploads_per_hour=2)
    async with serve(make_app(settings=limited)) as client:
        user, auth = await signed_in(client, session)
        _, other = await signed_in(client, session)
        for _ in range(2):
            assert (await upload(client, auth, front=photo(), side=photo())).status_code == 202
        refused = await upload(client, auth, front=photo(), side=photo())
        problem(refused, 429)
        assert 0 < int(refused.headers["retry-after"]) <= 3600
        assert await measurement_count(session, user) == 2
        # Someone else is not affected.
        assert (await upload(client, other, front=photo(), side=photo())).status_code == 202
    keys = [key async for key in redis.scan_iter(match="fashionistar:rl:measurements:*")]
    await redis.delete(*keys)


# --- reading -------------------------------------------------------------------------------


async def test_someone_elses_measurement_is_404_like_a_missing_one(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, owner = await signed_in(client, session)
    _, stranger = await signed_in(client, session)
    created = await upload(client, owner, front=photo(), side=photo())
    location = created.headers["location"]
    theirs = problem(await client.get(location, headers=stranger), 404)
    missing = problem(await client.get(f"{API}/measurements/{uuid.uuid4()}", headers=stranger), 404)
    assert {k: v for k, v in theirs.items() if k != "request_id"} == {
        k: v for k, v in missing.items() if k != "request_id"
    }
    problem(await client.get(f"{location}/events", headers=stranger), 404)
    assert (await client.get(location, headers=owner)).status_code == 200


async def test_body_profile_is_the_latest_ready_measurement(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings, private_storage: ObjectStorage
) -> None:
    user, auth = await signed_in(client, session)
    body = problem(await client.get(f"{API}/me/body-profile", headers=auth), 404)
    assert body["type"].endswith("body_profile_not_found")

    older = await new_measurement(session, user, private_storage, settings, height_cm=171.0)
    newer = await new_measurement(session, user, private_storage, settings, height_cm=172.0)
    pending = await new_measurement(session, user, private_storage, settings, height_cm=173.0)
    failed = await new_measurement(session, user, private_storage, settings, height_cm=174.0)
    for measurement in (older, newer, failed):
        claim = await processing.claim_measurement(session, measurement.id)
        assert claim is not None
        if measurement is failed:
            await processing.store_failure(session, claim, "no_person_detected", "We could not see anyone.")
        else:
            await processing.store_reading(session, claim, reading())
    await session.commit()

    profile = (await client.get(f"{API}/me/body-profile", headers=auth)).json()
    assert profile["id"] == str(newer.id)
    assert profile["status"] == "ready"
    assert set(profile["measurements"]) == set(MEASUREMENT_KEYS)
    assert set(profile["confidence"]) == set(MEASUREMENT_KEYS)
    assert profile["measurements"]["ankle_cm"] == 50.0
    assert profile["model"] == {"name": "body-measure", "version": "2026.11.1"}
    assert profile["error"] is None
    assert profile["completed_at"] is not None
    assert "embedding" not in profile

    failure = (await client.get(f"{API}/measurements/{failed.id}", headers=auth)).json()
    assert failure["status"] == "failed"
    assert failure["error"] == {"code": "no_person_detected", "message": "We could not see anyone."}
    assert failure["measurements"] is None
    assert (await client.get(f"{API}/measurements/{pending.id}", headers=auth)).json()["status"] == "pending"

    # Another user has no profile, whatever this one has.
    _, other = await signed_in(client, session)
    problem(await client.get(f"{API}/me/body-profile", headers=other), 404)


# --- the worker's rules ---------------------------------------------------------------------


async def test_claim_is_idempotent_and_only_the_latest_claim_stores(
    session: AsyncSession, settings: Settings, private_storage: ObjectStorage
) -> None:
    user = await make_user(session)
    measurement = await new_measurement(session, user, private_storage, settings)
    assert await processing.claim_measurement(session, uuid.uuid4()) is None

    first = await processing.claim_measurement(session, measurement.id)
    assert first is not None
    assert (first.token, measurement.status, measurement.attempts) == (1, "processing", 1)
    assert first.front_key == measurement.front_key
    # Redelivered (its worker died): claimed again, and the first claim can no longer store.
    second = await processing.claim_measurement(session, measurement.id)
    assert second is not None
    assert second.token == 2
    assert await processing.store_reading(session, first, reading()) is None
    assert await processing.store_failure(session, first, "low_quality", "blurry") is None
    assert measurement.status == "processing"

    stored = await processing.store_reading(session, second, reading())
    assert stored is measurement
    assert measurement.status == "ready"
    assert measurement.completed_at is not None
    assert len(measurement.embedding) == 32
    # Finished: not claimed again, and the result is not stored twice.
    assert await processing.claim_measurement(session, measurement.id) is None
    assert await processing.store_reading(session, second, reading(model_version="other")) is None
    assert (measurement.model_version, measurement.attempts) == ("2026.11.1", 2)


async def test_a_failed_measurement_is_not_redone(
    session: AsyncSession, settings: Settings, private_storage: ObjectStorage
) -> None:
    user = await make_user(session)
    measurement = await new_measurement(session, user, private_storage, settings)
    claim = await processing.claim_measurement(session, measurement.id)
    assert claim is not None
    await processing.store_failure(session, claim, "person_cut_off", "Your feet are not in the photo.")
    assert await processing.claim_measurement(session, measurement.id) is None
    assert (measurement.status, measurement.error_code) == ("failed", "person_cut_off")


async def test_a_measurement_that_keeps_killing_workers_is_failed(
    session: AsyncSession, settings: Settings, private_storage: ObjectStorage
) -> None:
    user = await make_user(session)
    measurement = await new_measurement(session, user, private_storage, settings)
    for _ in range(processing.MAX_CLAIMS):
        assert await processing.claim_measurement(session, measurement.id) is not None
    with pytest.raises(MeasurementAbandoned):
        await processing.claim_measurement(session, measurement.id)
    assert (measurement.status, measurement.error_code) == ("failed", "processing_error")


@pytest.mark.parametrize(
    "bad",
    [
        {"measurements": {"chest_cm": 90.0}},
        {"confidence": dict.fromkeys(MEASUREMENT_KEYS, 1.5)},
        {"measurements": dict.fromkeys(MEASUREMENT_KEYS, float("nan"))},
        {"embedding": [0.1] * 8},
    ],
    ids=["missing-keys", "confidence-range", "nan", "embedding-size"],
)
async def test_a_malformed_reading_is_never_stored(
    session: AsyncSession, settings: Settings, private_storage: ObjectStorage, bad: dict[str, Any]
) -> None:
    user = await make_user(session)
    measurement = await new_measurement(session, user, private_storage, settings)
    claim = await processing.claim_measurement(session, measurement.id)
    assert claim is not None
    with pytest.raises(InvalidReading):
        await processing.store_reading(session, claim, reading(**bad))
    assert measurement.status == "processing"


async def test_stuck_measurements_are_failed_with_timeout(
    session: AsyncSession, settings: Settings, private_storage: ObjectStorage
) -> None:
    user = await make_user(session)
    now = datetime.now(UTC)
    hour = timedelta(hours=1)
    old_pending = await new_measurement(session, user, private_storage, settings, created_at=now - 2 * hour)
    old_processing = await new_measurement(
        session, user, private_storage, settings, created_at=now - 3 * hour
    )
    reclaimed = await new_measurement(session, user, private_storage, settings, created_at=now - 3 * hour)
    fresh = await new_measurement(session, user, private_storage, settings)
    done = await new_measurement(session, user, private_storage, settings, created_at=now - 3 * hour)
    stale_claim = await processing.claim_measurement(session, old_processing.id, now=now - 2 * hour)
    await processing.claim_measurement(session, reclaimed.id, now=now - 5 * timedelta(minutes=1))
    done_claim = await processing.claim_measurement(session, done.id, now=now - 2 * hour)
    assert stale_claim is not None
    assert done_claim is not None
    await processing.store_reading(session, done_claim, reading())

    failed = await housekeeping.fail_stuck_measurements(session, older_than=hour, now=now)
    assert set(failed) == {old_pending.id, old_processing.id}
    for measurement in (old_pending, old_processing, reclaimed, fresh, done):
        await session.refresh(measurement)
    assert (old_pending.status, old_pending.error_code) == ("failed", "timeout")
    assert old_processing.error_code == "timeout"
    assert old_processing.completed_at == now
    assert (reclaimed.status, fresh.status, done.status) == ("processing", "pending", "ready")
    # The worker that was slow finishes after all: it stores nothing over the timeout.
    assert await processing.store_reading(session, stale_claim, reading()) is None
    assert await housekeeping.fail_stuck_measurements(session, older_than=hour, now=now) == []


async def test_photos_past_retention_are_deleted_and_their_keys_cleared(
    session: AsyncSession, settings: Settings, private_storage: ObjectStorage
) -> None:
    user = await make_user(session)
    now = datetime.now(UTC)
    days = timedelta(days=1)
    expired = await new_measurement(session, user, private_storage, settings)
    recent = await new_measurement(session, user, private_storage, settings)
    unfinished = await new_measurement(session, user, private_storage, settings, created_at=now - 40 * days)
    for measurement, finished in ((expired, now - 31 * days), (recent, now - 29 * days)):
        claim = await processing.claim_measurement(session, measurement.id)
        assert claim is not None
        await processing.store_reading(session, claim, reading(), now=finished)
    expired_keys = [expired.front_key, expired.side_key]

    count = await housekeeping.delete_expired_photos(session, private_storage, older_than=30 * days, now=now)
    assert count == 1
    assert (expired.front_key, expired.side_key, expired.photos_deleted_at) == (None, None, now)
    for key in expired_keys:
        assert key is not None
        with pytest.raises(ObjectNotFound):
            await private_storage.get(key)
    assert not (
        settings.private_media_dir / "measurements" / str(expired.id)
    ).exists()  # no empty folder left
    # The numbers stay; the other measurements keep their photos.
    assert expired.status == "ready"
    assert expired.measurements is not None
    for measurement in (recent, unfinished):
        assert measurement.front_key is not None
        assert await private_storage.get(measurement.front_key)
    assert (
        await housekeeping.delete_expired_photos(session, private_storage, older_than=30 * days, now=now) == 0
    )


async def test_a_measurement_whose_photos_are_gone_fails_instead_of_running(
    session: AsyncSession, settings: Settings, private_storage: ObjectStorage
) -> None:
    user = await make_user(session)
    measurement = await new_measurement(session, user, private_storage, settings, front_key=None)
    with pytest.raises(MeasurementAbandoned):
        await processing.claim_measurement(session, measurement.id)
    assert (measurement.status, measurement.error_code) == ("failed", "photos_unavailable")


async def test_deleting_a_user_deletes_their_measurements(
    session: AsyncSession, settings: Settings, private_storage: ObjectStorage
) -> None:
    user = await make_user(session)
    measurement = await new_measurement(session, user, private_storage, settings)
    await session.commit()
    await session.delete(user)
    await session.commit()
    assert await session.scalar(select(Measurement).where(Measurement.id == measurement.id)) is None


# --- the event stream ----------------------------------------------------------------------


def parse_events(text: str) -> list[dict[str, Any]]:
    """SSE frames as dicts: ``event``/``data`` fields, or ``comment`` for ``:`` lines."""
    frames = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        frame: dict[str, Any] = {}
        for line in block.splitlines():
            if line.startswith(":"):
                frame["comment"] = line[1:].strip()
            elif ":" in line:
                name, value = line.split(":", 1)
                frame[name] = value.strip()
        if frame:
            if "data" in frame:
                frame["data"] = msgspec.json.decode(frame["data"])
            frames.append(frame)
    return frames


@pytest.fixture
async def committed_client(
    make_app: Callable[..., Litestar], committed_db: Database
) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(make_app(database=committed_db)) as client:
        yield client


async def wait_for_listener(redis: Redis, measurement_id: uuid.UUID) -> None:
    """Until an event stream has subscribed to the measurement and sent its first event."""
    with anyio.fail_after(10):
        while True:
            counts = dict(await redis.pubsub_numsub(channel(measurement_id)))
            if counts.get(channel(measurement_id), 0) >= 1:
                break
            await anyio.sleep(0.02)
    # The stream reads the current state right after subscribing; let it, before changing it.
    await anyio.sleep(0.3)


async def test_event_stream_sends_the_state_then_each_change_and_ends_when_ready(
    committed_client: httpx.AsyncClient,
    committed_db: Database,
    settings: Settings,
    private_storage: ObjectStorage,
    redis: Redis,
) -> None:
    # Made without sending its job: this test plays the worker (a real one may be running).
    async with committed_db.session_maker() as session:
        user, auth = await signed_in(committed_client, session)
        measurement_id = (await new_measurement(session, user, private_storage, settings)).id
        await session.commit()
    received: list[httpx.Response] = []

    async def listen() -> None:
        received.append(
            await committed_client.get(f"{API}/measurements/{measurement_id}/events", headers=auth)
        )

    async def work() -> None:
        # What the worker does, step by step: commit, then announce.
        await wait_for_listener(redis, measurement_id)
        async with committed_db.session_maker() as session:
            claim = await processing.claim_measurement(session, measurement_id)
            await session.commit()
        assert claim is not None
        await publish_status(redis, measurement_id, "processing")
        # The stream re-reads the row on each announcement; changes closer together than that
        # read arrive as one (pending -> ready), which is all a client needs.
        await anyio.sleep(0.5)
        async with committed_db.session_maker() as session:
            await processing.store_reading(session, claim, reading())
            await session.commit()
        await publish_status(redis, measurement_id, "ready")

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(listen)
            tg.start_soon(work)
    response = received[0]
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [frame for frame in parse_events(response.text) if "event" in frame]
    assert [event["event"] for event in events] == ["status"] * 3
    assert [event["data"]["status"] for event in events] == ["pending", "processing", "ready"]
    assert events[-1]["data"]["id"] == str(measurement_id)
    assert set(events[-1]["data"]["measurements"]) == set(MEASUREMENT_KEYS)


async def test_event_stream_of_a_finished_measurement_is_one_event(
    committed_client: httpx.AsyncClient,
    committed_db: Database,
    settings: Settings,
    private_storage: ObjectStorage,
) -> None:
    async with committed_db.session_maker() as session:
        user, auth = await signed_in(committed_client, session)
        measurement = await new_measurement(session, user, private_storage, settings)
        claim = await processing.claim_measurement(session, measurement.id)
        assert claim is not None
        await processing.store_failure(
            session, claim, "bad_pose", "Stand with your arms away from your body."
        )
        await session.commit()
    response = await committed_client.get(f"{API}/measurements/{measurement.id}/events", headers=auth)
    events = parse_events(response.text)
    assert len(events) == 1
    assert events[0]["data"]["error"]["code"] == "bad_pose"


async def test_event_stream_keeps_alive_catches_lost_announcements_and_stops_at_its_limit(
    make_app: Callable[..., Litestar],
    committed_db: Database,
    settings: Settings,
    private_storage: ObjectStorage,
) -> None:
    quick = msgspec.structs.replace(
        settings, measurement_events_heartbeat_seconds=0.2, measurement_events_max_seconds=2
    )
    async with serve(make_app(database=committed_db, settings=quick)) as client:
        async with committed_db.session_maker() as session:
            user, auth = await signed_in(client, session)
            idle = await new_measurement(session, user, private_storage, settings)
            silent = await new_measurement(session, user, private_storage, settings)
            await session.commit()

        started = time.monotonic()
        response = await client.get(f"{API}/measurements/{idle.id}/events", headers=auth)
        elapsed = time.monotonic() - started
        frames = parse_events(response.text)
        assert [frame["data"]["status"] for frame in frames if "data" in frame] == ["pending"]
        assert sum(1 for frame in frames if frame.get("comment") == "keep-alive") >= 3
        assert 1.8 <= elapsed < 5

        async def finish_without_announcing() -> None:
            await anyio.sleep(0.5)
            async with committed_db.session_maker() as session:
                claim = await processing.claim_measurement(session, silent.id)
                assert claim is not None
                await processing.store_reading(session, claim, reading())
                await session.commit()

        async with anyio.create_task_group() as tg:
            tg.start_soon(finish_without_announcing)
            response = await client.get(f"{API}/measurements/{silent.id}/events", headers=auth)
        statuses = [frame["data"]["status"] for frame in parse_events(response.text) if "data" in frame]
        assert statuses == ["pending", "ready"]


# --- configuration and contracts ----------------------------------------------------------


def test_claims_carry_no_photo_bytes() -> None:
    assert set(Claim.__struct_fields__) == {"measurement_id", "token", "front_key", "side_key", "height_cm"}


@pytest.mark.parametrize(
    "environ",
    [
        {"MEDIA_DIR": "/srv/media", "PRIVATE_MEDIA_DIR": "/srv/media/private"},
        {"MEDIA_BACKEND": "s3", "S3_BUCKET": "media"},
        {"MEDIA_BACKEND": "s3", "S3_BUCKET": "media", "S3_PRIVATE_BUCKET": "media"},
    ],
    ids=["private-dir-inside-served-dir", "s3-without-private-bucket", "s3-same-bucket"],
)
def test_settings_refuse_private_photos_where_media_are_public(environ: dict[str, str]) -> None:
    with pytest.raises(SettingsError, match="PRIVATE"):
        load_settings({"APP_ENV": "test", **environ}, dotenv=None)
    load_settings(
        {"APP_ENV": "test", "MEDIA_DIR": "/srv/media", "PRIVATE_MEDIA_DIR": "/srv/private"}, dotenv=None
    )
