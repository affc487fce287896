"""Body measurement end to end: the API, a real inference worker running the body models on
rendered photo pairs, the database, Redis (jobs and status announcements)."""

from __future__ import annotations

import functools
import io
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import httpx
import numpy as np
import pytest
from litestar import Litestar
from redis.asyncio import Redis
from sqlalchemy import func, select
from taskiq import AsyncBroker

from core import task_names
from core.adapters.storage import build_private_storage
from core.jobs import Job, job_buffer
from core.rules.measurements import MEASUREMENT_KEYS, PLAUSIBLE_CM
from core.settings import Settings
from db.engine import Database
from db.models import Measurement
from db.services.measurements import uploads
from db.services.measurements.events import channel
from tasks.runtime.dispatch import BrokerDispatcher
from tests.conftest import run_task
from tests.support.http import serve
from tests.support.identity import bearer, login, make_user
from tests.support.stack import WorkerProcess
from tests.test_measurements import PhotoBytes, parse_events, wait_for_listener
from tests.test_tasks_e2e import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.worker]

API = "/api/v1"


class PhotoPair:
    def __init__(self, front: bytes, side: bytes, height_cm: float) -> None:
        self.front = front
        self.side = side
        self.height_cm = height_cm


@functools.cache
def _render(seed: int) -> Any:
    from training.body.anthropometry import sample_body
    from training.body.render import render_pair
    from training.body.scene import Camera, Look, Pose

    rng = np.random.default_rng(seed)
    return render_pair(sample_body(rng), rng, setup=(Pose(), Camera(fill=0.75), Look()))


def rendered_pair(seed: int = 7) -> PhotoPair:
    """A front and a side photo (JPEG) of one synthetic person, in a plain room."""
    pair = _render(seed)
    return PhotoPair(pair.front.jpeg, pair.side.jpeg, pair.body.measurements["height_cm"])


def phone_pair(seed: int = 7) -> PhotoPair:
    """The same photos as a phone may send them: the front as HEIC, the side stored sideways
    with an EXIF orientation that turns it upright."""
    pair = _render(seed)
    front = io.BytesIO()
    pair.front.image.save(front, format="HEIF", quality=90)
    sideways = pair.side.image.rotate(90, expand=True)
    exif = sideways.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    side = io.BytesIO()
    sideways.save(side, format="JPEG", quality=92, exif=exif.tobytes())
    return PhotoPair(front.getvalue(), side.getvalue(), pair.body.measurements["height_cm"])


@pytest.fixture
async def api(make_app: Callable[..., Litestar], committed_db: Database) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(make_app(database=committed_db)) as client:
        yield client


async def new_user(client: httpx.AsyncClient, db: Database) -> tuple[Any, dict[str, str]]:
    async with db.session_maker() as session:
        user = await make_user(session)
    return user, bearer(await login(client, user.email))


async def upload_pair(client: httpx.AsyncClient, auth: dict[str, str], pair: PhotoPair) -> httpx.Response:
    return await client.post(
        f"{API}/measurements",
        headers=auth,
        files={
            "front": ("front.jpg", pair.front, "image/jpeg"),
            "side": ("side.jpg", pair.side, "image/jpeg"),
        },
        data={"height_cm": f"{pair.height_cm:.1f}"},
    )


async def settled(client: httpx.AsyncClient, location: str, auth: dict[str, str], within: float = 60) -> Any:
    async def finished() -> dict[str, Any] | None:
        body: dict[str, Any] = (await client.get(location, headers=auth)).json()
        return body if body["status"] in ("ready", "failed") else None

    return await eventually(finished, within=within, step=0.1)


async def test_a_photo_pair_is_measured(
    worker: WorkerProcess, api: httpx.AsyncClient, committed_db: Database
) -> None:
    pair = rendered_pair()
    _, auth = await new_user(api, committed_db)
    response = await upload_pair(api, auth, pair)
    assert response.status_code == 202, response.text
    location = response.headers["location"]
    assert response.json()["status"] == "pending"

    body = await settled(api, location, auth)
    assert body["status"] == "ready", body
    assert set(body["measurements"]) == set(MEASUREMENT_KEYS)
    for key, value in body["measurements"].items():
        low, high = PLAUSIBLE_CM[key]
        assert low <= value <= high, (key, value)
    assert all(0.0 <= c <= 1.0 for c in body["confidence"].values())
    assert body["model"]["name"] == "body-measure"
    assert body["model"]["version"]
    assert body["error"] is None
    assert body["completed_at"] >= body["created_at"]

    assert (await api.get(f"{API}/me/body-profile", headers=auth)).json() == body
    _, stranger = await new_user(api, committed_db)
    assert (await api.get(location, headers=stranger)).status_code == 404
    assert (await api.get(f"{API}/me/body-profile", headers=stranger)).status_code == 404

    async with committed_db.session_maker() as session:
        row = await session.get(Measurement, uuid.UUID(body["id"]))
    assert row is not None
    assert row.attempts == 1
    assert len(row.embedding) == 32
    assert set(row.timings or {}) >= {"decode", "models", "geometry"}


