"""Dead letters on real Redis and real worker processes: a job that kills every worker that runs it
is parked after N deliveries with its history while the worker goes on serving others; a job
whose last attempt failed is parked with its errors; both run again when replayed; listing pages,
discarding, and what the worker's metrics count.

The workers here use a Redis database of their own, so no other test's worker takes their jobs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import msgspec
import pytest
from redis.asyncio import Redis
from sqlalchemy.engine import make_url
from taskiq import AsyncBroker
from taskiq.kicker import AsyncKicker

from core.settings import Settings
from devstack.services import free_port
from tasks.runtime.deadletters import (
    DEAD_LETTER_STREAM,
    DeadLetterNotFound,
    count_dead_letters,
    discard,
    get_dead_letter,
    list_dead_letters,
    park,
    replay,
)
from tasks.runtime.factory import build_broker
from tasks.runtime.queues import queue_of, stream_name
from tests.conftest import run_task
from tests.support.stack import ROOT, WorkerProcess
from tests.test_tasks_e2e import eventually
from tests.test_worker_metrics import scrape, value

pytestmark = pytest.mark.anyio

DEAD_LETTERS_REDIS_DB = 11
AFTER = 3


@pytest.fixture
async def own_redis(settings: Settings) -> AsyncIterator[Settings]:
    """Settings whose Redis is a database no other test's worker reads, emptied before and after."""
    url = make_url(settings.redis_url or "").set(database=str(DEAD_LETTERS_REDIS_DB))
    isolated = msgspec.structs.replace(settings, redis_url=url.render_as_string(hide_password=False))
    client = Redis.from_url(isolated.redis_url or "")
    await client.flushdb()
    yield isolated
    await client.flushdb()
    await client.aclose()


