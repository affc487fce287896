"""Fulfilments: each vendor's part of an order, shipped on its own.

An order holds one fulfilment per vendor, created with the order: it carries the shipping
method chosen for that vendor (a snapshot), the shipping charged, and later the carrier and
tracking number. Vendors move their fulfilments ``pending -> packed -> shipped -> delivered``, or
cancel them (whole, or some lines: see ``order_lines.cancelled_quantity``) before they ship; the
order's own status follows from its fulfilments (``core.rules.fulfilment``).
"""

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
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base

FULFILMENT_STATUSES = ("pending", "packed", "shipped", "delivered", "cancelled")


class Fulfilment(Base):
    __tablename__ = "fulfilments"

    order_id: Mapped[UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    vendor_id: Mapped[UUID] = mapped_column(ForeignKey("vendors.id", ondelete="RESTRICT"))
    status: Mapped[str] = mapped_column(String(12), default="pending")
    currency: Mapped[str] = mapped_column(String(3))
    # The method chosen at checkout as it was then: {id, name, kind, min_days, max_days}; the id
    # is null for the platform's default method.
    shipping_method: Mapped[dict[str, Any]] = mapped_column(JSONB)
    shipping_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    # Days after delivery during which the shopper may ask to return lines (the store's policy
    # when the order was placed).
    return_window_days: Mapped[int] = mapped_column(Integer)
    carrier: Mapped[str | None] = mapped_column(String(60), default=None)
    tracking_number: Mapped[str | None] = mapped_column(String(100), default=None)
    tracking_url: Mapped[str | None] = mapped_column(Text, default=None)
    packed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    shipped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    cancel_reason: Mapped[str | None] = mapped_column(Text, default=None)

    __table_args__ = (
        CheckConstraint(f"status IN {FULFILMENT_STATUSES}", name="status_known"),
        CheckConstraint("shipping_amount >= 0", name="shipping_not_negative"),
        CheckConstraint(
            "status NOT IN ('shipped', 'delivered') OR tracking_number IS NOT NULL", name="tracked"
        ),
        UniqueConstraint("order_id", "vendor_id", name="uq_fulfilments_order_vendor"),
        # A vendor's fulfilments, newest first, optionally by status.
        Index("ix_fulfilments_vendor", "vendor_id", "id"),
        Index("ix_fulfilments_vendor_status", "vendor_id", "status", "id"),
    )