async def test_phone_photos_heic_and_exif_rotated_are_measured_like_the_originals(
    worker: WorkerProcess, api: httpx.AsyncClient, committed_db: Database
) -> None:
    _, auth = await new_user(api, committed_db)
    results = []
    for pair in (rendered_pair(), phone_pair()):
        response = await upload_pair(api, auth, pair)
        assert response.status_code == 202, response.text
        results.append(await settled(api, response.headers["location"], auth))
    original, phone = results
    assert phone["status"] == "ready", phone
    for key in MEASUREMENT_KEYS:
        # Same person, same pixels (up to compression): the same measurements within a few percent.
        assert phone["measurements"][key] == pytest.approx(original["measurements"][key], rel=0.05), key


async def test_photos_without_a_person_fail_with_a_clear_code(
    worker: WorkerProcess, api: httpx.AsyncClient, committed_db: Database
) -> None:
    from tests.support.catalog import image_bytes

    _, auth = await new_user(api, committed_db)
    empty_room = image_bytes("JPEG", (720, 1280))
    response = await upload_pair(api, auth, PhotoPair(empty_room, empty_room, 170.0))
    assert response.status_code == 202, response.text
    body = await settled(api, response.headers["location"], auth)
    assert body["status"] == "failed"
    assert body["error"]["code"] in ("no_person_detected", "low_quality")
    assert body["error"]["message"]
    assert body["measurements"] is None
    assert (await api.get(f"{API}/me/body-profile", headers=auth)).status_code == 404


async def test_event_stream_follows_the_worker_to_ready(
    worker: WorkerProcess,
    api: httpx.AsyncClient,
    committed_db: Database,
    settings: Settings,
    broker: AsyncBroker,
    redis: Redis,
) -> None:
    pair = rendered_pair()
    user, auth = await new_user(api, committed_db)
    # Created with its job held back, so the stream is open before the worker starts on it.
    async with committed_db.session_maker() as session:
        with job_buffer():
            measurement = await uploads.create_measurement(
                session,
                build_private_storage(settings),
                settings,
                user.id,
                front=PhotoBytes(pair.front),
                side=PhotoBytes(pair.side),
                height_cm=pair.height_cm,
            )
        await session.commit()
    received: list[httpx.Response] = []

    async def listen() -> None:
        received.append(await api.get(f"{API}/measurements/{measurement.id}/events", headers=auth))

    async def start_the_job() -> None:
        await wait_for_listener(redis, measurement.id)
        await BrokerDispatcher(broker).send(
            Job(task_name=task_names.MEASURE_BODY, args=(str(measurement.id),))
        )

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(listen)
            tg.start_soon(start_the_job)
    events = [frame["data"] for frame in parse_events(received[0].text) if "data" in frame]
    statuses = [event["status"] for event in events]
    # Announcements closer together than the stream's re-read arrive as one change.
    assert statuses in (["pending", "processing", "ready"], ["pending", "ready"]), statuses
    assert set(events[-1]["measurements"]) == set(MEASUREMENT_KEYS)


async def test_a_worker_killed_mid_measurement_still_ends_ready_with_one_result(
    worker: WorkerProcess,
    start_worker: Callable[..., WorkerProcess],
    api: httpx.AsyncClient,
    committed_db: Database,
    settings: Settings,
    broker: AsyncBroker,
    redis: Redis,
) -> None:
    pair = rendered_pair()
    user, auth = await new_user(api, committed_db)
    # Only workers of this test serve the inference queue while it runs.
    worker.stop()
    first = start_worker(queues="inference")
    second: WorkerProcess | None = None
    try:
        async with redis.pubsub() as pubsub:
            # Every measurement's channel: the id is only known once the upload answers.
            await pubsub.psubscribe("measurement:*")
            response = await upload_pair(api, auth, pair)
            assert response.status_code == 202, response.text
            measurement_id = uuid.UUID(response.json()["id"])
            with anyio.fail_after(90):  # the first worker loads its models first
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message and message["channel"] == channel(measurement_id):
                        assert '"processing"' in message["data"]
                        break
        # Claimed and measuring: the machine dies.
        first.kill()
        async with committed_db.session_maker() as session:
            row = await session.get(Measurement, measurement_id)
            assert row is not None
            assert (row.status, row.attempts) == ("processing", 1)

        second = start_worker(queues="inference")
        body = await settled(
            api, response.headers["location"], auth, within=settings.task_redelivery_idle_seconds + 90
        )
        assert body["status"] == "ready", body
        assert set(body["measurements"]) == set(MEASUREMENT_KEYS)
        await anyio.sleep(settings.task_redelivery_idle_seconds + 1)  # room for a third delivery
        async with committed_db.session_maker() as session:
            row = await session.get(Measurement, measurement_id)
            count = await session.scalar(
                select(func.count()).select_from(Measurement).where(Measurement.user_id == user.id)
            )
        assert row is not None
        assert (row.status, row.attempts, count) == ("ready", 2, 1)
        assert row.completed_at is not None
        assert "redelivering a message a worker did not finish" in second.log_text()
    finally:
        first.kill()
        if second is not None:
            second.stop()
        worker.start()
        assert await run_task(broker, "critical.test.ping", wait_seconds=90) == "pong"
