"""Vendors' shipping profiles: the methods a store ships with, where to and at what price.

A method serves zones (a country, optionally only some of its states) at a price per shipment,
plus an optional price per extra item, free above an order subtotal, in an estimated number of
days. Methods a vendor drops from the profile are archived, not deleted: past orders keep their
snapshot anyway, and a method id once quoted stays meaningful.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base

SHIPPING_KINDS = ("standard", "express", "pickup")


class ShippingMethod(Base):
    __tablename__ = "shipping_methods"

    vendor_id: Mapped[UUID] = mapped_column(ForeignKey("vendors.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(10))
    # [{"country": "NG", "states": ["Lagos", ...] | null}]
    zones: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    currency: Mapped[str] = mapped_column(String(3))
    price_amount: Mapped[int] = mapped_column(BigInteger)
    per_extra_item_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    # Free when the vendor's part of the order reaches this subtotal (None: never free).
    free_above_amount: Mapped[int | None] = mapped_column(BigInteger, default=None)
    min_days: Mapped[int] = mapped_column(Integer)
    max_days: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer, default=0)
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)

    __table_args__ = (
        CheckConstraint(f"kind IN {SHIPPING_KINDS}", name="kind_known"),
        CheckConstraint(
            "price_amount >= 0 AND per_extra_item_amount >= 0 AND "
            "(free_above_amount IS NULL OR free_above_amount > 0)",
            name="amounts_valid",
        ),
        CheckConstraint("min_days >= 0 AND max_days >= min_days", name="days_valid"),
        # A store's live methods in the order it lists them.
        Index(
            "ix_shipping_methods_vendor",
            "vendor_id",
            "position",
            postgresql_where=text("archived_at IS NULL"),
        ),
    )
