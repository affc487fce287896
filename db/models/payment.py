"""Payments of orders through a provider (Paystack, or the local sandbox) and the provider's
webhook events, stored once each so a replayed event changes nothing."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base

_PAYMENT_STATUSES = "'initialized', 'succeeded', 'flagged', 'refund_pending', 'refunded'"


class Payment(Base):
    __tablename__ = "payments"

    order_id: Mapped[UUID] = mapped_column(ForeignKey("orders.id", ondelete="RESTRICT"))
    provider: Mapped[str] = mapped_column(String(20))
    # Our reference, sent to the provider and echoed in its webhooks.
    reference: Mapped[str] = mapped_column(String(100), unique=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # initialized -> succeeded | flagged (amount/currency mismatch) ; succeeded -> refund_pending
    # -> refunded (paid for an order that could no longer be honoured, or a cancelled paid order)
    status: Mapped[str] = mapped_column(String(16), default="initialized")
    authorization_url: Mapped[str] = mapped_column(Text)
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    flag_reason: Mapped[str | None] = mapped_column(Text, default=None)
    # What has been asked back of this payment so far (refunds pending or done); never more than
    # was captured, which the database enforces.
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    # What the provider kept of the charge, as the provider reported it (not a formula of ours).
    fee_amount: Mapped[int | None] = mapped_column(BigInteger, default=None)

    __table_args__ = (
        CheckConstraint(f"status IN ({_PAYMENT_STATUSES})", name="status_known"),
        CheckConstraint("refunded_amount >= 0 AND refunded_amount <= amount", name="refunds_within_amount"),
        # Reconciliation: attempts still waiting for their webhook, oldest first.
        Index("ix_payments_initialized", "created_at", postgresql_where=text("status = 'initialized'")),
        Index("ix_payments_order", "order_id", "id"),
    )


_REFUND_STATUSES = "'pending', 'succeeded'"


class Refund(Base):
    """Money given back from one payment: a whole order, a cancelled fulfilment or lines of it, a
    received return, or a payment the order could no longer take. Sent to the provider by the
    ``critical.payments.refund`` job."""

    __tablename__ = "refunds"

    payment_id: Mapped[UUID] = mapped_column(ForeignKey("payments.id", ondelete="RESTRICT"))
    order_id: Mapped[UUID] = mapped_column(ForeignKey("orders.id", ondelete="RESTRICT"))
    fulfilment_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("fulfilments.id", ondelete="SET NULL"), default=None
    )
    return_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("returns.id", ondelete="SET NULL"), default=None
    )
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)

    __table_args__ = (
        CheckConstraint(f"status IN ({_REFUND_STATUSES})", name="status_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_refunds_payment", "payment_id", "id"),
        Index("ix_refunds_order", "order_id", "id"),
    )


class PaymentEvent(Base):
    """A verified webhook event as received. Unique per provider, reference and event type."""

    __tablename__ = "payment_events"

    provider: Mapped[str] = mapped_column(String(20))
    reference: Mapped[str] = mapped_column(String(100))
    event_type: Mapped[str] = mapped_column(String(60))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # What processing decided: "paid", "flagged", "ignored", "refund_requested", ...
    outcome: Mapped[str | None] = mapped_column(String(40), default=None)

    __table_args__ = (
        UniqueConstraint("provider", "reference", "event_type", name="uq_payment_events_provider_ref_type"),
    )
