"""Worker metrics read over HTTP from real worker processes: task runs by outcome, durations and
attempts, queue length, lag and pending entries per consumer group, and the outbox backlog.

The workers here use a Redis database of their own, so no other test's worker takes their jobs
and the queue figures are exactly what these tests sent.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession
from taskiq import AsyncBroker
from taskiq.kicker import AsyncKicker

from core.ids import new_id
from core.settings import Settings
from db.engine import Database
from db.models import OutboxMessage
from db.outbox import outbox_backlog
from devstack.services import free_port
from tasks.runtime.factory import build_broker
from tasks.runtime.queues import queue_of, stream_name
from tests.conftest import run_task
from tests.support.stack import WorkerProcess
from tests.test_tasks_e2e import eventually

pytestmark = pytest.mark.anyio

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
METRICS_REDIS_DB = 9


@pytest.fixture
async def own_redis(settings: Settings) -> AsyncIterator[Settings]:
    """Settings whose Redis is a database no other test's worker reads, emptied before and after."""
    url = make_url(settings.redis_url or "").set(database=str(METRICS_REDIS_DB))
    isolated = msgspec.structs.replace(settings, redis_url=url.render_as_string(hide_password=False))
    client = Redis.from_url(isolated.redis_url or "")
    await client.flushdb()
    yield isolated
    await client.flushdb()
    await client.aclose()


@pytest.fixture
async def own_broker(own_redis: Settings) -> AsyncIterator[AsyncBroker]:
    broker = build_broker(own_redis)
    yield broker
    await broker.shutdown()


async def scrape(port: int) -> Samples:
    async with httpx.AsyncClient(timeout=15) as client:
        response = await client.get(f"http://127.0.0.1:{port}/metrics")
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def kick(broker: AsyncBroker, task_name: str, *args: Any) -> Any:
    """Send a job and wait for its final result (an error result is returned, not raised)."""
    kicker: AsyncKicker[Any, Any] = AsyncKicker(
        task_name=task_name, broker=broker, labels={"queue_name": stream_name(queue_of(task_name))}
    )
    task = await kicker.with_task_id(uuid.uuid4().hex).kiq(*args)
    return await task.wait_result(timeout=60)


def start_metrics_worker(
    start_worker: Callable[..., WorkerProcess], settings: Settings, port: int, **options: Any
) -> WorkerProcess:
    return start_worker(
        "critical,emails",
        REDIS_URL=settings.redis_url or "",
        WORKER_METRICS_PORT=str(port),
        WORKER_METRICS_HOST="127.0.0.1",
        **options,
    )


