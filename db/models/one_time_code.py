"""Six-digit one-time codes for email verification and password reset, stored hashed."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, LargeBinary, String, text
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base

CodePurpose = Literal["verify_email", "reset_password"]


class OneTimeCode(Base):
    __tablename__ = "one_time_codes"

    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(32))
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    consumed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # Set when a newer code replaced this one or too many wrong tries burned it.
    invalidated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # The job that issued the code: a redelivered job finds its code instead of making another.
    job_id: Mapped[UUID | None] = mapped_column(unique=True, default=None)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)

    __table_args__ = (
        CheckConstraint("purpose IN ('verify_email', 'reset_password')", name="purpose_known"),
        Index(
            "ix_one_time_codes_live",
            "user_id",
            "purpose",
            postgresql_where=text("consumed_at IS NULL AND invalidated_at IS NULL"),
        ),
    )
