"""Background work end to end: real Redis, real taskiq worker processes, real PostgreSQL."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import anyio
import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select
from taskiq import AsyncBroker

from core.jobs import Job, defer
from core.settings import Settings
from db.engine import Database
from db.models import OutboxMessage
from db.outbox import sweep_outbox
from db.uow import unit_of_work
from devstack.services import free_port
from tasks.runtime.dispatch import BrokerDispatcher
from tasks.runtime.factory import build_broker
from tests.conftest import run_task
from tests.support.stack import WorkerProcess

pytestmark = [pytest.mark.anyio, pytest.mark.worker]


class PlannedRollback(Exception):
    pass


async def eventually(check: Callable[[], Awaitable[Any]], *, within: float, step: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy, or fail after ``within`` seconds."""
    with anyio.fail_after(within):
        while True:
            value = await check()
            if value:
                return value
            await anyio.sleep(step)


async def test_job_of_a_rolled_back_transaction_never_runs_and_a_committed_one_runs_once(
    worker: WorkerProcess, committed_db: Database, dispatcher: BrokerDispatcher, redis: Redis
) -> None:
    rolled_back, committed = f"rb:{uuid.uuid4()}", f"ok:{uuid.uuid4()}"

    async def work_then_fail() -> None:
        async with unit_of_work(committed_db.session_maker, dispatcher) as session:
            await session.execute(select(1))
            defer("critical.test.record", rolled_back)
            raise PlannedRollback

    with pytest.raises(PlannedRollback):
        await work_then_fail()

    async with unit_of_work(committed_db.session_maker, dispatcher) as session:
        await session.execute(select(1))
        defer("critical.test.record", committed)

    # Same stream, sent later: once it has run, the rolled-back job would have run too.
    await eventually(lambda: redis.get(committed), within=20)
    await anyio.sleep(1.0)  # room for a duplicate delivery to show up
    assert await redis.get(committed) == "1"
    assert await redis.get(rolled_back) is None


async def test_durable_job_is_in_the_outbox_and_marked_dispatched(
    worker: WorkerProcess, committed_db: Database, dispatcher: BrokerDispatcher, redis: Redis
) -> None:
    key = f"durable:{uuid.uuid4()}"
    async with unit_of_work(committed_db.session_maker, dispatcher):
        job = defer("emails.test.record_email", key, durable=True)

    await eventually(lambda: redis.get(key), within=20)
    async with committed_db.session_maker() as session:
        row = await session.scalar(select(OutboxMessage).where(OutboxMessage.job_id == job.job_id))
    assert row is not None
    assert row.dispatched_at is not None
    assert row.task_name == "emails.test.record_email"


async def test_outbox_row_whose_send_was_lost_is_picked_up_by_the_sweeper(
    worker: WorkerProcess,
    committed_db: Database,
    settings: Settings,
    broker: AsyncBroker,
    redis: Redis,
) -> None:
    key = f"lost:{uuid.uuid4()}"
    job = await commit_while_redis_is_unreachable(committed_db, settings, "critical.test.record", key)

    async with committed_db.session_maker() as session:
        row = await session.scalar(select(OutboxMessage).where(OutboxMessage.job_id == job.job_id))
        assert row is not None
        assert row.dispatched_at is None  # committed, never sent
    await anyio.sleep(1.0)
    assert await redis.get(key) is None

    # The periodic sweep task, run by the real worker with its own resources.
    swept = await run_task(broker, "critical.maintenance.sweep_outbox")
    assert swept["sent"] == 1
    await eventually(lambda: redis.get(key), within=20)
    assert await redis.get(key) == "1"

    async with committed_db.session_maker() as session:
        pending = await session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.dispatched_at.is_(None))
        )
    assert pending == 0
    # A second sweep finds nothing to send.
    again = await sweep_outbox(committed_db.session_maker, BrokerDispatcher(broker), min_age=timedelta(0))
    assert again.sent == 0


async def test_scheduler_runs_the_outbox_sweep_on_its_own(
    worker: WorkerProcess,
    start_worker: Callable[..., WorkerProcess],
    committed_db: Database,
    settings: Settings,
    redis: Redis,
) -> None:
    key = f"scheduled:{uuid.uuid4()}"
    await commit_while_redis_is_unreachable(committed_db, settings, "critical.test.record", key)

    scheduler = start_worker(scheduler=True, OUTBOX_SWEEP_INTERVAL_SECONDS="1")
    try:
        await eventually(lambda: redis.get(key), within=30)
    finally:
        scheduler.stop()
    assert await redis.get(key) == "1"


