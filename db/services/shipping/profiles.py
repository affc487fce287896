"""A store's shipping profile: its methods (replaced whole by the vendor) and return window."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from core.settings import Settings
from db.models import ShippingMethod, Vendor
from db.services.shipping.errors import InvalidShippingProfile
from db.services.shipping.methods import Method, default_method, live_rows, method_of


@dataclass(frozen=True, slots=True)
class MethodIn:
    """A method as the vendor sends it; ``id`` names one of the store's live methods to keep."""

    name: str
    kind: str
    zones: list[tuple[str, list[str] | None]]
    price: int
    per_extra_item: int
    free_above: int | None
    min_days: int
    max_days: int
    id: UUID | None = None


@dataclass(frozen=True, slots=True)
class Profile:
    methods: list[Method]
    # True when the store has no methods of its own and ships with the platform's default.
    uses_default: bool
    return_window_days: int
    # The store's own window, None when it follows the platform's.
    own_return_window_days: int | None


async def read_profile(session: AsyncSession, settings: Settings, vendor: Vendor) -> Profile:
    rows = (await live_rows(session, [vendor.id])).get(vendor.id, [])
    methods = [method_of(r) for r in rows]
    return Profile(
        methods=methods or [default_method(settings)],
        uses_default=not methods,
        return_window_days=return_window(settings, vendor),
        own_return_window_days=vendor.return_window_days,
    )


def return_window(settings: Settings, vendor: Vendor) -> int:
    return vendor.return_window_days if vendor.return_window_days is not None else settings.return_window_days


def _check(settings: Settings, methods: Sequence[MethodIn]) -> None:
    errors = []
    if len(methods) > settings.shipping_max_methods:
        errors.append({"field": "methods", "message": f"at most {settings.shipping_max_methods} methods"})
    seen_names: set[str] = set()
    seen_ids: set[UUID] = set()
    for index, m in enumerate(methods):
        if m.name.casefold() in seen_names:
            errors.append({"field": f"methods[{index}].name", "message": "two methods have this name"})
        seen_names.add(m.name.casefold())
        if m.id is not None and m.id in seen_ids:
            errors.append({"field": f"methods[{index}].id", "message": "listed twice"})
        if m.id is not None:
            seen_ids.add(m.id)
        if m.min_days > m.max_days:
            errors.append({"field": f"methods[{index}].days", "message": "the first day is after the last"})
        countries = [country for country, _ in m.zones]
        if len(set(countries)) != len(countries):
            errors.append({"field": f"methods[{index}].zones", "message": "a country is listed twice"})
    if errors:
        raise InvalidShippingProfile("Some shipping methods are not valid.", errors=errors)


async def replace_profile(
    session: AsyncSession,
    settings: Settings,
    vendor: Vendor,
    methods: Sequence[MethodIn],
    *,
    return_window_days: int | None,
) -> Profile:
    """Make ``methods`` the store's profile: listed ids are updated, new ones created, live methods
    left out are archived (an empty list returns the store to the platform default).

    Raises:
        InvalidShippingProfile: too many methods, duplicate names or ids, days out of order, a
            country twice in one method, or an id that is not one of the store's live methods (422).
    """
    _check(settings, methods)
    existing = {row.id: row for row in (await live_rows(session, [vendor.id])).get(vendor.id, [])}
    unknown = [
        {"field": f"methods[{i}].id", "message": "not one of this store's methods"}
        for i, m in enumerate(methods)
        if m.id is not None and m.id not in existing
    ]
    if unknown:
        raise InvalidShippingProfile("Some method ids are not this store's.", errors=unknown)
    now = datetime.now(UTC)
    kept = {m.id for m in methods if m.id is not None}
    for row_id, row in existing.items():
        if row_id not in kept:
            row.archived_at = now
    for position, m in enumerate(methods):
        row = existing[m.id] if m.id is not None else ShippingMethod(vendor_id=vendor.id)
        row.name = m.name
        row.kind = m.kind
        row.zones = [{"country": country.upper(), "states": states or None} for country, states in m.zones]
        row.currency = settings.currency
        row.price_amount = m.price
        row.per_extra_item_amount = m.per_extra_item
        row.free_above_amount = m.free_above
        row.min_days = m.min_days
        row.max_days = m.max_days
        row.position = position
        if m.id is None:
            session.add(row)
    vendor.return_window_days = return_window_days
    await session.flush()
    return await read_profile(session, settings, vendor)
