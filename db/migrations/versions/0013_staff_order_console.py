"""staff order console: orders by the time they were placed

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 16:57:36.527931

The staff console searches orders placed in a time range (``from``/``to`` on ``created_at``);
without this index such a search walks every order newer than the range. Built concurrently, as
docs/runbooks/migrations.md asks for large tables, so orders keep being placed meanwhile.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_orders_created_at", "orders", ["created_at"], unique=False, postgresql_concurrently=True
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index("ix_orders_created_at", table_name="orders", postgresql_concurrently=True)
