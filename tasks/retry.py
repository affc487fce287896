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
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from taskiq import TaskiqMessage, TaskiqMiddleware, TaskiqResult
from taskiq.exceptions import NoResultError
from taskiq.kicker import AsyncKicker

from core.errors import DomainError
from core.logging import get_logger

log = get_logger(__name__)

ATTEMPT_LABEL = "attempt"
NOT_BEFORE_LABEL = "not_before"


class PermanentTaskError(Exception):
    """Raised by a task for a failure that retrying cannot fix (the job is dropped, logged)."""


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
        if isinstance(exception, NoResultError | PermanentTaskError | DomainError):
            log.warning(
                "task failed permanently", task_name=message.task_name, error=type(exception).__name__
            )
            return
        attempt = int(message.labels.get(ATTEMPT_LABEL, 1))
        max_attempts = int(message.labels.get("max_attempts", self.max_attempts))
        if attempt >= max_attempts:
            log.error(
                "task failed after its last attempt",
                task_name=message.task_name,
                attempts=attempt,
                error=repr(exception)[:500],
            )
            return
        delay = backoff_delay(attempt, base=self.base_delay, cap=self.max_delay)
        labels = {k: v for k, v in message.labels.items() if k not in (ATTEMPT_LABEL, NOT_BEFORE_LABEL)}
        labels[ATTEMPT_LABEL] = str(attempt + 1)
        labels[NOT_BEFORE_LABEL] = f"{time.time() + delay:.3f}"
        kicker: AsyncKicker[Any, Any] = AsyncKicker(
            task_name=message.task_name, broker=self.broker, labels=labels
        ).with_task_id(message.task_id)
        await kicker.kiq(*message.args, **message.kwargs)
        log.info(
            "task failed; retry scheduled",
            task_name=message.task_name,
            attempt=attempt,
            next_attempt=attempt + 1,
            delay_seconds=round(delay, 3),
            error=repr(exception)[:500],
        )
        # The final result belongs to the last attempt, not this one.
        result.error = NoResultError()
