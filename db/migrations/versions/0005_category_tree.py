"""The fashion category tree every marketplace starts with.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
import uuid_utils.compat as uuid_compat
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (name, garment, children); slugs are the path of names. Frozen here: later changes to the tree
# are new migrations.
_TREE: list[tuple[str, str | None, list[tuple[str, str | None, list[object]]]]] = [
    (
        "Women",
        None,
        [
            (
                "Tops",
                "tops",
                [("T-Shirts", "tops", []), ("Shirts & Blouses", "tops", []), ("Knitwear", "tops", [])],
            ),
            (
                "Dresses",
                "dresses",
                [
                    ("Maxi Dresses", "dresses", []),
                    ("Midi Dresses", "dresses", []),
                    ("Mini Dresses", "dresses", []),
                ],
            ),
            (
                "Bottoms",
                "bottoms",
                [
                    ("Jeans", "bottoms", []),
                    ("Trousers", "bottoms", []),
                    ("Skirts", "bottoms", []),
                    ("Shorts", "bottoms", []),
                ],
            ),
            ("Outerwear", "outerwear", [("Jackets", "outerwear", []), ("Coats", "outerwear", [])]),
            (
                "Traditional",
                None,
                [("Ankara", "dresses", []), ("Kaftans", "dresses", []), ("Iro and Buba", "dresses", [])],
            ),
            ("Shoes", "shoes", []),
            ("Bags & Accessories", "accessories", []),
        ],
    ),
    (
        "Men",
        None,
        [
            (
                "Tops",
                "tops",
                [
                    ("T-Shirts", "tops", []),
                    ("Shirts", "tops", []),
                    ("Polos", "tops", []),
                    ("Knitwear", "tops", []),
                ],
            ),
            (
                "Bottoms",
                "bottoms",
                [("Jeans", "bottoms", []), ("Trousers", "bottoms", []), ("Shorts", "bottoms", [])],
            ),
            ("Outerwear", "outerwear", [("Jackets", "outerwear", []), ("Coats", "outerwear", [])]),
            (
                "Traditional",
                None,
                [("Agbada", "tops", []), ("Kaftans", "tops", []), ("Senator Wear", "tops", [])],
            ),
            ("Shoes", "shoes", []),
            ("Accessories", "accessories", []),
        ],
    ),
]


def _slug(text: str) -> str:
    cleaned = "".join(c.lower() if c.isalnum() else "-" for c in text.replace("&", "and"))
    return "-".join(part for part in cleaned.split("-") if part)


def upgrade() -> None:
    table = sa.table(
        "categories",
        sa.column("id", sa.Uuid()),
        sa.column("parent_id", sa.Uuid()),
        sa.column("name", sa.String()),
        sa.column("slug", sa.String()),
        sa.column("garment", sa.String()),
        sa.column("position", sa.Integer()),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    now = datetime.now(UTC)
    rows: list[dict[str, object]] = []

    def add(nodes: list[tuple[str, str | None, list[object]]], parent: object, prefix: str) -> None:
        for position, (name, garment, children) in enumerate(nodes):
            node_id = uuid_compat.uuid7()
            slug = f"{prefix}-{_slug(name)}" if prefix else _slug(name)
            rows.append(
                {"id": node_id, "parent_id": parent, "name": name, "slug": slug, "garment": garment,
                 "position": position, "created_at": now, "updated_at": now}
            )  # fmt: skip
            add(children, node_id, slug)  # type: ignore[arg-type]

    add(_TREE, None, "")  # type: ignore[arg-type]
    op.bulk_insert(table, rows)


def downgrade() -> None:
    op.execute("DELETE FROM categories WHERE slug LIKE 'women%' OR slug LIKE 'men%'")