async def test_failing_task_is_retried_with_growing_measured_gaps(
    worker: WorkerProcess, broker: AsyncBroker, settings: Settings, redis: Redis
) -> None:
    key = f"flaky:{uuid.uuid4()}"
    await BrokerDispatcher(broker).send(_job("critical.test.flaky", key, 2))

    runs = await eventually(lambda: _runs_if(redis, key, 3), within=30)
    gaps = [b - a for a, b in itertools.pairwise(runs)]
    base = settings.task_retry_base_delay_seconds
    # Attempt 2 waits within [base/2, base], attempt 3 within [base, 2*base] (plus overhead).
    assert base / 2 <= gaps[0] < base + 0.5, gaps
    assert base <= gaps[1] < 2 * base + 0.5, gaps
    assert gaps[1] > gaps[0], gaps
    # It succeeded on the third run and is not run again.
    await anyio.sleep(2 * base + 0.5)
    assert await redis.llen(key) == 3


async def test_task_that_always_fails_stops_after_three_attempts(
    worker: WorkerProcess, broker: AsyncBroker, settings: Settings, redis: Redis
) -> None:
    key = f"doomed:{uuid.uuid4()}"
    await BrokerDispatcher(broker).send(_job("critical.test.flaky", key, 100))
    await eventually(lambda: _runs_if(redis, key, 3), within=30)
    await anyio.sleep(4 * settings.task_retry_base_delay_seconds + 1)
    assert await redis.llen(key) == 3


async def test_worker_killed_mid_task_has_its_message_redelivered(
    start_worker: Callable[..., WorkerProcess], broker: AsyncBroker, settings: Settings, redis: Redis
) -> None:
    key = f"stall:{uuid.uuid4()}"
    first = start_worker(queues="analytics")
    await BrokerDispatcher(broker).send(_job("analytics.test.stall_first_run", key))
    started = await eventually(lambda: redis.lrange(f"{key}:pids", 0, -1), within=60)
    first.kill()
    assert first.process is not None
    assert first.process.poll() is not None

    second = start_worker(queues="analytics")
    # Redelivery happens once the message has been idle for TASK_REDELIVERY_IDLE_SECONDS.
    await eventually(lambda: redis.get(f"{key}:done"), within=settings.task_redelivery_idle_seconds + 30)
    pids = await redis.lrange(f"{key}:pids", 0, -1)
    assert len(pids) == 2
    assert pids[0] == started[0]
    assert pids[1] != pids[0]  # a different process finished it
    await anyio.sleep(settings.task_redelivery_idle_seconds + 1)
    assert await redis.get(f"{key}:done") == "1"  # acknowledged: not delivered a third time
    second.stop()
    assert "redelivering a message a worker did not finish" in second.log_text()


async def test_a_task_longer_than_the_redelivery_idle_time_runs_once(
    start_worker: Callable[..., WorkerProcess], broker: AsyncBroker, settings: Settings, redis: Redis
) -> None:
    """The running worker keeps claiming its message, so a second idle worker never takes it."""
    workers = [start_worker(queues="analytics"), start_worker(queues="analytics")]
    try:
        key = f"long:{uuid.uuid4()}"
        seconds = settings.task_redelivery_idle_seconds * 2
        await BrokerDispatcher(broker).send(_job("analytics.test.long_run", key, seconds))
        await eventually(lambda: redis.get(f"{key}:done"), within=seconds + 60)
        await anyio.sleep(settings.task_redelivery_idle_seconds + 1)
        assert await redis.lrange(f"{key}:pids", 0, -1) == [(await redis.lrange(f"{key}:pids", 0, 0))[0]]
        assert await redis.get(f"{key}:done") == "1"
    finally:
        for worker in workers:
            worker.stop()


async def test_worker_uses_its_own_database_unit_of_work(worker: WorkerProcess, broker: AsyncBroker) -> None:
    assert isinstance(await run_task(broker, "critical.test.count_outbox"), int)


# --- helpers --------------------------------------------------------------------------------


async def commit_while_redis_is_unreachable(
    db: Database, settings: Settings, task_name: str, *args: Any
) -> Job:
    """Commit a durable job while the broker's Redis cannot be reached (a real client pointed
    at a port nobody listens on): the outbox row commits, the send fails."""
    dead = build_broker(
        msgspec_replace(
            settings, redis_url=f"redis://127.0.0.1:{free_port()}/0", redis_socket_timeout_seconds=0.5
        )
    )
    try:
        async with unit_of_work(db.session_maker, BrokerDispatcher(dead)):
            return defer(task_name, *args, durable=True)
    finally:
        await dead.shutdown()


def _job(task_name: str, *args: Any) -> Job:
    return Job(task_name=task_name, args=args)


async def _runs_if(redis: Redis, key: str, count: int) -> list[float] | None:
    values = await redis.lrange(key, 0, -1)
    return [float(v) for v in values] if len(values) >= count else None


def msgspec_replace(settings: Settings, **changes: Any) -> Settings:
    import msgspec

    return msgspec.structs.replace(settings, **changes)
