"""Vouchers: discount codes funded by the platform or by one store, their uses, and the code a
shopper applied to their cart.

The rules of a code (what it covers, what it takes off) are ``core.rules.vouchers``. A use is
taken in the order's own transaction under the voucher's row lock, and the database holds the
bounds too: ``redeemed_count`` never passes ``total_cap``, and an order has at most one use.
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
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base


class Voucher(Base):
    __tablename__ = "vouchers"

    # Upper-cased when written and when looked up, so codes are unique without regard to case.
    code: Mapped[str] = mapped_column(String(40), unique=True)
    # "platform": the platform pays the discount; "vendor": the store does (vendor_id).
    funded_by: Mapped[str] = mapped_column(String(10))
    vendor_id: Mapped[UUID | None] = mapped_column(ForeignKey("vendors.id", ondelete="CASCADE"), default=None)
    # "percent": value in basis points (1,000 = 10 %); "fixed": value in minor units.
    kind: Mapped[str] = mapped_column(String(10))
    value: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # On the subtotal of the items the code covers.
    min_subtotal: Mapped[int] = mapped_column(BigInteger, default=0)
    max_discount: Mapped[int | None] = mapped_column(BigInteger, default=None)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # "cart" (everything), "vendor", "category" (sub-categories included) or "products": scope_ids.
    scope: Mapped[str] = mapped_column(String(10), default="cart")
    scope_ids: Mapped[list[UUID]] = mapped_column(ARRAY(PG_UUID(as_uuid=True)), default=list)
    per_customer_limit: Mapped[int | None] = mapped_column(Integer, default=None)
    total_cap: Mapped[int | None] = mapped_column(Integer, default=None)
    # Uses taken so far (orders placed with the code), under the row lock.
    redeemed_count: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)

    __table_args__ = (
        CheckConstraint("code = upper(code) AND length(code) >= 3", name="code_normalised"),
        CheckConstraint("funded_by IN ('platform', 'vendor')", name="funded_by_known"),
        CheckConstraint("(funded_by = 'vendor') = (vendor_id IS NOT NULL)", name="vendor_funds_own"),
        CheckConstraint("kind IN ('percent', 'fixed')", name="kind_known"),
        CheckConstraint(
            "(kind = 'percent' AND value BETWEEN 100 AND 10000) OR (kind = 'fixed' AND value > 0)",
            name="value_valid",
        ),
        CheckConstraint("scope IN ('cart', 'vendor', 'category', 'products')", name="scope_known"),
        CheckConstraint("(scope = 'cart') = (cardinality(scope_ids) = 0)", name="scope_ids_match"),
        CheckConstraint(
            "min_subtotal >= 0 AND (max_discount IS NULL OR max_discount > 0)", name="amounts_valid"
        ),
        CheckConstraint("ends_at IS NULL OR ends_at > starts_at", name="window_valid"),
        CheckConstraint(
            "(per_customer_limit IS NULL OR per_customer_limit > 0) AND (total_cap IS NULL OR total_cap > 0)",
            name="limits_positive",
        ),
        # The cap is never exceeded, whatever the code that takes uses.
        CheckConstraint(
            "redeemed_count >= 0 AND (total_cap IS NULL OR redeemed_count <= total_cap)", name="within_cap"
        ),
        # A store's codes, newest first; the platform's codes, newest first.
        Index("ix_vouchers_vendor", "vendor_id", "id"),
        Index("ix_vouchers_funded_by", "funded_by", "id"),
    )


class VoucherRedemption(Base):
    """One use of a code: the order it took money off, by whom, and how much."""

    __tablename__ = "voucher_redemptions"

    voucher_id: Mapped[UUID] = mapped_column(ForeignKey("vouchers.id", ondelete="RESTRICT"))
    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    order_id: Mapped[UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))

    __table_args__ = (
        UniqueConstraint("order_id", name="uq_voucher_redemptions_order"),
        CheckConstraint("amount > 0", name="amount_positive"),
        # A shopper's uses of a code (the per-customer limit).
        Index("ix_voucher_redemptions_voucher_user", "voucher_id", "user_id"),
    )


class CartVoucher(Base):
    """The code a shopper applied to their cart (one at a time), used when they order the cart."""

    __tablename__ = "cart_vouchers"

    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    voucher_id: Mapped[UUID] = mapped_column(ForeignKey("vouchers.id", ondelete="CASCADE"))

    __table_args__ = (UniqueConstraint("user_id", name="uq_cart_vouchers_user"),)
