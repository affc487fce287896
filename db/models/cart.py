"""A shopper's cart: one line per variant, quantities only. Prices are read from the catalog when
the cart is shown and again when an order is placed (never stored here)."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base


class CartItem(Base):
    __tablename__ = "cart_items"

    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    variant_id: Mapped[UUID] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"))
    quantity: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        UniqueConstraint("user_id", "variant_id", name="uq_cart_items_user_variant"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        Index("ix_cart_items_user", "user_id", "id"),
    )
