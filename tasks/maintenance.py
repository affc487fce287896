"""Periodic housekeeping run by the scheduler: the outbox sweep."""

from __future__ import annotations

from datetime import timedelta

from core.settings import get_settings
from db.outbox import sweep_outbox
from tasks.broker import queue_task
from tasks.resources import Resources

SWEEP_OUTBOX = "critical.maintenance.sweep_outbox"


@queue_task(
    "critical",
    "maintenance.sweep_outbox",
    schedule=[{"interval": get_settings().outbox_sweep_interval_seconds}],
    max_attempts="1",  # the next sweep is the retry
)
async def sweep_outbox_task(resources: Resources) -> dict[str, int]:
    """Re-send outbox jobs whose after-commit send never happened."""
    result = await sweep_outbox(
        resources.db.session_maker,
        resources.dispatcher,
        min_age=timedelta(seconds=resources.settings.outbox_sweep_min_age_seconds),
    )
    return {"sent": result.sent, "failed": result.failed, "purged": result.purged}
