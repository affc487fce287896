"""Keeping "shoppers like me" counted: each shopper's body-shape cell, and the sizes kept per
scope and cell (``db.models.shopper_sizes``).

A scope is a product (``p:<id>``) or a brand within a category (``b:<brand>:<category>``); a
shopper kept a size of it when one of their orders that was paid for and not cancelled, refunded
or expired (``core.rules.orders.SOLD``) has a line of it in that size. The counts are rebuilt
from those orders, never adjusted by increments, so running a refresh twice, or two at once
(they take turns on a transaction lock per scope), always leaves the true counts.

:func:`refresh_shopper` follows one shopper's change (an order paid or undone, a new measurement);
:func:`rebuild_all` recounts everything (after bulk loads, or to check the counts).
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from sqlalchemy import String, bindparam, delete, select, text
from sqlalchemy.dialects.postgresql import ARRAY, distinct_on, insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.rules.orders import SOLD
from core.rules.shape_cells import shape_cell
from db.models import Measurement, shopper_cells, shopper_sizes, shopper_totals

# Every (scope, cell, user, size) kept, restricted to the given cells and scopes (NULL: all).
# INSERT_TOTALS and INSERT_SIZES also fill the counts in migration 0018.
_KEPT = """
WITH kept AS (
    SELECT DISTINCT sc.cell, o.user_id, ol.size, ol.product_id, p.brand_id, p.category_id
    FROM shopper_cells sc
    JOIN orders o ON o.user_id = sc.user_id AND o.status = ANY(:sold)
    JOIN order_lines ol ON ol.order_id = o.id
    JOIN products p ON p.id = ol.product_id
    WHERE (CAST(:cells AS bigint[]) IS NULL OR sc.cell = ANY(CAST(:cells AS bigint[])))
), scoped AS (
    SELECT 'p:' || product_id AS scope, cell, user_id, size FROM kept
    UNION
    SELECT 'b:' || brand_id || ':' || category_id, cell, user_id, size FROM kept
    WHERE brand_id IS NOT NULL
), wanted AS (
    SELECT * FROM scoped
    WHERE CAST(:scopes AS text[]) IS NULL OR scope = ANY(CAST(:scopes AS text[]))
)
"""
INSERT_TOTALS = (
    _KEPT
    + """INSERT INTO shopper_totals (scope, cell, shoppers)
SELECT scope, cell, count(DISTINCT user_id) FROM wanted GROUP BY scope, cell"""
)
INSERT_SIZES = (
    _KEPT
    + """INSERT INTO shopper_sizes (scope, cell, size, shoppers)
