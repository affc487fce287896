"""Vendors' payouts: the bank account each vendor is paid to, and every payout sent through the
payment provider's transfer API.

A payout's money leaves the vendor's available balance when the payout is made (ledger:
``vendor_available`` → ``payouts_in_transit``) and either reaches the vendor (``paid``) or comes
back (``failed``, ``reversed``); see ``db/services/payouts/``.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base

PAYOUT_STATUSES = ("pending", "processing", "paid", "failed", "reversed")
PAYOUT_REQUESTERS = ("vendor", "schedule", "staff")


class PayoutAccount(Base):
    """The bank account a vendor is paid to, as the provider resolved it (one per vendor).

    The full account number is not kept: the provider needs it once, to make the transfer
    recipient, and transfers name the recipient by its code from then on. What stays is its last
    four digits (to show the vendor which account it is) and a keyed hash (HMAC-SHA256 with a key
    derived from ``SECRET_KEY``; a plain hash of ten digits could be reversed by trying them all),
    which tells whether an account given again is the same one.
    """

    __tablename__ = "payout_accounts"

    vendor_id: Mapped[UUID] = mapped_column(ForeignKey("vendors.id", ondelete="RESTRICT"), unique=True)
    provider: Mapped[str] = mapped_column(String(20))
    bank_code: Mapped[str] = mapped_column(String(20))
    account_last4: Mapped[str] = mapped_column(String(4))
    account_hash: Mapped[str] = mapped_column(String(64))
    # The name the provider resolved the account to (what the vendor is shown to confirm).
    account_name: Mapped[str] = mapped_column(String(200))
    recipient_code: Mapped[str] = mapped_column(String(100))
    currency: Mapped[str] = mapped_column(String(3))


class Payout(Base):
    """Money sent to a vendor's bank account.

    ``pending`` (made; the money is in transit in the ledger; the transfer job will send it) →
    ``processing`` (the provider accepted the transfer) → ``paid`` (``transfer.success``) or
    ``failed`` (``transfer.failed``, or the provider refused it: the money is available again);
    ``paid`` → ``reversed`` (``transfer.reversed``: the bank sent it back; available again).
    """

    __tablename__ = "payouts"

    vendor_id: Mapped[UUID] = mapped_column(ForeignKey("vendors.id", ondelete="RESTRICT"))
    provider: Mapped[str] = mapped_column(String(20))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(12), default="pending")
    # Ours, sent to the provider, which refuses a reference twice: a retry never pays twice.
    reference: Mapped[str] = mapped_column(String(100), unique=True)
    # The account as it was when the payout was made (a vendor may replace it later).
    recipient_code: Mapped[str] = mapped_column(String(100))
    bank_code: Mapped[str] = mapped_column(String(20))
    account_last4: Mapped[str] = mapped_column(String(4))
    transfer_code: Mapped[str | None] = mapped_column(String(100), default=None)
    failure_reason: Mapped[str | None] = mapped_column(Text, default=None)
    requested_by: Mapped[str] = mapped_column(String(10))
    # Times the transfer job went to send it: past the first, it asks the provider by reference
    # before sending (a worker may have died after the provider accepted it).
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)

    __table_args__ = (
        CheckConstraint(f"status IN {PAYOUT_STATUSES}", name="status_known"),
        CheckConstraint(f"requested_by IN {PAYOUT_REQUESTERS}", name="requester_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_payouts_vendor", "vendor_id", "id"),
        Index("ix_payouts_status", "status", "id"),
        # Reconciliation and the in-transit balance: payouts not settled yet.
        Index(
            "ix_payouts_open",
            "vendor_id",
            postgresql_where=text("status IN ('pending', 'processing')"),
        ),
    )
