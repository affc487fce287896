"""Accounts: shoppers (``client``), store owners (``vendor``) and ``staff``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import Boolean, CheckConstraint, DateTime, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base

Role = Literal["client", "vendor", "staff"]
ROLES: tuple[Role, ...] = ("client", "vendor", "staff")


class User(Base):
    __tablename__ = "users"

    # Stored normalised (trimmed, lower-cased): the unique index is then case-insensitive.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    full_name: Mapped[str] = mapped_column(String(120))
    phone: Mapped[str | None] = mapped_column(String(32), default=None)
    role: Mapped[str] = mapped_column(String(16), default="client")
    is_verified: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # Carried in every access token; one more revokes the user's tokens (db/services/identity/standing.py).
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # Set by staff: no login, no refresh, no access token accepted.
    suspended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)

    __table_args__ = (
        CheckConstraint("role IN ('client', 'vendor', 'staff')", name="role_known"),
        CheckConstraint("email = lower(btrim(email))", name="email_normalised"),
    )
