"""Send jobs to the broker by task name (no task code is imported to do so), and ask a worker
for an answer while a request waits (search by photo)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import anyio
from redis.exceptions import RedisError
from taskiq import AsyncBroker
from taskiq.exceptions import TaskiqError
from taskiq.kicker import AsyncKicker

from core.context import REQUEST_ID_LABEL, get_request_id
from core.errors import ServiceUnavailable
from core.jobs import Job
from core.logging import get_logger
from core.rules.photo_search import encode_image, vector_of
from core.task_names import EMBED_QUERY
from tasks.runtime.queues import queue_of, stream_name

log = get_logger(__name__)

# Result polling starts fast (a query embedding takes tens of milliseconds) and backs off.
_FIRST_POLL_SECONDS = 0.005
_MAX_POLL_SECONDS = 0.05


class BrokerDispatcher:
    """:class:`core.jobs.Dispatcher` over a taskiq broker."""

    def __init__(self, broker: AsyncBroker) -> None:
        self.broker = broker

    async def send(self, job: Job) -> None:
        kicker = _kicker(
            self.broker, job.task_name, str(job.job_id), {"job_id": str(job.job_id), **job.labels}
        )
        await kicker.kiq(*job.args, **job.kwargs)


def _kicker(
    broker: AsyncBroker, task_name: str, task_id: str, labels: dict[str, Any]
) -> AsyncKicker[Any, Any]:
    """A kicker for ``task_name`` on its queue's stream, carrying the current request id."""
    labels = {"queue_name": stream_name(queue_of(task_name)), **labels}
    if REQUEST_ID_LABEL not in labels and (request_id := get_request_id()):
        labels[REQUEST_ID_LABEL] = request_id
    return AsyncKicker(task_name=task_name, broker=broker, labels=labels).with_task_id(task_id)


async def call(broker: AsyncBroker, task_name: str, *args: Any, wait_seconds: float) -> Any:
    """Run a task on a worker and return its result, waiting at most ``wait_seconds``.

    The task runs once (no retries: the caller is waiting) and its result is read from the
    result backend, which deletes it on reading.

    Raises:
        ServiceUnavailable: the broker is unreachable, no worker answered in time, or the task
            failed (503).
    """
    kicker = _kicker(broker, task_name, uuid.uuid4().hex, {"max_attempts": "1"})
    try:
        with anyio.fail_after(wait_seconds):
            task = await kicker.kiq(*args)
            interval = _FIRST_POLL_SECONDS
            while not await task.is_ready():
                await anyio.sleep(interval)
                interval = min(interval * 2, _MAX_POLL_SECONDS)
            result = await task.get_result()
    except TimeoutError:
        log.warning("no answer from a worker in time", task_name=task_name, wait_seconds=wait_seconds)
        raise ServiceUnavailable("No worker answered in time. Please retry shortly.") from None
    except (TaskiqError, RedisError, OSError) as exc:
        # taskiq wraps Redis failures in its own errors (SendTaskError, ResultIsReadyError, ...).
        log.warning("broker unreachable", task_name=task_name, error=type(exc).__name__)
        raise ServiceUnavailable("The task queue is unavailable. Please retry shortly.") from None
    if result.is_err:
        log.error("task failed", task_name=task_name, error=repr(result.error)[:500])
        raise ServiceUnavailable("The worker could not complete the request. Please retry shortly.")
    return result.return_value


class BrokerQueryEmbedder:
    """:class:`core.rules.photo_search.QueryEmbedder` over the broker: an inference worker answers."""

    def __init__(self, broker: AsyncBroker, *, timeout: float) -> None:
        self.broker = broker
        self.timeout = timeout

    async def embed(self, image: bytes) -> list[float]:
        # The worker skips a query whose deadline has passed: its asker has given up by then.
        deadline = time.time() + self.timeout
        answer = await call(
            self.broker, EMBED_QUERY, encode_image(image), deadline, wait_seconds=self.timeout
        )
        return vector_of(answer)
