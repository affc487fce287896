"""The methods a store ships with: its live profile, or the platform's default method.

A method here is what pricing and checkout need: id, name, kind, zones, prices and days. The
default method (for stores without a profile) comes from settings and has a fixed id, so a
client can send it back like any other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.rules.shipping import Rate, Zone, parse_zones
from core.settings import Settings
from db.models import ShippingMethod

# The id of the platform's default method in quotes, choices and order snapshots.
DEFAULT_METHOD_ID = UUID("00000000-0000-7000-8000-00000000d3f1")
DEFAULT_METHOD_NAME = "Standard delivery"


@dataclass(frozen=True, slots=True)
class Method:
    id: UUID
    name: str
    kind: str
    rate: Rate
    position: int
    is_default: bool = False

    def snapshot(self) -> dict[str, Any]:
        """What an order keeps of the method chosen (its JSON ``shipping_method``)."""
        return {
            "id": None if self.is_default else str(self.id),
            "name": self.name,
            "kind": self.kind,
            "min_days": self.rate.min_days,
            "max_days": self.rate.max_days,
        }


def default_method(settings: Settings) -> Method:
    countries = settings.shipping_default_countries
    # No countries configured: one zone per ISO code is not needed; an empty tuple means anywhere.
    zones = tuple(Zone(country=c.strip().upper()) for c in countries if c.strip())
    return Method(
        id=DEFAULT_METHOD_ID,
        name=DEFAULT_METHOD_NAME,
        kind="standard",
        rate=Rate(
            zones=zones,
            price=settings.shipping_default_price,
            per_extra_item=settings.shipping_default_per_extra_item,
            free_above=settings.shipping_default_free_above or None,
            min_days=settings.shipping_default_min_days,
            max_days=settings.shipping_default_max_days,
        ),
        position=0,
        is_default=True,
    )


def method_of(row: ShippingMethod) -> Method:
    return Method(
        id=row.id,
        name=row.name,
        kind=row.kind,
        rate=Rate(
            zones=parse_zones(row.zones),
            price=row.price_amount,
            per_extra_item=row.per_extra_item_amount,
            free_above=row.free_above_amount,
            min_days=row.min_days,
            max_days=row.max_days,
        ),
        position=row.position,
    )


async def live_rows(session: AsyncSession, vendor_ids: Iterable[UUID]) -> dict[UUID, list[ShippingMethod]]:
    """Each store's live methods in its order (stores without any are missing)."""
    rows = await session.scalars(
        select(ShippingMethod)
        .where(ShippingMethod.vendor_id.in_(list(vendor_ids)), ShippingMethod.archived_at.is_(None))
        .order_by(ShippingMethod.vendor_id, ShippingMethod.position, ShippingMethod.id)
    )
    found: dict[UUID, list[ShippingMethod]] = {}
    for row in rows:
        found.setdefault(row.vendor_id, []).append(row)
    return found


async def methods_of(
    session: AsyncSession, settings: Settings, vendor_ids: Iterable[UUID]
) -> dict[UUID, list[Method]]:
    """Each store's methods: its profile, or the platform default when it has none."""
    ids = list(dict.fromkeys(vendor_ids))
    rows = await live_rows(session, ids)
    fallback = default_method(settings)
    return {vendor_id: [method_of(r) for r in rows.get(vendor_id, [])] or [fallback] for vendor_id in ids}
