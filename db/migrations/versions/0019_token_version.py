"""users.token_version and users.suspended_at: access tokens that can be revoked at once

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 20:10:00.000000

An access token carries the token version of its user; changing the role, suspending the user or
their store, ending every session and resetting the password add one to it, and every request
compares the two, so older tokens stop working at once instead of when they expire. A suspended
user (``suspended_at`` set) cannot log in, refresh or use a token.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("users", sa.Column("token_version", sa.Integer(), server_default="0", nullable=False))
    op.add_column("users", sa.Column("suspended_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("users", "suspended_at")
    op.drop_column("users", "token_version")
