"""What a stored ``charge.success`` event does to its payment and order (run on ``critical``).

Rules, in order:

1. An event already processed returns its recorded outcome (redelivered jobs change nothing).
2. Unknown reference: recorded as ``unknown_reference``; nothing else changes.
3. Where the provider keeps records (Paystack) the transaction is verified with it first; one
   that did not succeed changes nothing (``not_successful``).
4. Amount or currency differing from the payment (and so the order): the payment is
   ``flagged`` with the reason, the order is NOT paid (``amount_mismatch``), for staff to review.
5. A payment that already succeeded: nothing changes (``already_succeeded``).
6. Order awaiting payment: it becomes ``paid`` (its reserved stock is sold) (``paid``).
7. Order ``expired`` (the shopper paid just after the reservation ran out): if every line's
   stock can be taken again, the order becomes ``paid`` (``paid_after_expiry``); otherwise the
   money is refunded and the order stays expired (``refunded_expired``).
8. Order cancelled, or already paid through another payment: the money is refunded
   (``refunded_<status>``).

The order and payment rows are locked for the duration, so a concurrent cancel, expiry or
second event serialises with this.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.adapters.payments import PaymentProvider
from core.logging import get_logger
from db.models import Order, Payment, PaymentEvent
from db.services.ledger import earnings
from db.services.orders import stock
from db.services.orders.transitions import line_quantities, load_for_update, transition
from db.services.payments.errors import PaymentEventNotFound
from db.services.payments.refunds import RefundFor, next_pending, refund_payment_amount, send_refund

log = get_logger(__name__)


def _charge(payload: dict[str, Any]) -> tuple[int | None, str | None, int | None]:
    """(amount, currency, fees) as the webhook reports the charge."""
    data = payload.get("data") or {}
    amount, currency, fees = data.get("amount"), data.get("currency"), data.get("fees")
    return (
        amount if isinstance(amount, int) else None,
        currency if isinstance(currency, str) else None,
        fees if isinstance(fees, int) and fees >= 0 else None,
    )


async def _refund(session: AsyncSession, payment: Payment, order: Order) -> None:
    """The charge cannot go to its order: give all of it back."""
    payment.status = "succeeded"  # captured at the provider; refunding it in full follows at once
    await earnings.record_unapplied(session, payment)
    why = RefundFor(reason=f"order was {order.status} when the payment arrived")
    await refund_payment_amount(session, payment, payment.amount, why)


async def process_event(session: AsyncSession, provider: PaymentProvider, event_id: UUID) -> str:
    """Apply one stored webhook event; returns (and records) the outcome.

    Raises:
        PaymentEventNotFound: no such event (the job outlived its row).
        PaymentProviderError: verification with the provider failed; the job is retried.
    """
    event = await session.scalar(select(PaymentEvent).where(PaymentEvent.id == event_id).with_for_update())
    if event is None:
        raise PaymentEventNotFound()
    if event.processed_at is not None:
        return event.outcome or "processed"
    outcome = await _apply(session, provider, event)
    event.processed_at = datetime.now(UTC)
    event.outcome = outcome
    log.info("payment event processed", reference=event.reference, outcome=outcome)
    return outcome


async def _apply(session: AsyncSession, provider: PaymentProvider, event: PaymentEvent) -> str:
    payment = await session.scalar(
        select(Payment).where(Payment.reference == event.reference, Payment.provider == event.provider)
    )
    if payment is None:
        log.warning("payment event for an unknown reference", reference=event.reference)
        return "unknown_reference"
    # Lock order first, then payment: the same order as cancelling and refunding take them.
    order = await load_for_update(session, payment.order_id)
    await session.refresh(payment, with_for_update=True)
    amount, currency, fees = _charge(event.payload)
    verified = await provider.verify(event.reference)
    if verified is not None:
        fees = verified.fees if verified.fees is not None else fees
        if not verified.succeeded:
            return "not_successful"
        amount, currency = verified.amount, verified.currency
    if amount != payment.amount or currency != payment.currency or payment.amount != order.total_amount:
        payment.status = "flagged"
        payment.flag_reason = (
            f"charged {amount} {currency}, expected {payment.amount} {payment.currency} "
            f"(order total {order.total_amount} {order.currency})"
        )
        log.warning("payment amount mismatch", reference=payment.reference, reason=payment.flag_reason)
        return "amount_mismatch"
    if payment.status != "initialized":
        return f"already_{payment.status}"
    # The provider's fee, as the provider reports it for this charge.
    payment.fee_amount = fees
    return await _settle(session, payment, order)


async def _settle(session: AsyncSession, payment: Payment, order: Order) -> str:
    """A verified, correct charge: pay the order, or refund when the order cannot take it."""
    payment.paid_at = datetime.now(UTC)
    if order.status == "pending_payment":
        payment.status = "succeeded"
        await transition(session, order, "paid", "payment", reason=f"payment {payment.reference}")
        await earnings.record_capture(session, payment, order)
        return "paid"
    if order.status == "expired":
        savepoint = await session.begin_nested()
        short = await stock.reserve(session, await line_quantities(session, order.id))
        if short is None:
            await savepoint.commit()
            payment.status = "succeeded"
            await transition(
                session, order, "paid", "payment", reason=f"payment {payment.reference} after expiry"
            )
            await earnings.record_capture(session, payment, order)
            return "paid_after_expiry"
        await savepoint.rollback()
    await _refund(session, payment, order)
    log.warning("payment refunded: order not payable", reference=payment.reference, status=order.status)
    return f"refunded_{order.status}"


async def refund_next(session: AsyncSession, provider: PaymentProvider, payment_id: UUID) -> str:
    """Send the payment's oldest pending refund to its provider (idempotent: a refund already sent
    is no longer pending). Returns ``refunded`` when one was sent, ``nothing_pending`` otherwise.

    Raises:
        PaymentNotFound; PaymentProviderError (the job is retried).
    """
    payment, refund = await next_pending(session, payment_id)
    if refund is None:
        return "nothing_pending"
    await send_refund(session, provider, payment, refund)
    return "refunded"
