"""similarity search: product image vectors stored inline

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22 11:00:00.000000

A 1280-d vector is 5 KiB. By default PostgreSQL moves any value that leaves a row over ~2 KiB
into the TOAST table, so reading one vector costs a TOAST index lookup and three chunk reads.
The exact (filtered) path of similarity search reads thousands of vectors per query; kept in
the row it ran 2.5x faster (2,000 vectors: 16 ms -> 6.4 ms, measured on 100k images). Raising
the table's toast_tuple_target to its maximum keeps rows up to 8160 bytes whole (a row with its
vector is ~5.4 KiB; larger rows are still toasted as before). Column storage PLAIN would do the
same for the vector but make the toaster compress the row's small text columns instead.

The price: a row with its vector takes most of a page, so updating an image row after its
embedding is set cannot be a HOT update and re-indexes the row (the HNSW index included). Image
rows change rarely after they are embedded (thumbnails are normally made first), and the table
is read far more often than written.

Existing vectors are rewritten so they move into their rows too.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The largest value PostgreSQL accepts (a heap page less its header).
TOAST_TUPLE_TARGET = 8160


def upgrade() -> None:
    op.execute(f"ALTER TABLE product_images SET (toast_tuple_target = {TOAST_TUPLE_TARGET})")
    # A fresh value (the array round trip) is stored under the new target; assigning the
    # column to itself would keep the old out-of-line pointer.
    op.execute(
        "UPDATE product_images SET embedding = CAST(CAST(embedding AS real[]) AS vector(1280)) "
        "WHERE embedding IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE product_images RESET (toast_tuple_target)")
