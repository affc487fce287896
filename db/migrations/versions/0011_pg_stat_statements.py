"""pg_stat_statements: per-statement counts and timings, where the server has it

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 12:00:00.000000

The extension shows which statements take the database's time (calls, total and mean time,
rows, buffers), for finding slow queries in development and production alike. It ships with
PostgreSQL's contrib modules; the embedded development server has it and loads its library at
start (``shared_preload_libraries``), without which the view answers an error when read.

Created only where it can be: the server has it, and the migrating role is a superuser (it is
not a trusted extension). Elsewhere, e.g. a managed database whose operator creates extensions,
this revision changes nothing; create it there with ``CREATE EXTENSION pg_stat_statements``.

Downgrade keeps it: it holds only statistics, and an operator may have created it before.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        DO $$
        BEGIN
            IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_stat_statements')
               AND (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
                CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
            END IF;
        END
        $$
        """
    )


def downgrade() -> None:
    pass
