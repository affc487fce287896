"""Transactional outbox: jobs that must reach the broker even if the process dies after commit."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import DateTime, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base


class OutboxMessage(Base):
    __tablename__ = "outbox_messages"

    job_id: Mapped[UUID] = mapped_column(unique=True)
    task_name: Mapped[str] = mapped_column(String(200))
    args: Mapped[list[Any]] = mapped_column(JSONB, default=list)
    kwargs: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    labels: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text, default=None)

    __table_args__ = (
        # The sweeper only ever looks at undispatched rows, oldest first.
        Index(
            "ix_outbox_messages_pending",
            "created_at",
            postgresql_where=text("dispatched_at IS NULL"),
        ),
    )