@pytest.fixture
async def own_client(own_redis: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(own_redis.redis_url or "")
    yield client
    await client.aclose()


@pytest.fixture
async def own_broker(own_redis: Settings) -> AsyncIterator[AsyncBroker]:
    broker = build_broker(own_redis)
    yield broker
    await broker.shutdown()


async def send(broker: AsyncBroker, task_name: str, *args: Any) -> Any:
    kicker: AsyncKicker[Any, Any] = AsyncKicker(
        task_name=task_name, broker=broker, labels={"queue_name": stream_name(queue_of(task_name))}
    )
    return await kicker.with_task_id(uuid.uuid4().hex).kiq(*args)


@pytest.fixture
def dead_letter_worker(
    start_worker: Callable[..., WorkerProcess], own_redis: Settings
) -> Iterator[tuple[WorkerProcess, int]]:
    """A worker of this test alone (stopped at its end, so the next test's jobs and metrics are
    its own worker's) and its metrics port."""
    port = free_port()
    worker = start_worker(
        "critical,emails",
        REDIS_URL=own_redis.redis_url or "",
        WORKER_METRICS_PORT=str(port),
        WORKER_METRICS_HOST="127.0.0.1",
        TASK_DEAD_LETTER_AFTER_DELIVERIES=str(AFTER),
        TASK_REDELIVERY_IDLE_SECONDS="2",
        TASK_RETRY_BASE_DELAY_SECONDS="0.2",
        TASK_RETRY_MAX_DELAY_SECONDS="0.8",
    )
    yield worker, port
    worker.stop()


@pytest.mark.worker
async def test_a_job_that_kills_its_worker_is_parked_after_n_deliveries_and_runs_when_replayed(
    dead_letter_worker: tuple[WorkerProcess, int], own_client: Redis, own_broker: AsyncBroker
) -> None:
    worker, port = dead_letter_worker
    assert await run_task(own_broker, "critical.test.ping", wait_seconds=60) == "pong", worker.log_text()
    key = f"poison:{uuid.uuid4()}"
    await own_client.set(f"{key}:armed", 1)
    poisoned = await send(own_broker, "critical.test.poison", key)
    others = [f"{key}:other:{n}" for n in range(12)]
    for other in others:
        await send(own_broker, "critical.test.record", other)

    async def parked() -> list[Any]:
        return (await list_dead_letters(own_client)).items

    async def others_done() -> bool:
        return all(c is not None and int(c) >= 1 for c in await own_client.mget(others))

    (letter,) = await eventually(parked, within=120, step=0.2)
    # Every other job ran although the worker process died three times under it.
    assert await eventually(others_done, within=60, step=0.2), worker.log_text()[-3000:]
    pids = await own_client.lrange(f"{key}:pids", 0, -1)
    assert len(pids) == AFTER, pids
    assert len(set(pids)) == AFTER, pids  # each delivery killed its process
    assert (letter.reason, letter.deliveries, letter.queue) == ("deliveries", AFTER, "critical")
    assert (letter.task_name, letter.task_id) == ("critical.test.poison", poisoned.task_id)
    assert len(letter.consumers) == AFTER, letter.consumers
    assert len(set(letter.consumers)) == AFTER, letter.consumers
    assert letter.errors == []  # it never raised: each run ended in a kill
    assert letter.sent_at is not None
    assert letter.sent_at <= letter.parked_at
    # Acknowledged on its queue: nothing left pending, and it is not delivered a fourth time.
    pending = await own_client.xpending(stream_name("critical"), "fashionistar")
    assert pending["pending"] == 0
    samples = await scrape(port)
    assert (
        value(samples, "fashionistar_dead_letters_parked_total", queue="critical", reason="deliveries") == 1
    )
    assert value(samples, "fashionistar_dead_letters") == 1
    assert await run_task(own_broker, "critical.test.ping", wait_seconds=30) == "pong"
    assert len(await own_client.lrange(f"{key}:pids", 0, -1)) == AFTER

    # Fixed (disarmed) and replayed: it runs again, with a fresh delivery count, once.
    await own_client.delete(f"{key}:armed")
    await replay(own_client, letter.id, maxlen=1000)
    result = await poisoned.wait_result(timeout=60)
    assert result.return_value == 1, result
    assert await count_dead_letters(own_client) == 0
    assert value(await scrape(port), "fashionistar_dead_letters") == 0


@pytest.mark.worker
async def test_a_job_whose_last_attempt_failed_is_parked_with_its_errors_and_replayed(
    dead_letter_worker: tuple[WorkerProcess, int], own_client: Redis, own_broker: AsyncBroker
) -> None:
    worker, port = dead_letter_worker
    assert await run_task(own_broker, "critical.test.ping", wait_seconds=60) == "pong", worker.log_text()
    key = f"failing:{uuid.uuid4()}"
    failing = await send(own_broker, "critical.test.flaky", key, 3)  # fails 3 times: every attempt
    first = await failing.wait_result(timeout=60)
    assert first.is_err

    async def parked() -> list[Any]:
        return (await list_dead_letters(own_client)).items

    (letter,) = await eventually(parked, within=30, step=0.1)
    assert (letter.reason, letter.deliveries, letter.task_id) == ("failed", 3, failing.task_id)
    assert [e["attempt"] for e in letter.errors] == [1, 2, 3]
    assert all("planned failure" in e["error"] for e in letter.errors), letter.errors
    samples = await scrape(port)
    assert value(samples, "fashionistar_dead_letters_parked_total", queue="critical", reason="failed") == 1

    await replay(own_client, letter.id, maxlen=1000)
    again = await failing.wait_result(timeout=60)
    assert again.return_value == 4, again  # a fourth run, as attempt 1 of a fresh job
    assert await own_client.llen(key) == 4
    assert await count_dead_letters(own_client) == 0


async def test_listing_pages_in_order_and_discard_and_replay_of_an_unknown_id_are_not_found(
    own_client: Redis,
) -> None:
    ids = []
    for n in range(5):
        data = msgspec.json.encode({"task_id": f"t{n}", "task_name": "emails.test.x", "labels": {}})
        ids.append(await park(own_client, queue="emails", data=data, reason="failed", deliveries=3))
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await list_dead_letters(own_client, after=cursor, limit=2)
        seen += [item.id for item in page.items]
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == ids
    assert pages == 3
    assert (await get_dead_letter(own_client, ids[0])).task_id == "t0"

    await discard(own_client, ids[0])
    assert await count_dead_letters(own_client) == 4
    for bad in (ids[0], "0-1", "not-an-id", "1" * 60):
        with pytest.raises(DeadLetterNotFound):
            await discard(own_client, bad)
        with pytest.raises(DeadLetterNotFound):
            await replay(own_client, bad, maxlen=1000)

    new_id = await replay(own_client, ids[1], maxlen=1000)
    sent: Any = await own_client.xrange(stream_name("emails"), min=new_id, max=new_id)
    ((_, fields),) = sent
    assert fields[b"data"] == msgspec.json.encode(
        {"task_id": "t1", "task_name": "emails.test.x", "labels": {}}
    )
    with pytest.raises(DeadLetterNotFound):  # replayed once: a second replay finds nothing
        await replay(own_client, ids[1], maxlen=1000)
    assert await own_client.xlen(DEAD_LETTER_STREAM) == 3


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # our own module and arguments
        [sys.executable, "-m", "tasks.runtime.deadletters", *args],
        cwd=ROOT,
        env={**os.environ, "APP_ENV": "test", "REDIS_URL": settings.redis_url or ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_the_command_lists_shows_replays_and_drops(own_redis: Settings, own_client: Redis) -> None:
    data = msgspec.json.encode({"task_id": "cli-job", "task_name": "emails.test.x", "labels": {}})
    ids = [await park(own_client, queue="emails", data=data, reason="failed", deliveries=3) for _ in range(3)]

    listed = _cli(own_redis, "list", "--limit", "2")
    assert listed.returncode == 0, listed.stderr
    assert ids[0] in listed.stdout
    assert ids[1] in listed.stdout
    assert ids[2] not in listed.stdout
    assert f"2 of 3 parked; next page: --after {ids[1]}" in listed.stdout
    assert ids[2] in _cli(own_redis, "list", "--after", ids[1]).stdout
    shown = _cli(own_redis, "show", ids[0])
    assert "emails.test.x" in shown.stdout
    assert "failed after 3" in shown.stdout

    replayed = _cli(own_redis, "replay", ids[0])
    assert replayed.returncode == 0, replayed.stderr
    assert await own_client.xlen(stream_name("emails")) == 1
    assert _cli(own_redis, "drop", ids[1]).returncode == 0
    for command in ("replay", "drop", "show"):
        gone = _cli(own_redis, command, ids[1])
        assert gone.returncode == 1
        assert "No dead letter" in gone.stdout
    assert [letter.id for letter in (await list_dead_letters(own_client)).items] == [ids[2]]
