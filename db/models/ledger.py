"""The ledger: every movement of money as a balanced, append-only double-entry transaction.

Amounts are integer minor units; an entry's amount is positive for a debit and negative for a
credit, so every transaction's entries sum to zero — which the database checks when the
transaction that wrote them commits (a deferred constraint trigger), and rows can be neither
updated nor deleted (triggers; see migration 0014). Balances are sums of entries.

Accounts (``code``; one per vendor where it says so):

- ``provider_clearing`` (asset): what the payment provider holds for us;
- ``vendor_pending:<vendor>`` (liability): vendors' earnings not yet payable (return window open);
- ``vendor_available:<vendor>`` (liability): vendors' earnings they can be paid;
- ``payouts_in_transit`` (liability): payouts sent to the provider, not yet confirmed;
- ``platform_commission`` (revenue); ``provider_fees`` (expense);
- ``platform_promotions`` (expense): discounts the platform pays for.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import (
    BigInteger,
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

ACCOUNT_KINDS = ("asset", "liability", "revenue", "expense")


class LedgerAccount(Base):
    __tablename__ = "ledger_accounts"

    code: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(10))
    currency: Mapped[str] = mapped_column(String(3))
    vendor_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("vendors.id", ondelete="RESTRICT"), default=None
    )

    __table_args__ = (
        UniqueConstraint("code", "currency", name="uq_ledger_accounts_code_currency"),
        CheckConstraint(f"kind IN {ACCOUNT_KINDS}", name="kind_known"),
    )


class LedgerTransaction(Base):
    """One money event; ``key`` makes posting it twice a no-op (a job that runs again)."""

    __tablename__ = "ledger_transactions"

    key: Mapped[str] = mapped_column(String(160), unique=True)
    kind: Mapped[str] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3))
    description: Mapped[str] = mapped_column(Text)
    order_id: Mapped[UUID | None] = mapped_column(ForeignKey("orders.id", ondelete="RESTRICT"), default=None)
    payment_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("payments.id", ondelete="RESTRICT"), default=None
    )
    refund_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("refunds.id", ondelete="RESTRICT"), default=None
    )
    payout_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("payouts.id", ondelete="RESTRICT"), default=None
    )
    # When the money moved (the event's time); created_at is when it was written down.
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_ledger_transactions_order", "order_id"),
        Index("ix_ledger_transactions_kind", "kind", "id"),
    )


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"

    transaction_id: Mapped[UUID] = mapped_column(ForeignKey("ledger_transactions.id", ondelete="RESTRICT"))
    account_id: Mapped[UUID] = mapped_column(ForeignKey("ledger_accounts.id", ondelete="RESTRICT"))
    # Debit positive, credit negative.
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # The vendor's part of an order this entry is about (earnings are released per fulfilment).
    fulfilment_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("fulfilments.id", ondelete="RESTRICT"), default=None
    )

    __table_args__ = (
        CheckConstraint("amount <> 0", name="amount_not_zero"),
        Index("ix_ledger_entries_account", "account_id", "id"),
        Index("ix_ledger_entries_transaction", "transaction_id"),
        Index("ix_ledger_entries_fulfilment", "fulfilment_id", postgresql_where="fulfilment_id IS NOT NULL"),
    )


class CommissionRule(Base):
    """The platform's share of a line: a rate for a vendor or a category, from a date.

    The most specific rule in force when an order is placed wins (vendor, then the category or its
    nearest ancestor with a rule, then ``COMMISSION_DEFAULT_BPS``); the rate is snapshotted on
    each order line, so a later change never touches a past order.
    """

    __tablename__ = "commission_rules"

    vendor_id: Mapped[UUID | None] = mapped_column(ForeignKey("vendors.id", ondelete="CASCADE"), default=None)
    category_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("categories.id", ondelete="CASCADE"), default=None
    )
    # Basis points of the line's paid amount (1,000 = 10 %).
    rate_bps: Mapped[int] = mapped_column(Integer)
    effective_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    effective_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)

    __table_args__ = (
        CheckConstraint("rate_bps BETWEEN 0 AND 10000", name="rate_valid"),
        CheckConstraint("(vendor_id IS NULL) <> (category_id IS NULL)", name="one_scope"),
        CheckConstraint("effective_to IS NULL OR effective_to > effective_from", name="period_valid"),
        Index("ix_commission_rules_vendor", "vendor_id", "effective_from"),
        Index("ix_commission_rules_category", "category_id", "effective_from"),
    )
