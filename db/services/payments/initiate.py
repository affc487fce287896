"""Starting a payment for an order (``POST /orders/{id}/payments``)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.adapters.payments import PaymentProvider, PaymentRequest
from core.settings import Settings
from db.models import Order, Payment, User
from db.services.orders.transitions import load_for_update
from db.services.payments.errors import OrderNotPayable


async def start_payment(
    session: AsyncSession,
    settings: Settings,
    provider: PaymentProvider,
    *,
    user_id: UUID,
    order_id: UUID,
) -> Payment:
    """A payment for the caller's unpaid order, with the provider's checkout URL.

    Asking again while an earlier attempt is still open returns that attempt (no second
    transaction at the provider). The order row is locked meanwhile, so two requests cannot
    start two payments.

    Raises:
        OrderNotFound: not the caller's order (404).
        OrderNotPayable: the order is not awaiting payment or its reservation ran out (409).
        PaymentProviderError: the provider is unreachable or refused (503 + Retry-After).
    """
    order = await load_for_update(session, order_id, user_id=user_id)
    _ensure_payable(order)
    open_payment = await _latest_open_payment(session, order, provider)
    if open_payment is not None and open_payment.amount == order.total_amount:
        return open_payment
    attempt = int(await session.scalar(select(func.count()).where(Payment.order_id == order.id)) or 0) + 1
    email = await session.scalar(select(User.email).where(User.id == user_id))
    reference = f"fs-{order.id.hex}-{attempt}"
    initialized = await provider.initialize(
        PaymentRequest(
            reference=reference,
            amount=order.total_amount,
            currency=order.currency,
            email=email or "",
            callback_url=settings.payment_callback_url,
        )
    )
    payment = Payment(
        order_id=order.id,
        provider=provider.name,
        reference=reference,
        amount=order.total_amount,
        currency=order.currency,
        status="initialized",
        authorization_url=initialized.authorization_url,
    )
    session.add(payment)
    await session.flush()
    return payment


def _ensure_payable(order: Order) -> None:
    """Refuse an order that cannot be paid now.

    Raises:
        OrderNotPayable: the order is not awaiting payment or its reservation ran out (409).
    """
    if order.status != "pending_payment":
        raise OrderNotPayable(
            f"The order is {order.status.replace('_', ' ')}; only unpaid orders can be paid."
        )
    if order.expires_at <= datetime.now(UTC):
        raise OrderNotPayable("The order's reservation has run out; please place the order again.")


async def _latest_open_payment(
    session: AsyncSession, order: Order, provider: PaymentProvider
) -> Payment | None:
    """The order's newest payment at this provider that is still waiting for the shopper."""
    return await session.scalar(
        select(Payment)
        .where(
            Payment.order_id == order.id, Payment.status == "initialized", Payment.provider == provider.name
        )
        .order_by(Payment.id.desc())
        .limit(1)
    )
