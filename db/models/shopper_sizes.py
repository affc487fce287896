"""What shoppers like me kept, counted ahead of time per body-shape cell.

Plain tables (no surrogate key, no audit columns): they are derived data, rebuilt from orders and
measurements by ``db.services.fit.shopper_sizes`` and never edited by hand.
"""

from __future__ import annotations

from advanced_alchemy.types import GUID
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    func,
)

from db.models.base import metadata

# Each shopper's current cell: the cell of their latest ready measurement.
shopper_cells = Table(
    "shopper_cells",
    metadata,
    Column("user_id", GUID(length=16), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("cell", BigInteger, nullable=False),
    Column(
        "measurement_id", GUID(length=16), ForeignKey("measurements.id", ondelete="CASCADE"), nullable=False
    ),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_shopper_cells_cell", "cell"),
)

# Per scope ("p:<product id>" or "b:<brand id>:<category id>") and cell: how many distinct
# shoppers kept something of it, and how many kept each size (one shopper may keep two sizes).
shopper_totals = Table(
    "shopper_totals",
    metadata,
    Column("scope", String(80), primary_key=True),
    Column("cell", BigInteger, primary_key=True),
    Column("shoppers", Integer, nullable=False),
    CheckConstraint("shoppers > 0", name="shoppers_positive"),
)
shopper_sizes = Table(
    "shopper_sizes",
    metadata,
    Column("scope", String(80), primary_key=True),
    Column("cell", BigInteger, primary_key=True),
    Column("size", String(16), primary_key=True),
    Column("shoppers", Integer, nullable=False),
    CheckConstraint("shoppers > 0", name="shoppers_positive"),
)
