"""Prometheus metrics of a worker process: its tasks, the queues and the outbox.

Each worker process serves them over HTTP (``/metrics``) on ``WORKER_METRICS_HOST`` and port
``WORKER_METRICS_PORT`` + n, where n is its number among the processes of one
``python -m tasks.runtime.worker --processes N`` (taskiq names them ``worker-<n>``); port 0
turns them off. One port per process rather than prometheus_client's multiprocess mode: the
process that would have to serve the sum is taskiq's supervisor, which runs no code of ours; a
shared directory of value files has to be emptied between runs and told which processes died;
and in Kubernetes a pod runs one worker process anyway. Prometheus adds the processes up. A
port that is taken (two worker commands on one host with the same setting) is logged and the
worker runs on without metrics: ``dev.py up`` gives each of its workers a port of its own.

Series:

- ``fashionistar_task_runs_total{queue,task_name,outcome}``: each run of a task; ``outcome``
  ``succeeded``, ``retried`` (failed; its next attempt is scheduled), ``outage`` (failed because
  PostgreSQL, Redis or a provider was down; sent again without spending an attempt) or
  ``failed`` (failed for good: its last attempt, or an error no retry can fix).
- ``fashionistar_task_duration_seconds{queue,task_name}``: run time of each run (histogram),
  not counting the wait before a retry.
- ``fashionistar_task_attempts{queue,task_name}``: attempts a job took, observed when it
  succeeded or failed for good (histogram).
- ``fashionistar_queue_length{queue}``: entries in the queue's stream (``XLEN``; acknowledged
  ones included until ``TASK_STREAM_MAXLEN`` trims them).
- ``fashionistar_queue_lag{queue,group}``: entries not yet delivered to the consumer group (what
  waits; Redis ≥ 7). ``fashionistar_queue_pending{queue,group}``: delivered to a worker and not
  yet acknowledged (what runs, or was left by a worker that died).
- ``fashionistar_dead_letters_parked_total{queue,reason}``: jobs this process parked in the dead
  letters (``deliveries``: delivered too often without an acknowledgement; ``failed``: the last
  attempt failed). ``fashionistar_dead_letters``: jobs parked now, all queues (``XLEN`` of the
  dead-letter stream; replayed and discarded ones leave it).
- ``fashionistar_outbox_unsent`` and ``fashionistar_outbox_oldest_unsent_age_seconds``: durable
  jobs whose send is not confirmed yet (``db.outbox.outbox_backlog``).
- ``fashionistar_backlog_read_ok{source}``: 1 when the queue (``redis``) and outbox
  (``database``) figures above could be read at this scrape, 0 when they are missing.
- ``process_*`` (resident memory, CPU, open files) and ``python_gc_*`` of the process.

Queue and outbox figures describe the whole system, not the process: they are read from Redis
and PostgreSQL when scraped, by every worker for every queue (so a queue whose workers are all
gone still shows its backlog); aggregate them with ``max``.

Why not taskiq's ``PrometheusMiddleware``: its constructor switches prometheus_client to
multiprocess mode through ``PROMETHEUS_MULTIPROC_DIR`` (effective only if nothing imported
prometheus_client before) in one fixed directory under the system temp dir that every worker on
the host shares and nothing empties, so figures of earlier runs and other workers mix in; its
series are unprefixed (``found_errors``, ``execution_time``) with the task name alone, so a
failure that will be retried cannot be told from a final one; and it knows nothing of queues or
the outbox. A subclass would have replaced every method, so this is a middleware of its own.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.asyncio import Redis
from taskiq import TaskiqMessage, TaskiqMiddleware, TaskiqResult

from core.logging import get_logger
from core.settings import Settings
from db.engine import Database
from db.outbox import outbox_backlog
from tasks.runtime.deadletters import DEAD_LETTER_STREAM
from tasks.runtime.queues import QUEUES, UnknownQueue, queue_of, stream_name
from tasks.runtime.retry import ATTEMPT_LABEL, RetryScheduled

log = get_logger(__name__)

REGISTRY = CollectorRegistry()
for _collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    REGISTRY.register(_collector)

TASK_RUNS = Counter(
    "fashionistar_task_runs",
    "Runs of a task, by outcome: succeeded, retried, outage (sent again, no attempt spent), failed.",
    ["queue", "task_name", "outcome"],
    registry=REGISTRY,
)
TASK_DURATION = Histogram(
    "fashionistar_task_duration_seconds",
    "Run time of a task, not counting the wait before a retry.",
    ["queue", "task_name"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
    registry=REGISTRY,
)
TASK_ATTEMPTS = Histogram(
    "fashionistar_task_attempts",
    "Attempts a job took, observed when it succeeded or failed for good.",
    ["queue", "task_name"],
    buckets=(1, 2, 3, 4, 5, 10),
    registry=REGISTRY,
)
DEAD_LETTERS_PARKED = Counter(
    "fashionistar_dead_letters_parked",
    "Jobs parked in the dead letters, by reason: deliveries (never acknowledged), failed (last attempt).",
    ["queue", "reason"],
    registry=REGISTRY,
)
# Reading the backlog on a scrape waits this long for Redis and PostgreSQL (a scrape times out after 10 s).
READ_TIMEOUT_SECONDS = 3.0


def count_parked(queue: str, reason: str) -> None:
    """The broker's ``on_park`` hook in a worker."""
    DEAD_LETTERS_PARKED.labels(queue, reason).inc()


