"""Retries with exponential backoff and jitter that really wait.

taskiq's ``SmartRetryMiddleware`` without a schedule source re-sends the task at once with a
``delay`` label that no broker here honours, and its "exponent" grows linearly. This middleware
re-sends a failed task with a ``not_before`` time; the worker that receives it waits until then
before running it (``pre_execute``). The waiting message is delivered but unacknowledged, so a
worker dying while it waits does not lose it. Delays must stay well below the redelivery idle
time, which settings enforce.

Delay before attempt n+1: ``min(cap, base * 2**(n-1))``, jittered into its upper half
(``d/2 + random(0, d/2)``) so gaps grow from one attempt to the next yet retries of many tasks
do not fire in lockstep.

A failure that is an outage of something the task needs (PostgreSQL or Redis unreachable or
restarting, a ``ServiceUnavailable`` such as the payment provider being down) is not the job's
fault, and a few quick attempts would all land inside the outage and drop the job. Such a
failure spends no attempt: the job is sent again with the same backoff (growing to the cap) for
as long as the outage lasts, up to ``OUTAGE_RETRY_SECONDS`` after its first such failure; after
that its failures count as attempts again. Tasks sent with ``max_attempts=1`` (their caller or
the next scheduled run retries) are not retried either way.

Each failed attempt's error is kept for the job's dead-letter entry
(``tasks.runtime.deadletters.record_error``); a job whose last attempt failed is parked there,
with its first attempt's labels, so it can be replayed once the cause is fixed.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from redis.asyncio import Redis
from taskiq import TaskiqMessage, TaskiqMiddleware, TaskiqResult
from taskiq.exceptions import NoResultError
from taskiq.kicker import AsyncKicker

from core.errors import DomainError, ServiceUnavailable
from core.logging import get_logger
from core.outages import is_outage
from tasks.runtime.deadletters import park, record_error
from tasks.runtime.queues import UnknownQueue, queue_of

log = get_logger(__name__)

ATTEMPT_LABEL = "attempt"
NOT_BEFORE_LABEL = "not_before"
# When the job first failed for an outage, and how often since (epoch seconds; a count).
OUTAGE_SINCE_LABEL = "outage_since"
OUTAGE_RETRIES_LABEL = "outage_retries"
OUTAGE_RETRY_SECONDS = 3600.0


class PermanentTaskError(Exception):
    """Raised by a task for a failure that retrying cannot fix (the job is dropped, logged)."""


class RetryScheduled(NoResultError):
    """The result of an attempt that failed and was sent again: no result is saved for it (a
    ``NoResultError`` to taskiq), and the metrics count it as a retry rather than a failure."""

    __template__ = "failed and sent again (outage: {outage})"
    outage: bool


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
    ceiling = min(cap, base * 2.0 ** (attempt - 1))
    jitter: float = (rng or random).uniform(0, ceiling / 2)
    return ceiling / 2 + jitter


class BackoffRetryMiddleware(TaskiqMiddleware):
    def __init__(self, *, max_attempts: int, base_delay: float, max_delay: float) -> None:
        super().__init__()
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay

    async def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        not_before = message.labels.get(NOT_BEFORE_LABEL)
        if not_before is not None:
            wait = float(not_before) - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        return message

    async def on_error(
        self, message: TaskiqMessage, result: TaskiqResult[Any], exception: BaseException
    ) -> None:
        outage = isinstance(exception, ServiceUnavailable) or is_outage(exception)
        if isinstance(exception, NoResultError | PermanentTaskError) or (
            isinstance(exception, DomainError) and not outage
        ):
            log.warning(
                "task failed permanently", task_name=message.task_name, error=type(exception).__name__
            )
            return
        labels = dict(message.labels)
        attempt = int(labels.get(ATTEMPT_LABEL, 1))
        max_attempts = int(labels.get("max_attempts", self.max_attempts))
        now = time.time()
        outage_since = float(labels.get(OUTAGE_SINCE_LABEL, now))
        await self._keep_history(message, attempt, exception)
        if outage and max_attempts > 1 and now - outage_since < OUTAGE_RETRY_SECONDS:
            # Waiting out an outage: the attempt is not spent.
            retries = int(labels.get(OUTAGE_RETRIES_LABEL, 0)) + 1
            delay = backoff_delay(retries, base=self.base_delay, cap=self.max_delay)
            labels |= {OUTAGE_SINCE_LABEL: f"{outage_since:.3f}", OUTAGE_RETRIES_LABEL: str(retries)}
            next_attempt = attempt
        elif attempt >= max_attempts:
            log.error(
                "task failed after its last attempt",
                task_name=message.task_name,
                attempts=attempt,
                error=repr(exception)[:500],
            )
            if max_attempts > 1:  # a job sent with one attempt is retried by its caller instead
                await self._park(message, attempt)
            return
        else:
            delay = backoff_delay(attempt, base=self.base_delay, cap=self.max_delay)
            next_attempt = attempt + 1
        labels[ATTEMPT_LABEL] = str(next_attempt)
        labels[NOT_BEFORE_LABEL] = f"{now + delay:.3f}"
        kicker: AsyncKicker[Any, Any] = AsyncKicker(
            task_name=message.task_name, broker=self.broker, labels=labels
        ).with_task_id(message.task_id)
        await kicker.kiq(*message.args, **message.kwargs)
        log.info(
            "task failed; retry scheduled",
            task_name=message.task_name,
            attempt=attempt,
            next_attempt=next_attempt,
            outage=outage,
            delay_seconds=round(delay, 3),
            error=repr(exception)[:500],
        )
        # The final result belongs to the last attempt, not this one.
        result.error = RetryScheduled(outage=outage)

    def _redis(self) -> Redis | None:
        pool = getattr(self.broker, "connection_pool", None)
        return None if pool is None else Redis(connection_pool=pool)

    async def _keep_history(self, message: TaskiqMessage, attempt: int, exception: BaseException) -> None:
        redis = self._redis()
        if redis is None:
            return
        try:
            async with redis:
                await record_error(redis, message.task_id, attempt, exception)
        except Exception as exc:  # Redis down: the history loses an entry, the retry goes on
            log.warning("task error not recorded", task_name=message.task_name, error=repr(exc)[:200])

    async def _park(self, message: TaskiqMessage, attempts: int) -> None:
        """Park a job whose last attempt failed, as its first attempt was sent."""
        redis = self._redis()
        if redis is None:
            return
        labels = {
            k: v
            for k, v in message.labels.items()
            if k not in (ATTEMPT_LABEL, NOT_BEFORE_LABEL, OUTAGE_SINCE_LABEL, OUTAGE_RETRIES_LABEL)
        }
        first = message.model_copy(update={"labels": labels})
        queue: str
        try:
            queue = queue_of(message.task_name)
        except UnknownQueue:
            queue = str(labels.get("queue_name", "")).rsplit(":", 1)[-1]
        try:
            async with redis:
                dead_id = await park(
                    redis,
                    queue=queue,
                    data=self.broker.formatter.dumps(first).message,
                    reason="failed",
                    deliveries=attempts,
                )
        except Exception as exc:  # Redis down: logged above as failed; nothing more to keep it
            log.warning("failed task not parked", task_name=message.task_name, error=repr(exc)[:200])
            return
        log.info(
            "failed task parked in the dead letters", task_name=message.task_name, dead_letter_id=dead_id
        )
        on_park = getattr(self.broker, "on_park", None)
        if on_park is not None:
            on_park(queue, "failed")
