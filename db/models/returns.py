"""Returns: a shopper sends back delivered lines of one vendor's fulfilment for a refund.

``requested -> approved | rejected``; ``approved -> received`` (the vendor has the items back;
the refund is asked of the provider then) ``-> refunded`` (the provider confirmed it).
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base

RETURN_STATUSES = ("requested", "approved", "rejected", "received", "refunded")
# Statuses whose units count against what may still be returned.
OPEN_OR_DONE = ("requested", "approved", "received", "refunded")


class Return(Base):
    __tablename__ = "returns"

    order_id: Mapped[UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    fulfilment_id: Mapped[UUID] = mapped_column(ForeignKey("fulfilments.id", ondelete="CASCADE"))
    vendor_id: Mapped[UUID] = mapped_column(ForeignKey("vendors.id", ondelete="RESTRICT"))
    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    status: Mapped[str] = mapped_column(String(12), default="requested")
    note: Mapped[str | None] = mapped_column(Text, default=None)
    vendor_note: Mapped[str | None] = mapped_column(Text, default=None)
    # Set when received: whether the units went back on sale.
    restocked: Mapped[bool | None] = mapped_column(Boolean, default=None)
    currency: Mapped[str] = mapped_column(String(3))
    refund_amount: Mapped[int | None] = mapped_column(BigInteger, default=None)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    received_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    refunded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)

    __table_args__ = (
        CheckConstraint(f"status IN {RETURN_STATUSES}", name="status_known"),
        CheckConstraint("refund_amount IS NULL OR refund_amount >= 0", name="refund_not_negative"),
        Index("ix_returns_order", "order_id", "id"),
        Index("ix_returns_vendor", "vendor_id", "id"),
        Index("ix_returns_vendor_status", "vendor_id", "status", "id"),
    )


class ReturnLine(Base):
    __tablename__ = "return_lines"

    return_id: Mapped[UUID] = mapped_column(ForeignKey("returns.id", ondelete="CASCADE"))
    order_line_id: Mapped[UUID] = mapped_column(ForeignKey("order_lines.id", ondelete="CASCADE"))
    quantity: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(500))

    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        UniqueConstraint("return_id", "order_line_id", name="uq_return_lines_return_line"),
        Index("ix_return_lines_order_line", "order_line_id"),
    )
