"""Vendors' payouts on the ``critical`` queue: send a payout's transfer, apply the provider's
transfer events, the scheduled payout run, and reconciliation of payouts whose outcome never came."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from core.logging import get_logger
from core.settings import get_settings
from db.services.payments.errors import PaymentEventNotFound
from db.services.payouts.errors import PayoutNotFound
from db.services.payouts.reconciliation import reconcile_payouts
from db.services.payouts.requests import Terms, run_scheduled
from db.services.payouts.transfers import process_transfer_event, send_payout
from tasks.runtime.broker import queue_task
from tasks.runtime.resources import Resources

log = get_logger(__name__)

RUN_PAYOUTS = "critical.payouts.run"
RECONCILE_PAYOUTS = "critical.payouts.reconcile"


@queue_task("critical", "payouts.send")
async def send(payout_id: str, resources: Resources) -> str:
    """Send a pending payout's transfer to the provider. Idempotent: a payout no longer pending is
    left alone, and a retry asks the provider for the transfer by reference before sending again."""
    try:
        return await send_payout(resources.uow, resources.payments, UUID(payout_id))
    except PayoutNotFound:
        log.warning("payout to send gone", payout_id=payout_id)
        return "payout_not_found"


@queue_task("critical", "payouts.process_event")
async def process_event(event_id: str, resources: Resources) -> str:
    """Apply a stored ``transfer.*`` webhook event to its payout (recorded as processed under the
    same lock and in the same transaction as the change, so a redelivery changes nothing)."""
    try:
        async with resources.uow() as session:
            return await process_transfer_event(session, resources.payments, UUID(event_id))
    except PaymentEventNotFound:
        log.warning("transfer event gone", event_id=event_id)
        return "event_not_found"


@queue_task(
    "critical",
    "payouts.run",
    # Sent hourly (or more often, with a shorter interval); each vendor is paid by schedule at most
    # once per PAYOUT_INTERVAL_SECONDS (db/services/payouts/requests.py), whenever the scheduler
    # started.
    schedule=[{"interval": min(get_settings().payout_interval_seconds, 3600)}],
    max_attempts="1",  # the next run is the retry
)
async def run(resources: Resources) -> dict[str, int]:
    """Pay out every vendor whose available balance reached the minimum and whose scheduled payout
    is due."""
    terms = Terms.of(resources.settings, resources.payments.name)
    return await run_scheduled(resources.uow, terms)


@queue_task(
    "critical",
    "payouts.reconcile",
    schedule=[{"interval": get_settings().payment_reconcile_interval_seconds}],
    max_attempts="1",  # the next run is the retry
)
async def reconcile(resources: Resources) -> dict[str, int]:
    """Settle payouts whose transfer webhook never came from the provider's records, and send again
    those whose transfer job was lost (``db/services/payouts/reconciliation.py``)."""
    after = timedelta(seconds=resources.settings.payment_reconcile_after_seconds)
    return await reconcile_payouts(resources.uow, resources.payments, after)
