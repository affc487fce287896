"""Which commission rate applies to an order line when it is placed.

The most specific rule in force wins: one for the line's vendor, then one for its category or
the nearest ancestor category with a rule, then the platform's ``COMMISSION_DEFAULT_BPS``. When
several rules of one scope are in force, the one that started last wins.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

from sqlalchemy import and_, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from core.settings import Settings
from db.models import CommissionRule

_ANCESTORS = text(
    """
    WITH RECURSIVE up(start_id, id, parent_id, depth) AS (
        SELECT c.id, c.id, c.parent_id, 0 FROM categories c WHERE c.id = ANY(CAST(:ids AS uuid[]))
        UNION ALL
        SELECT up.start_id, c.id, c.parent_id, up.depth + 1 FROM categories c JOIN up ON c.id = up.parent_id
    )
    SELECT start_id, id, depth FROM up
    """
)


async def _rules(
    session: AsyncSession, at: datetime, vendor_ids: list[UUID], category_ids: list[UUID]
) -> tuple[dict[UUID, int], dict[UUID, int]]:
    """(vendor -> rate, category -> rate) of the rules in force at ``at``."""
    in_force = and_(
        CommissionRule.effective_from <= at,
        or_(CommissionRule.effective_to.is_(None), CommissionRule.effective_to > at),
    )
    rows = await session.execute(
        select(CommissionRule.vendor_id, CommissionRule.category_id, CommissionRule.rate_bps)
        .where(
            in_force,
            or_(CommissionRule.vendor_id.in_(vendor_ids), CommissionRule.category_id.in_(category_ids)),
        )
        .order_by(CommissionRule.effective_from)
    )
    by_vendor: dict[UUID, int] = {}
    by_category: dict[UUID, int] = {}
    for vendor_id, category_id, rate in rows.all():
        if vendor_id is not None:
            by_vendor[vendor_id] = rate
        elif category_id is not None:
            by_category[category_id] = rate
    return by_vendor, by_category


async def rates(
    session: AsyncSession, settings: Settings, lines: Iterable[tuple[UUID, UUID]], at: datetime
) -> dict[tuple[UUID, UUID], int]:
    """The rate (basis points) for each (vendor id, category id) of an order's lines."""
    wanted = list(dict.fromkeys(lines))
    categories = list({category for _, category in wanted})
    chains: dict[UUID, list[tuple[int, UUID]]] = {}
    for start, category, depth in (await session.execute(_ANCESTORS, {"ids": categories})).all():
        chains.setdefault(start, []).append((depth, category))
    every_category = list({c for chain in chains.values() for _, c in chain})
    by_vendor, by_category = await _rules(session, at, list({v for v, _ in wanted}), every_category)
    found = {}
    for vendor_id, category_id in wanted:
        rate = by_vendor.get(vendor_id)
        if rate is None:
            chain = sorted(chains.get(category_id, []))
            rate = next((by_category[c] for _, c in chain if c in by_category), None)
        found[(vendor_id, category_id)] = rate if rate is not None else settings.commission_default_bps
    return found
