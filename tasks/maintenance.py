"""Periodic housekeeping run by the scheduler: the outbox sweep, unpaid-order expiry, old keys."""

from __future__ import annotations

from datetime import timedelta

from core.settings import get_settings
from db.outbox import sweep_outbox
from db.services.orders.idempotency import purge_expired
from db.services.orders.lifecycle import expire_due
from tasks.runtime.broker import queue_task
from tasks.runtime.resources import Resources

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


@queue_task(
    "critical",
    "orders.expire_unpaid",
    schedule=[{"interval": get_settings().order_expiry_interval_seconds}],
    max_attempts="1",  # the next run is the retry
)
async def expire_unpaid_orders(resources: Resources) -> int:
    """Expire unpaid orders past their reservation deadline and release their stock.

    Each batch is its own transaction; rows are claimed with SKIP LOCKED, so overlapping runs
    (or two schedulers by mistake) never release an order's stock twice.
    """
    total = 0
    while True:
        async with resources.uow() as session:
            expired = await expire_due(session)
        total += expired
        if expired == 0:
            return total


@queue_task("critical", "orders.purge_idempotency_keys", schedule=[{"interval": 3600}], max_attempts="1")
async def purge_idempotency_keys(resources: Resources) -> int:
    """Delete Idempotency-Keys past their lifetime (they no longer replay anything)."""
    total = 0
    while True:
        async with resources.uow() as session:
            deleted = await purge_expired(session)
        total += deleted
        if deleted == 0:
            return total
