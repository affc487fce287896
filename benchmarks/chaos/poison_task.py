"""A job that kills the worker process running it, for the chaos suite's poison-message fault.

Only the chaos stack's workers import this module (``--module benchmarks.chaos.poison_task``,
``stack.py``), and even there the task is registered only when ``CHAOS_POISON_TASK=1`` (the chaos
stack's environment): a production worker, which imports the ``tasks`` package alone, never has it.
"""

from __future__ import annotations

import os
import signal

from tasks.runtime.broker import queue_task
from tasks.runtime.resources import Resources

POISON_TASK = "analytics.chaos.poison"

if os.environ.get("CHAOS_POISON_TASK") == "1":

    @queue_task("analytics", "chaos.poison")
    async def poison(key: str, resources: Resources) -> None:
        """Note this delivery's process in ``key``, then SIGKILL that process (as an out-of-memory
        kill or a crash in native code would): the message is never acknowledged."""
        await resources.redis.rpush(key, os.getpid())
        os.kill(os.getpid(), signal.SIGKILL)
