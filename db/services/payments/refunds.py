"""Refunds: money given back from an order's payments, whole or in part.

Asking for a refund writes a ``refunds`` row and adds its amount to the payment's
``refunded_amount`` under the payment's row lock, in the caller's transaction; the database
refuses a ``refunded_amount`` above what was captured, so no sequence of cancellations and
returns, concurrent or not, gives back more than was paid. The money moves at the provider in the
``critical.payments.refund`` job, after commit (durable), one refund at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.adapters.payments import PaymentProvider
from core.jobs import defer
from core.logging import get_logger
from core.task_names import NOTIFY_REFUND_SENT, REFUND_PAYMENT
from db.models import Payment, Refund, Return
from db.services.ledger import earnings
from db.services.payments.errors import PaymentNotFound

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RefundFor:
    """What a refund is for (shown to staff and shoppers, and kept for reconciliation)."""

    reason: str
    fulfilment_id: UUID | None = None
    return_id: UUID | None = None


async def refund_payment_amount(
    session: AsyncSession, payment: Payment, amount: int, why: RefundFor
) -> Refund | None:
    """Give back ``amount`` (capped at what the payment still holds) of a row-locked payment, and
    reverse in the ledger the earnings and commission behind it.

    A payment given back in full becomes ``refund_pending`` until the provider confirms.
    """
    amount = min(amount, payment.amount - payment.refunded_amount)
    if amount <= 0:
        return None
    refund = Refund(
        payment_id=payment.id,
        order_id=payment.order_id,
        fulfilment_id=why.fulfilment_id,
        return_id=why.return_id,
        amount=amount,
        currency=payment.currency,
        reason=why.reason,
        status="pending",
    )
    session.add(refund)
    payment.refunded_amount += amount
    if payment.refunded_amount == payment.amount:
        payment.status = "refund_pending"
    defer(REFUND_PAYMENT, str(payment.id), durable=True)
    await session.flush()
    await earnings.record_refund_asked(session, refund)
    return refund


async def _captured(session: AsyncSession, order_id: UUID) -> list[Payment]:
    """The order's captured payments, row-locked, oldest first."""
    return list(
        (
            await session.scalars(
                select(Payment)
                .where(Payment.order_id == order_id, Payment.status.in_(("succeeded", "refund_pending")))
                .order_by(Payment.id)
                .with_for_update()
            )
        ).all()
    )


async def refund_order_amount(session: AsyncSession, order_id: UUID, amount: int, why: RefundFor) -> int:
    """Give back ``amount`` of an order's captured payments (oldest first); returns how much was
    asked of the provider (less than ``amount`` only when less remains)."""
    asked = 0
    for payment in await _captured(session, order_id):
        refund = await refund_payment_amount(session, payment, amount - asked, why)
        if refund is not None:
            asked += refund.amount
        if asked >= amount:
            break
    if asked < amount:
        log.warning("refund capped at what remains", order_id=str(order_id), wanted=amount, asked=asked)
    await session.flush()
    return asked


async def refund_order_remaining(session: AsyncSession, order_id: UUID, reason: str) -> int:
    """Give back everything the order's payments still hold (a cancelled or refunded order)."""
    asked = 0
    for payment in await _captured(session, order_id):
        refund = await refund_payment_amount(session, payment, payment.amount, RefundFor(reason=reason))
        asked += refund.amount if refund is not None else 0
    await session.flush()
    return asked


async def remaining(session: AsyncSession, order_id: UUID) -> int:
    """What the order's captured payments still hold (captured less refunds asked for)."""
    rows = await session.execute(
        select(Payment.amount, Payment.refunded_amount).where(
            Payment.order_id == order_id, Payment.status.in_(("succeeded", "refund_pending"))
        )
    )
    return sum(amount - refunded for amount, refunded in rows.all())


async def next_pending(session: AsyncSession, payment_id: UUID) -> tuple[Payment, Refund | None]:
    """The payment (row-locked) and its oldest refund not yet sent to the provider.

    Raises:
        PaymentNotFound: no such payment.
    """
    payment = await session.scalar(select(Payment).where(Payment.id == payment_id).with_for_update())
    if payment is None:
        raise PaymentNotFound()
    refund = await session.scalar(
        select(Refund)
        .where(Refund.payment_id == payment_id, Refund.status == "pending")
        .order_by(Refund.id)
        .limit(1)
        .with_for_update()
    )
    return payment, refund


async def send_refund(
    session: AsyncSession, provider: PaymentProvider, payment: Payment, refund: Refund
) -> None:
    """Ask the provider for one pending refund and record that it went through.

    Raises:
        PaymentProviderError: the provider is unreachable or refused (the job is retried).
    """
    await provider.refund(payment.reference, refund.amount)
    refund.status = "succeeded"
    refund.processed_at = datetime.now(UTC)
    if refund.return_id is not None:
        await session.execute(
            update(Return)
            .where(Return.id == refund.return_id, Return.status == "received")
            .values(status="refunded", refunded_at=refund.processed_at)
        )
    defer(NOTIFY_REFUND_SENT, str(refund.id), durable=True)
    await earnings.record_refund_sent(session, refund)
    if payment.status == "refund_pending" and payment.refunded_amount == payment.amount:
        still_pending = await session.scalar(
            select(Refund.id).where(
                Refund.payment_id == payment.id, Refund.status == "pending", Refund.id != refund.id
            )
        )
        if still_pending is None:
            payment.status = "refunded"
    log.info("refund sent", reference=payment.reference, amount=refund.amount, refund_id=str(refund.id))
