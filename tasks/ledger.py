"""Money upkeep run by the scheduler: vendors' earnings become payable after the return window."""

from __future__ import annotations

from core.settings import get_settings
from db.services.ledger.release import release_due
from tasks.runtime.broker import queue_task
from tasks.runtime.resources import Resources


@queue_task(
    "critical",
    "ledger.release_earnings",
    schedule=[{"interval": get_settings().earnings_release_interval_seconds}],
    max_attempts="1",  # the next run is the retry
)
async def release_earnings(resources: Resources) -> int:
    """Release the earnings of every fulfilment whose return window is over (batch by batch)."""
    total = 0
    while True:
        async with resources.uow() as session:
            released = await release_due(session)
        total += released
        if released == 0:
            return total