def _queue(task_name: str) -> str:
    try:
        return queue_of(task_name)
    except UnknownQueue:
        return "unknown"


def outcome_of(result: TaskiqResult[Any]) -> str:
    """``succeeded``, ``retried``, ``outage`` or ``failed`` (see the module docstring)."""
    if not result.is_err:
        return "succeeded"
    if isinstance(result.error, RetryScheduled):
        return "outage" if result.error.outage else "retried"
    return "failed"


class TaskMetricsMiddleware(TaskiqMiddleware):
    """Counts runs by outcome, times them and records the attempts of finished jobs.

    Added after the retry middleware, so its ``pre_execute`` runs once a retry's wait is over and
    its ``post_execute`` sees whether that middleware scheduled another attempt.
    """

    def __init__(self) -> None:
        super().__init__()
        self._started: dict[str, float] = {}

    def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        self._started[message.task_id] = time.perf_counter()
        return message

    def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        started = self._started.pop(message.task_id, None)
        queue, outcome = _queue(message.task_name), outcome_of(result)
        TASK_RUNS.labels(queue, message.task_name, outcome).inc()
        if started is not None:
            TASK_DURATION.labels(queue, message.task_name).observe(time.perf_counter() - started)
        if outcome in ("succeeded", "failed"):
            try:
                attempt = int(message.labels.get(ATTEMPT_LABEL, 1))
            except (TypeError, ValueError):
                attempt = 1
            TASK_ATTEMPTS.labels(queue, message.task_name).observe(attempt)


async def _queue_families(redis: Redis) -> list[Metric]:
    length = GaugeMetricFamily(
        "fashionistar_queue_length", "Entries in the queue's stream.", labels=["queue"]
    )
    lag = GaugeMetricFamily(
        "fashionistar_queue_lag",
        "Entries not yet delivered to the consumer group.",
        labels=["queue", "group"],
    )
    pending = GaugeMetricFamily(
        "fashionistar_queue_pending",
        "Entries delivered to a worker of the group and not yet acknowledged.",
        labels=["queue", "group"],
    )
    pipe = redis.pipeline(transaction=False)
    for queue in QUEUES:
        pipe.xlen(stream_name(queue))
        pipe.xinfo_groups(stream_name(queue))
    pipe.xlen(DEAD_LETTER_STREAM)
    replies = await pipe.execute(raise_on_error=False)
    parked = replies[-1]
    if isinstance(parked, Exception):
        raise parked
    for index, queue in enumerate(QUEUES):
        count, groups = replies[2 * index], replies[2 * index + 1]
        if isinstance(count, Exception):
            raise count
        length.add_metric([queue], count)
        # An error here is "no such key": nothing was ever sent to this queue and no worker made its group.
        for info in [] if isinstance(groups, Exception) else groups:
            name = info["name"].decode() if isinstance(info["name"], bytes) else str(info["name"])
            pending.add_metric([queue, name], info["pending"])
            if info.get("lag") is not None:  # unknown to Redis < 7, or after entries were deleted
                lag.add_metric([queue, name], info["lag"])
    dead = GaugeMetricFamily(
        "fashionistar_dead_letters", "Jobs parked in the dead letters now.", value=parked
    )
    return [length, lag, pending, dead]


