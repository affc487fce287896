"""product image embeddings

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 01:27:46.735865
"""

from __future__ import annotations

from collections.abc import Sequence

import pgvector.sqlalchemy
import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.add_column(
        "product_images", sa.Column("embedding", pgvector.sqlalchemy.vector.VECTOR(dim=1280), nullable=True)
    )
    op.add_column("product_images", sa.Column("embedding_model", sa.String(length=64), nullable=True))
    op.create_index(
        "ix_product_images_embedding_hnsw",
        "product_images",
        ["embedding"],
        unique=False,
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_ops={"embedding": "vector_cosine_ops"},
    )


def downgrade() -> None:

    op.drop_index(
        "ix_product_images_embedding_hnsw",
        table_name="product_images",
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_ops={"embedding": "vector_cosine_ops"},
    )
    op.drop_column("product_images", "embedding_model")
    op.drop_column("product_images", "embedding")
