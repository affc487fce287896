"""shopper_cells, shopper_totals, shopper_sizes: "shoppers like me" counted ahead of time

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 20:30:00.000000

Size advice searched the 200 nearest body-shape embeddings and joined their orders on every
request. Shoppers are now placed in cells of a grid over chest, waist, hip and height
(``core.rules.shape_cells``), and the sizes kept are counted per product (and per brand and
category) and cell by a job when an order is paid or undone or a measurement is ready, so
size advice reads a few rows. This migration places every measured shopper and counts what the
existing orders kept, in its transaction (the same statements as the job's).
"""

from __future__ import annotations

from collections.abc import Sequence

import advanced_alchemy
import sqlalchemy as sa
from alembic import op

from core.rules.orders import SOLD
from core.rules.shape_cells import shape_cell
from db.services.fit.shopper_sizes import INSERT_SIZES, INSERT_TOTALS

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "shopper_cells",
        sa.Column("user_id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("cell", sa.BigInteger(), nullable=False),
        sa.Column("measurement_id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_shopper_cells_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["measurement_id"],
            ["measurements.id"],
            name=op.f("fk_shopper_cells_measurement_id_measurements"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_shopper_cells")),
    )
    op.create_index("ix_shopper_cells_cell", "shopper_cells", ["cell"], unique=False)
    op.create_table(
        "shopper_totals",
        sa.Column("scope", sa.String(length=80), nullable=False),
        sa.Column("cell", sa.BigInteger(), nullable=False),
        sa.Column("shoppers", sa.Integer(), nullable=False),
        sa.CheckConstraint("shoppers > 0", name=op.f("ck_shopper_totals_shoppers_positive")),
        sa.PrimaryKeyConstraint("scope", "cell", name=op.f("pk_shopper_totals")),
    )
    op.create_table(
        "shopper_sizes",
        sa.Column("scope", sa.String(length=80), nullable=False),
        sa.Column("cell", sa.BigInteger(), nullable=False),
        sa.Column("size", sa.String(length=16), nullable=False),
        sa.Column("shoppers", sa.Integer(), nullable=False),
        sa.CheckConstraint("shoppers > 0", name=op.f("ck_shopper_sizes_shoppers_positive")),
        sa.PrimaryKeyConstraint("scope", "cell", "size", name=op.f("pk_shopper_sizes")),
    )
    _count_existing()


def _count_existing() -> None:
    bind = op.get_bind()
    latest = bind.execute(
        sa.text(
            "SELECT DISTINCT ON (user_id) user_id, id, measurements FROM measurements "
            "WHERE status = 'ready' ORDER BY user_id, created_at DESC, id DESC"
        )
    ).all()
    placed = [
        {"user_id": user_id, "cell": cell, "measurement_id": measurement_id}
        for user_id, measurement_id, measurements in latest
        if (cell := shape_cell(measurements or {})) is not None
    ]
    if placed:
        bind.execute(
            sa.text(
                "INSERT INTO shopper_cells (user_id, cell, measurement_id) "
                "VALUES (:user_id, :cell, :measurement_id)"
            ),
            placed,
        )
    for statement in (INSERT_TOTALS, INSERT_SIZES):
        bind.execute(sa.text(statement), {"sold": sorted(SOLD), "cells": None, "scopes": None})


def downgrade() -> None:
    op.drop_table("shopper_sizes")
    op.drop_table("shopper_totals")
    op.drop_index("ix_shopper_cells_cell", table_name="shopper_cells")
    op.drop_table("shopper_cells")
