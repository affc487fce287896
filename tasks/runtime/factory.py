"""Building brokers: the Redis stream broker with its result backend and middlewares.

Separate from ``tasks.runtime.broker`` (which creates the worker's module-level broker and its hooks) so
the API can build a sending broker without importing any task code.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from taskiq import TaskiqMessage, TaskiqMiddleware, TaskiqResult
from taskiq_redis import RedisAsyncResultBackend

from core.context import REQUEST_ID_LABEL, reset_request_id, set_request_id
from core.logging import get_logger
from core.settings import Settings
from tasks.runtime.queues import QUEUES, Queue
from tasks.runtime.retry import BackoffRetryMiddleware
from tasks.runtime.streams import ReliableStreamBroker

log = get_logger(__name__)


class TaskContextMiddleware(TaskiqMiddleware):
    """Carries the request id from the labels into logs, and logs each run with its duration."""

    def __init__(self) -> None:
        super().__init__()
        self._tokens: dict[str, tuple[object, float]] = {}

    def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        token = set_request_id(message.labels.get(REQUEST_ID_LABEL))
        self._tokens[message.task_id] = (token, time.perf_counter())
        return message

    def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        token, started = self._tokens.pop(message.task_id, (None, time.perf_counter()))
        log.info(
            "task finished",
            task_name=message.task_name,
            task_id=message.task_id,
            ok=not result.is_err,
            attempt=message.labels.get("attempt", "1"),
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
        )
        if token is not None:
            try:
                reset_request_id(token)
            except ValueError:  # set in another context (task ran in a different task group)
                set_request_id(None)


def redis_url_for(settings: Settings) -> str:
    # Without REDIS_URL the embedded Redis of the dev stack is the only sensible target.
    return settings.redis_url or f"redis://127.0.0.1:{settings.embedded_redis_port}/0"


def build_broker(settings: Settings, queues: Sequence[Queue] = QUEUES) -> ReliableStreamBroker:
    """A broker reading ``queues`` (any broker can send to every queue)."""
    if settings.task_retry_max_delay_seconds * 2 >= settings.task_redelivery_idle_seconds:
        raise ValueError(
            "TASK_RETRY_MAX_DELAY_SECONDS must be under half of TASK_REDELIVERY_IDLE_SECONDS, "
            "or a message waiting for its retry would be redelivered to another worker"
        )
    url = redis_url_for(settings)
    result_backend: RedisAsyncResultBackend[Any] = RedisAsyncResultBackend(
        url,
        # A result is read once, by whoever waits for it; an unread one expires after the TTL.
        # (A search-by-photo answer carries a 1280-d vector: kept, they would pile up.)
        keep_results=False,
        result_ex_time=settings.task_result_ttl_seconds,
        socket_timeout=settings.redis_socket_timeout_seconds,
        socket_connect_timeout=settings.redis_socket_timeout_seconds,
    )
    broker = ReliableStreamBroker(
        url,
        queues=queues,
        redelivery_idle_seconds=settings.task_redelivery_idle_seconds,
        dead_letter_after=settings.task_dead_letter_after_deliveries,
        maxlen=settings.task_stream_maxlen,
        consumer_group_name="fashionistar",
        # XREADGROUP blocks for up to a second; reads must be allowed to outlast it.
        socket_timeout=settings.redis_socket_timeout_seconds + 1.5,
        socket_connect_timeout=settings.redis_socket_timeout_seconds,
        socket_keepalive=True,
    ).with_result_backend(result_backend)
    broker.add_middlewares(
        TaskContextMiddleware(),
        BackoffRetryMiddleware(
            max_attempts=settings.task_max_attempts,
            base_delay=settings.task_retry_base_delay_seconds,
            max_delay=settings.task_retry_max_delay_seconds,
        ),
    )
    return broker