SELECT scope, cell, size, count(DISTINCT user_id) FROM wanted GROUP BY scope, cell, size"""
)
# The scopes a shopper's orders (any status: an undone order leaves its scopes to recount) touch.
_SCOPES_OF_USER = """
SELECT DISTINCT 'p:' || ol.product_id FROM orders o JOIN order_lines ol ON ol.order_id = o.id
WHERE o.user_id = :user_id
UNION
SELECT DISTINCT 'b:' || p.brand_id || ':' || p.category_id
FROM orders o JOIN order_lines ol ON ol.order_id = o.id JOIN products p ON p.id = ol.product_id
WHERE o.user_id = :user_id AND p.brand_id IS NOT NULL
"""


def product_scope(product_id: UUID) -> str:
    return f"p:{product_id}"


def brand_scope(brand_id: UUID, category_id: UUID) -> str:
    return f"b:{brand_id}:{category_id}"


async def place_shopper(session: AsyncSession, user_id: UUID) -> set[int]:
    """Put the shopper in the cell of their latest ready measurement, the one size advice uses
    (``db.services.measurements.queries.body_profile``), or in none; returns the cells they left
    and joined (empty when nothing moved)."""
    latest = (
        await session.execute(
            select(Measurement.id, Measurement.measurements)
            .where(Measurement.user_id == user_id, Measurement.status == "ready")
            .order_by(Measurement.created_at.desc(), Measurement.id.desc())
            .limit(1)
        )
    ).first()
    cell = shape_cell(latest.measurements or {}) if latest is not None else None
    before = await session.scalar(
        select(shopper_cells.c.cell).where(shopper_cells.c.user_id == user_id).with_for_update()
    )
    if cell == before:
        return set()
    if cell is None or latest is None:
        await session.execute(delete(shopper_cells).where(shopper_cells.c.user_id == user_id))
    else:
        values = {"user_id": user_id, "cell": cell, "measurement_id": latest.id}
        await session.execute(
            insert(shopper_cells)
            .values(**values)
            .on_conflict_do_update(
                index_elements=[shopper_cells.c.user_id],
                set_={"cell": cell, "measurement_id": latest.id, "updated_at": text("now()")},
            )
        )
    return {c for c in (before, cell) if c is not None}


async def refresh_shopper(session: AsyncSession, user_id: UUID) -> int:
    """Recount every scope the shopper's orders touch, in the cells they were and are in (a
    moved shopper changes both). Returns how many scopes were recounted."""
    moved = await place_shopper(session, user_id)
    current = await session.scalar(select(shopper_cells.c.cell).where(shopper_cells.c.user_id == user_id))
    cells = moved | ({current} if current is not None else set())
    if not cells:
        return 0
    scopes = sorted((await session.scalars(text(_SCOPES_OF_USER), {"user_id": user_id})).all())
    await recount(session, scopes, sorted(cells))
    return len(scopes)


async def recount(session: AsyncSession, scopes: Iterable[str], cells: list[int]) -> None:
    """Rebuild the counts of ``scopes`` in ``cells`` from the orders."""
    ordered = sorted(set(scopes))
    if not ordered or not cells:
        return
    # Never during a full rebuild; one refresher per scope at a time, always in the same order
    # (no deadlock between two).
    await session.execute(text("SELECT pg_advisory_xact_lock_shared(hashtext('shopper_sizes:all'))"))
    await session.execute(
        text(
            "SELECT pg_advisory_xact_lock(hashtext('shopper_sizes:' || s)) FROM unnest(:scopes) s"
        ).bindparams(bindparam("scopes", type_=ARRAY(String))),
        {"scopes": ordered},
    )
    for table in (shopper_totals, shopper_sizes):
        await session.execute(delete(table).where(table.c.scope.in_(ordered), table.c.cell.in_(cells)))
    params = {"sold": sorted(SOLD), "cells": cells, "scopes": ordered}
    for statement in (INSERT_TOTALS, INSERT_SIZES):
        await session.execute(text(statement).bindparams(bindparam("cells"), bindparam("scopes")), params)


async def rebuild_all(session: AsyncSession, *, batch: int = 5_000) -> dict[str, int]:
    """Place every shopper with a ready measurement and recount every scope and cell."""
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('shopper_sizes:all'))"))
    await session.execute(delete(shopper_cells))
    latest = (
        select(Measurement.user_id, Measurement.id, Measurement.measurements)
        .where(Measurement.status == "ready")
        .ext(distinct_on(Measurement.user_id))
        .order_by(Measurement.user_id, Measurement.created_at.desc(), Measurement.id.desc())
    )
    placed = 0
    rows = []
    for user_id, measurement_id, measurements in (await session.execute(latest)).all():
        cell = shape_cell(measurements or {})
        if cell is not None:
            rows.append({"user_id": user_id, "cell": cell, "measurement_id": measurement_id})
        if len(rows) >= batch:
            await session.execute(insert(shopper_cells), rows)
            placed, rows = placed + len(rows), []
    if rows:
        await session.execute(insert(shopper_cells), rows)
        placed += len(rows)
    await session.execute(delete(shopper_totals))
    await session.execute(delete(shopper_sizes))
    params = {"sold": sorted(SOLD), "cells": None, "scopes": None}
    for statement in (INSERT_TOTALS, INSERT_SIZES):
        await session.execute(text(statement), params)
    totals = await session.scalar(select(text("count(*)")).select_from(shopper_totals))
    return {"shoppers_placed": placed, "scope_cells": int(totals or 0)}
