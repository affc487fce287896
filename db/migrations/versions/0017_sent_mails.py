"""sent_mails: order mails recorded as sent in PostgreSQL, in the transaction that sends them

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 18:10:00.000000

Order mails were recorded as sent in Redis only, so a Redis failover or eviction could send a
buyer the same mail again. The row is written in the sending job's transaction (before the
hand-over, committed after it): a concurrent run of the same mail waits on the unique key and
then finds it.
"""

from __future__ import annotations

from collections.abc import Sequence

import advanced_alchemy
import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sent_mails",
        sa.Column("id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("message_key", sa.String(length=200), nullable=False),
        sa.Column("order_id", advanced_alchemy.types.guid.GUID(length=16), nullable=True),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_sent_mails_order_id_orders"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sent_mails")),
        sa.UniqueConstraint("message_key", name="uq_sent_mails_message_key"),
    )
    op.create_index("ix_sent_mails_order", "sent_mails", ["order_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_sent_mails_order", table_name="sent_mails")
    op.drop_table("sent_mails")