@pytest.mark.worker
async def test_a_worker_serves_its_task_queue_and_outbox_series(
    start_worker: Callable[..., WorkerProcess],
    own_redis: Settings,
    own_broker: AsyncBroker,
    committed_db: Database,
) -> None:
    port = free_port()
    worker = start_metrics_worker(start_worker, own_redis, port)
    assert await run_task(own_broker, "critical.test.ping", wait_seconds=60) == "pong", worker.log_text()
    retried, failed, outage = (f"metrics:{uuid.uuid4()}" for _ in range(3))
    assert (await kick(own_broker, "critical.test.flaky", retried, 1)).return_value == 2
    assert (await kick(own_broker, "critical.test.flaky", failed, 10)).is_err  # 3 attempts, all fail
    assert (await kick(own_broker, "critical.test.outage", outage, 1, "service")).return_value == 2
    # Waiting work for the analytics queue, which this worker does not serve: 2 undelivered, and
    # 1 delivered to a consumer that never acknowledges it.
    redis = Redis.from_url(own_redis.redis_url or "")
    analytics = stream_name("analytics")
    await redis.xgroup_create(analytics, "fashionistar", id="0", mkstream=True)
    for n in range(3):
        await redis.xadd(analytics, {"data": f"job {n}".encode()})
    await redis.xreadgroup("fashionistar", "gone", {analytics: ">"}, count=1)
    await redis.aclose()
    # A durable job whose send is not confirmed (dated ahead, so a running sweep leaves it be).
    async with committed_db.session_maker() as session, session.begin():
        session.add(
            OutboxMessage(
                job_id=new_id(),
                task_name="analytics.test.nothing",
                created_at=datetime.now(UTC) + timedelta(hours=1),
            )
        )

    samples = await scrape(port)

    def runs(task: str, outcome: str) -> float | None:
        return value(
            samples, "fashionistar_task_runs_total", queue="critical", task_name=task, outcome=outcome
        )

    assert runs("critical.test.ping", "succeeded") == 1
    assert runs("critical.test.flaky", "retried") == 1 + 2
    assert runs("critical.test.flaky", "succeeded") == 1
    assert runs("critical.test.flaky", "failed") == 1
    assert runs("critical.test.outage", "outage") == 1
    assert runs("critical.test.outage", "succeeded") == 1
    flaky = {"queue": "critical", "task_name": "critical.test.flaky"}
    assert value(samples, "fashionistar_task_duration_seconds_count", **flaky) == 5  # every run
    assert value(samples, "fashionistar_task_attempts_count", **flaky) == 2  # jobs that finished
    assert value(samples, "fashionistar_task_attempts_sum", **flaky) == 2 + 3
    assert value(samples, "fashionistar_task_attempts_bucket", **flaky, le="1.0") == 0

    assert value(samples, "fashionistar_queue_length", queue="critical") == 8  # runs, retries included
    assert value(samples, "fashionistar_queue_lag", queue="critical", group="fashionistar") == 0
    assert value(samples, "fashionistar_queue_pending", queue="critical", group="fashionistar") == 0
    assert value(samples, "fashionistar_queue_length", queue="analytics") == 3
    assert value(samples, "fashionistar_queue_lag", queue="analytics", group="fashionistar") == 2
    assert value(samples, "fashionistar_queue_pending", queue="analytics", group="fashionistar") == 1
    assert value(samples, "fashionistar_queue_length", queue="inference") == 0  # never used: no group
    assert value(samples, "fashionistar_queue_lag", queue="inference", group="fashionistar") is None

    assert (value(samples, "fashionistar_outbox_unsent") or 0) >= 1
    assert value(samples, "fashionistar_outbox_oldest_unsent_age_seconds") is not None
    assert value(samples, "fashionistar_backlog_read_ok", source="redis") == 1
    assert value(samples, "fashionistar_backlog_read_ok", source="database") == 1
    assert (value(samples, "process_resident_memory_bytes") or 0) > 0


@pytest.mark.worker
@pytest.mark.slow
async def test_each_worker_process_has_its_own_port_and_a_taken_port_only_costs_metrics(
    start_worker: Callable[..., WorkerProcess], own_redis: Settings, own_broker: AsyncBroker
) -> None:
    port = free_port()
    while not _is_free(port + 1):
        port = free_port()
    two = start_metrics_worker(start_worker, own_redis, port, processes=2)

    async def both_served() -> bool:
        try:
            first, second = await scrape(port), await scrape(port + 1)
        except httpx.TransportError:
            return False
        return bool(first) and bool(second)

    await eventually(both_served, within=60, step=0.5)
    # A second worker command on the same host with the same setting: its port is taken.
    clash = start_metrics_worker(start_worker, own_redis, port)

    async def clash_logged() -> bool:
        return "the port is taken" in clash.log_text()

    await eventually(clash_logged, within=60, step=0.5)
    # The worker without metrics still runs jobs: stop the other one and send another.
    two.stop()
    assert await run_task(own_broker, "critical.test.ping", wait_seconds=60) == "pong", clash.log_text()


async def test_outbox_backlog_counts_unsent_rows_and_the_oldest_ones_age(session: AsyncSession) -> None:
    before = await outbox_backlog(session)
    now = datetime.now(UTC)
    for created, dispatched in ((now - timedelta(days=1), None), (now, None), (now, now)):
        row = OutboxMessage(job_id=new_id(), task_name="critical.test.ping", created_at=created)
        row.dispatched_at = dispatched
        session.add(row)
    await session.flush()
    backlog = await outbox_backlog(session)
    assert backlog.unsent == before.unsent + 2
    assert 86_400 - 120 <= backlog.oldest_age_seconds <= 86_400 + 120
    rows = await session.scalars(select(OutboxMessage.job_id).where(OutboxMessage.dispatched_at.is_(None)))
    assert len(rows.all()) == backlog.unsent


def _is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
