"""The scheduler process: sends periodic tasks (declared with a ``schedule`` label) on time.

Run exactly one: ``python -m tasks.runtime.worker --scheduler`` (``just up`` does).
"""

from __future__ import annotations

from taskiq import TaskiqScheduler
from taskiq.schedule_sources import LabelScheduleSource

from tasks.runtime.broker import broker

scheduler = TaskiqScheduler(broker=broker, sources=[LabelScheduleSource(broker)])