async def _outbox_families(db: Database) -> list[Metric]:
    async with db.session_maker() as session:
        backlog = await outbox_backlog(session)
    return [
        GaugeMetricFamily(
            "fashionistar_outbox_unsent",
            "Durable jobs whose send is not confirmed yet.",
            value=backlog.unsent,
        ),
        GaugeMetricFamily(
            "fashionistar_outbox_oldest_unsent_age_seconds",
            "How long the oldest unsent durable job has waited (0 when there is none).",
            value=backlog.oldest_age_seconds,
        ),
    ]


async def read_backlog(redis: Redis, db: Database) -> list[Metric]:
    """The queue and outbox series; those of a source that cannot be read now are left out."""
    read_ok = GaugeMetricFamily(
        "fashionistar_backlog_read_ok",
        "1 when the figures of this source could be read at this scrape.",
        labels=["source"],
    )
    families: list[Metric] = [read_ok]
    sources: dict[str, Callable[[], Coroutine[Any, Any, list[Metric]]]] = {
        "redis": lambda: _queue_families(redis),
        "database": lambda: _outbox_families(db),
    }
    for source, read in sources.items():
        try:
            families += await asyncio.wait_for(read(), READ_TIMEOUT_SECONDS)
        except Exception as exc:  # unreachable, restarting or slow: the scrape goes on without them
            log.warning("backlog metrics unavailable", source=source, error=repr(exc)[:200])
            read_ok.add_metric([source], 0)
        else:
            read_ok.add_metric([source], 1)
    return families


class BacklogCollector(Collector):
    """Reads the backlog when scraped. The scrape runs on the HTTP server's thread; the Redis and
    database clients belong to the worker's event loop, so the reading is handed to that loop."""

    def __init__(
        self, read: Callable[[], Coroutine[Any, Any, list[Metric]]], loop: asyncio.AbstractEventLoop
    ) -> None:
        self._read = read
        self._loop = loop

    def describe(self) -> list[Metric]:
        # Without it the registry would collect once at registration, on the event loop's own
        # thread, which would then wait for itself.
        return []

    def collect(self) -> Iterator[Metric]:
        future = asyncio.run_coroutine_threadsafe(self._read(), self._loop)
        try:
            families = future.result(2 * READ_TIMEOUT_SECONDS + 1)
        except Exception as exc:  # the loop too busy to answer in time, or shutting down
            future.cancel()
            log.warning("backlog metrics unavailable", error=repr(exc)[:200])
            return
        yield from families


def process_number() -> int:
    """n of taskiq's worker process ``worker-<n>``; 0 in any other process."""
    prefix, _, number = multiprocessing.current_process().name.partition("-")
    return int(number) if prefix == "worker" and number.isdigit() else 0


@dataclass
class MetricsEndpoint:
    server: WSGIServer
    collector: BacklogCollector
    url: str

    def close(self) -> None:
        """Stop serving (blocks up to half a second: run it in a thread from async code)."""
        self.server.shutdown()
        self.server.server_close()
        REGISTRY.unregister(self.collector)


def serve_metrics(settings: Settings, redis: Redis, db: Database) -> MetricsEndpoint | None:
    """Serve this process's metrics; call it from the worker's event loop. None when
    ``WORKER_METRICS_PORT`` is 0 or the port is taken (logged; the worker runs on)."""
    if settings.worker_metrics_port <= 0:
        return None
    port = settings.worker_metrics_port + process_number()
    collector = BacklogCollector(lambda: read_backlog(redis, db), asyncio.get_running_loop())
    REGISTRY.register(collector)
    try:
        server, _ = start_http_server(port, addr=settings.worker_metrics_host, registry=REGISTRY)
    except OSError as exc:
        REGISTRY.unregister(collector)
        log.warning("worker metrics not served: the port is taken", port=port, error=str(exc))
        return None
    url = f"http://{settings.worker_metrics_host}:{port}/metrics"
    log.info("worker metrics served", url=url)
    return MetricsEndpoint(server=server, collector=collector, url=url)
