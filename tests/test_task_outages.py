"""Jobs survive outages of what they need (found by ``benchmarks/chaos``, where both lost jobs).

- A task failing because PostgreSQL is gone (or a ``ServiceUnavailable``, e.g. the payment
  provider) does not spend its attempts: it is retried until the outage is over. Before, three
  quick attempts fell inside a PostgreSQL restart and the job was dropped.
- A message whose processing ended without an acknowledgement (its retry could not be sent
  because Redis was restarting) is redelivered. Before, the worker kept renewing its claim, so
  no worker ever took it again while that worker lived.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from redis.asyncio import Redis
from taskiq import AsyncBroker

from core.jobs import Job
from core.settings import Settings
from devstack.embedded_redis import EmbeddedRedis
from devstack.services import free_port
from tasks.runtime.dispatch import BrokerDispatcher
from tasks.runtime.factory import build_broker
from tests.support.stack import WorkerProcess
from tests.test_tasks_e2e import eventually, msgspec_replace

pytestmark = [pytest.mark.anyio, pytest.mark.worker]


@pytest.mark.parametrize("kind", ["database", "service"])
async def test_an_outage_does_not_use_up_the_attempts(
    worker: WorkerProcess, broker: AsyncBroker, settings: Settings, redis: Redis, kind: str
) -> None:
    key = f"outage:{uuid.uuid4()}"
    failures = settings.task_max_attempts + 2
    await BrokerDispatcher(broker).send(Job(task_name="critical.test.outage", args=(key, failures, kind)))
    runs = await eventually(lambda: _at_least(redis, key, failures + 1), within=60)
    assert len(runs) == failures + 1  # the last run succeeded
    await anyio.sleep(settings.task_retry_max_delay_seconds + 1)
    assert await redis.llen(key) == failures + 1  # and nothing ran after it
    assert '"outage":true' in worker.log_text()


async def test_a_message_whose_retry_could_not_be_sent_is_redelivered(
    start_worker: Callable[..., WorkerProcess], settings: Settings, tmp_path: Path
) -> None:
    own = EmbeddedRedis(tmp_path / "redis", free_port(), persistent=True)
    own.start()
    sender = build_broker(msgspec_replace(settings, redis_url=own.url))
    worker = start_worker("critical", REDIS_URL=own.url)
    folder = tmp_path / "runs"
    folder.mkdir()
    try:
        await BrokerDispatcher(sender).send(
            Job(task_name="critical.test.fail_when_told", args=(str(folder),))
        )
        await eventually(lambda: _exists(folder / "run-1"), within=60)
        # Redis goes away while the task runs; the task then fails and its retry cannot be sent.
        own.stop()
        (folder / "fail").touch()
        await eventually(lambda: _logged(worker, "message not finished"), within=20)
        own.start()
        # Unacknowledged, no longer claimed: another delivery runs it again.
        await eventually(lambda: _exists(folder / "run-2"), within=settings.task_redelivery_idle_seconds + 30)
    finally:
        worker.stop()
        await sender.shutdown()
        own.stop()
    assert "redelivering a message a worker did not finish" in worker.log_text()


async def _at_least(redis: Redis, key: str, count: int) -> list[str] | None:
    values = [str(v) for v in await redis.lrange(key, 0, -1)]
    return values if len(values) >= count else None


async def _exists(path: Path) -> bool:
    return await anyio.Path(path).exists()


async def _logged(worker: WorkerProcess, text: str) -> bool:
    return text in worker.log_text()
