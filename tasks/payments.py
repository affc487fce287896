"""Payment work on the ``critical`` queue: apply stored webhook events, refund payments, and
reconcile payments whose webhook never came (scheduled)."""

from __future__ import annotations

from uuid import UUID

from core.logging import get_logger
from core.settings import get_settings
from db.services.payments.errors import PaymentEventNotFound, PaymentNotFound
from db.services.payments.processing import process_event, refund_next
from db.services.payments.reconciliation import reconcile_payments
from tasks.runtime.broker import queue_task
from tasks.runtime.resources import Resources

log = get_logger(__name__)


@queue_task("critical", "payments.process_event")
async def process_payment_event(event_id: str, resources: Resources) -> str:
    """Apply a stored webhook event to its payment and order. Idempotent: the event row records
    that it was processed, under the same lock and in the same transaction as the change."""
    try:
        async with resources.uow() as session:
            return await process_event(session, resources.payments, UUID(event_id))
    except PaymentEventNotFound:
        log.warning("payment event gone", event_id=event_id)
        return "event_not_found"


@queue_task("critical", "payments.refund")
async def refund(payment_id: str, resources: Resources) -> str:
    """Send the payment's pending refunds to the provider, each in its own transaction (a refund
    the provider confirmed is recorded before the next is asked); a provider failure is retried."""
    sent = 0
    try:
        while True:
            async with resources.uow() as session:
                outcome = await refund_next(session, resources.payments, UUID(payment_id))
            if outcome != "refunded":
                break
            sent += 1
    except PaymentNotFound:
        log.warning("payment to refund gone", payment_id=payment_id)
        return "payment_not_found"
    return "refunded" if sent else "nothing_pending"


@queue_task(
    "critical",
    "payments.reconcile",
    schedule=[{"interval": get_settings().payment_reconcile_interval_seconds}],
    max_attempts="1",  # the next run is the retry
)
async def reconcile(resources: Resources) -> dict[str, int]:
    """Verify payments still waiting for their webhook with the provider and record the charges
    that succeeded as their webhook would have (see ``db/services/payments/reconciliation.py``)."""
    result = await reconcile_payments(resources.uow, resources.payments, resources.settings)
    return result.counts()
