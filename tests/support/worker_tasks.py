"""Tasks that exist only for the tests; the worker imports them with ``--module``.

They record what happened in Redis so a test can observe the worker from outside.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

import anyio
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from core.errors import ServiceUnavailable
from db.models import OutboxMessage
from tasks.runtime.broker import queue_task
from tasks.runtime.resources import Resources


@queue_task("critical", "test.ping")
async def ping() -> str:
    return "pong"


@queue_task("critical", "test.record")
async def record(key: str, resources: Resources) -> int:
    """Count executions under ``key``."""
    return int(await resources.redis.incr(key))


@queue_task("emails", "test.record_email")
async def record_email(key: str, resources: Resources) -> int:
    return int(await resources.redis.incr(key))


@queue_task("critical", "test.flaky")
async def flaky(key: str, failures: int, resources: Resources) -> int:
    """Fail the first ``failures`` runs; every run appends its start time to ``key``."""
    runs = int(await resources.redis.rpush(key, f"{time.time():.6f}"))
    if runs <= failures:
        raise RuntimeError(f"planned failure {runs} of {failures}")
    return runs


@queue_task("analytics", "test.stall_first_run")
async def stall_first_run(key: str, resources: Resources) -> int:
    """The first delivery stalls (the test kills its worker); later deliveries complete."""
    deliveries = int(await resources.redis.rpush(f"{key}:pids", os.getpid()))
    if deliveries == 1:
        await asyncio.sleep(120)
    return int(await resources.redis.incr(f"{key}:done"))


@queue_task("analytics", "test.long_run")
async def long_run(key: str, seconds: float, resources: Resources) -> int:
    """Runs longer than the redelivery idle time; counts its deliveries."""
    await resources.redis.rpush(f"{key}:pids", os.getpid())
    await asyncio.sleep(seconds)
    return int(await resources.redis.incr(f"{key}:done"))


@queue_task("critical", "test.count_outbox")
async def count_outbox(resources: Resources) -> int:
    """Uses the worker's own database engine through a unit of work."""
    async with resources.uow() as session:
        return int(await session.scalar(select(func.count()).select_from(OutboxMessage)) or 0)


@queue_task("critical", "test.outage")
async def outage(key: str, failures: int, kind: str, resources: Resources) -> int:
    """The first ``failures`` runs fail for an outage: PostgreSQL gone (``kind="database"``: a real
    connect to a Unix socket nobody serves) or a ``ServiceUnavailable`` (``kind="service"``)."""
    runs = int(await resources.redis.rpush(key, f"{time.time():.6f}"))
    if runs <= failures:
        if kind == "service":
            raise ServiceUnavailable("the payment provider is down")
        engine = create_async_engine(
            f"postgresql+asyncpg://postgres@/none?host=/tmp/no-postgres-{os.getpid()}"
        )
        try:
            async with engine.connect() as conn:
                await conn.execute(select(1))
        finally:
            await engine.dispose()
    return runs


@queue_task("critical", "test.fail_when_told")
async def fail_when_told(folder: str) -> str:
    """The first run says it started, waits for a ``fail`` file and raises; later runs succeed.
    (Files, not Redis: the test stops Redis meanwhile.)"""
    path = anyio.Path(folder)
    runs = len([p async for p in path.glob("run-*")]) + 1
    await (path / f"run-{runs}").touch()
    if runs == 1:
        while not await (path / "fail").exists():  # noqa: ASYNC110  # another process makes it
            await asyncio.sleep(0.05)
        raise RuntimeError("planned failure")
    return "done"


@queue_task("critical", "test.poison")
async def poison(key: str, resources: Resources) -> int:
    """Kills its worker process (as a crash or an out-of-memory kill would) while ``key:armed``
    exists; every delivery appends its process id to ``key:pids``. Disarmed, it completes."""
    await resources.redis.rpush(f"{key}:pids", os.getpid())
    if await resources.redis.exists(f"{key}:armed"):
        os.kill(os.getpid(), signal.SIGKILL)
    return int(await resources.redis.incr(f"{key}:done"))
