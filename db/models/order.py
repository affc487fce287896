"""Orders: what a shopper bought, frozen at the moment of purchase.

An order's lines snapshot the title, SKU, size, colour, vendor and unit price, so later catalog
edits never change a past order. Stock is reserved when the order is placed (``variants.stock``
moves to ``variants.reserved``) and either sold when it is paid or released when it is cancelled
or expires. Status changes go through ``db.services.orders.transitions`` only, which checks them
against ``core.rules.orders`` and writes an ``order_events`` row for each.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
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
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base

_SOLD = "'paid', 'partially_shipped', 'shipped', 'delivered'"
_STATUSES = (
    "'pending_payment', 'paid', 'partially_shipped', 'shipped', 'delivered', "
    "'cancelled', 'expired', 'refunded'"
)


class Order(Base):
    __tablename__ = "orders"

    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    status: Mapped[str] = mapped_column(String(20), default="pending_payment")
    currency: Mapped[str] = mapped_column(String(3))
    subtotal_amount: Mapped[int] = mapped_column(BigInteger)
    shipping_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    # Vouchers' discount on the whole order (allocated over the lines in order_lines.discount_amount).
    discount_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    # The voucher whose use gave that discount (a discount comes only from a voucher).
    voucher_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("vouchers.id", ondelete="RESTRICT"), default=None
    )
    total_amount: Mapped[int] = mapped_column(BigInteger)
    item_count: Mapped[int] = mapped_column(Integer)
    shipping_address: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # Until when the stock stays reserved without payment.
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)

    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUSES})", name="status_known"),
        CheckConstraint(
            "subtotal_amount >= 0 AND shipping_amount >= 0 AND discount_amount >= 0",
            name="amounts_not_negative",
        ),
        CheckConstraint(
            "total_amount = subtotal_amount + shipping_amount - discount_amount", name="total_adds_up"
        ),
        CheckConstraint("voucher_id IS NOT NULL OR discount_amount = 0", name="discount_from_voucher"),
        # Staff console: every order, newest first; by status, and placed in a time range.
        Index("ix_orders_status", "status", "id"),
        Index("ix_orders_created_at", "created_at"),
        # A shopper's orders, newest first.
        Index("ix_orders_user", "user_id", "id"),
        # Orders placed with a voucher (promotion reports; a voucher is never deleted while used).
        Index("ix_orders_voucher", "voucher_id", postgresql_where=text("voucher_id IS NOT NULL")),
        # The expiry job only looks at unpaid orders, oldest deadline first.
        Index("ix_orders_unpaid_expiry", "expires_at", postgresql_where=text("status = 'pending_payment'")),
        # Vendor sales stats: sold orders by the day they were paid.
        Index("ix_orders_sold_paid_at", "paid_at", postgresql_where=text(f"status IN ({_SOLD})")),
    )


class OrderLine(Base):
    __tablename__ = "order_lines"

    order_id: Mapped[UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    variant_id: Mapped[UUID] = mapped_column(ForeignKey("variants.id", ondelete="RESTRICT"))
    product_id: Mapped[UUID] = mapped_column(ForeignKey("products.id", ondelete="RESTRICT"))
    vendor_id: Mapped[UUID] = mapped_column(ForeignKey("vendors.id", ondelete="RESTRICT"))
    fulfilment_id: Mapped[UUID] = mapped_column(ForeignKey("fulfilments.id", ondelete="RESTRICT"))
    # Snapshots taken when the order was placed.
    title: Mapped[str] = mapped_column(String(200))
    vendor_name: Mapped[str] = mapped_column(String(120))
    sku: Mapped[str] = mapped_column(String(64))
    size: Mapped[str] = mapped_column(String(16))
    color: Mapped[str] = mapped_column(String(32))
    unit_price_amount: Mapped[int] = mapped_column(BigInteger)
    quantity: Mapped[int] = mapped_column(Integer)
    line_total_amount: Mapped[int] = mapped_column(BigInteger)
    # The line's share of the order's discount (refunds and commission use the discounted amount).
    discount_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    # The platform's commission on this line, in basis points, as the rules stood at placement.
    commission_bps: Mapped[int] = mapped_column(Integer, default=0)
    # Final-sale items cannot be returned (a snapshot of the product's flag).
    final_sale: Mapped[bool] = mapped_column(Boolean, default=False)
    # Units the vendor cancelled before shipping, and units returned and received back.
    cancelled_quantity: Mapped[int] = mapped_column(Integer, default=0)
    returned_quantity: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        UniqueConstraint("order_id", "variant_id", name="uq_order_lines_order_variant"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("line_total_amount = unit_price_amount * quantity", name="line_total_adds_up"),
        CheckConstraint(
            "cancelled_quantity >= 0 AND returned_quantity >= 0 "
            "AND cancelled_quantity + returned_quantity <= quantity",
            name="cancelled_and_returned_within_quantity",
        ),
        CheckConstraint(
            "discount_amount >= 0 AND discount_amount <= line_total_amount", name="discount_within_line"
        ),
        Index("ix_order_lines_fulfilment", "fulfilment_id"),
        Index("ix_order_lines_order", "order_id"),
        # A vendor's orders (their own lines), newest order first.
        Index("ix_order_lines_vendor_order", "vendor_id", "order_id"),
        # Verified-buyer checks and "shoppers like me": who bought a product.
        Index("ix_order_lines_product", "product_id", "order_id"),
    )


class OrderEvent(Base):
    """Audit log of an order's status changes and of its fulfilments' moves (``fulfilment_id``
    set; the statuses are then the fulfilment's): one row per move, never updated."""

    __tablename__ = "order_events"

    order_id: Mapped[UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    fulfilment_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("fulfilments.id", ondelete="CASCADE"), default=None
    )
    from_status: Mapped[str | None] = mapped_column(String(20), default=None)
    to_status: Mapped[str] = mapped_column(String(20))
    # "buyer", "vendor", "staff", "payment", "system"
    actor: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    request_id: Mapped[str | None] = mapped_column(String(128), default=None)

    __table_args__ = (Index("ix_order_events_order", "order_id", "id"),)


class IdempotencyKey(Base):
    """A shopper's ``Idempotency-Key`` for ``POST /orders`` with what it produced.

    Written in the same transaction as the order, so a key exists exactly when its order does;
    a request that failed leaves no key and may be retried with the same one.
    """

    __tablename__ = "idempotency_keys"

    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    # sha256 of the canonical request body: the same key with another body is refused.
    request_hash: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    response_status: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[dict[str, Any]] = mapped_column(JSONB)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("user_id", "key", name="uq_idempotency_keys_user_key"),
        Index("ix_idempotency_keys_expires", "expires_at"),
    )
