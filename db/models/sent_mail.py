"""Mails handed to the mail server, recorded in the transaction that sends them."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base


class SentMail(Base):
    """One row per mail sent, keyed like its Message-ID: a job that runs again (a redelivery, an
    outbox re-send) finds the row and sends nothing. Kept in PostgreSQL with the orders it is
    about, so losing Redis (a failover, an eviction) cannot make the shop mail anyone twice."""

    __tablename__ = "sent_mails"

    # "order-<id>-confirmation", "order-<id>-status-paid".
    message_key: Mapped[str] = mapped_column(String(200))
    order_id: Mapped[UUID | None] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), default=None)

    __table_args__ = (
        UniqueConstraint("message_key", name="uq_sent_mails_message_key"),
        Index("ix_sent_mails_order", "order_id"),
    )
