"""size-chart rows as fit vectors

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 09:40:00.000000
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pgvector.sqlalchemy
import sqlalchemy as sa
from alembic import op

from core.fit import fit_row_vector

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DIMENSIONS = 42


def upgrade() -> None:
    op.add_column(
        "size_chart_rows", sa.Column("fit_vector", pgvector.sqlalchemy.vector.VECTOR(dim=DIMENSIONS))
    )
    _backfill()
    op.create_index(
        "ix_size_chart_rows_fit_hnsw",
        "size_chart_rows",
        ["fit_vector"],
        unique=False,
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_ops={"fit_vector": "vector_ip_ops"},
    )


def _backfill() -> None:
    """Vectors for the charts that already exist (weighted by each product's garment kind)."""
    bind = op.get_bind()
    parents: dict[object, object] = {}
    garments: dict[object, str | None] = {}
    for row in bind.execute(sa.text("SELECT id, parent_id, garment FROM categories")):
        parents[row.id], garments[row.id] = row.parent_id, row.garment

    def garment_of(category_id: object) -> str | None:
        while category_id is not None:
            garment: str | None = garments.get(category_id)
            if garment:
                return garment
            category_id = parents.get(category_id)
        return None

    rows = bind.execute(
        sa.text(
            "SELECT r.id, r.ranges, p.category_id FROM size_chart_rows r JOIN products p ON p.id = r.product_id"
        )
    ).all()
    update = sa.text("UPDATE size_chart_rows SET fit_vector = CAST(:v AS vector) WHERE id = :id")
    batch = [
        {"id": row.id, "v": json.dumps(fit_row_vector(row.ranges, garment_of(row.category_id)))}
        for row in rows
    ]
    for start in range(0, len(batch), 1000):
        bind.execute(update, batch[start : start + 1000])


def downgrade() -> None:
    op.drop_index("ix_size_chart_rows_fit_hnsw", table_name="size_chart_rows")
    op.drop_column("size_chart_rows", "fit_vector")
