"""Shipping prices: which of a vendor's methods serve an address, and what each costs.

A method serves an address when it has no zones (everywhere), or one of its zones names the
address's country and either lists no states (the whole country) or lists the address's state
(compared without case or spaces).
Its price for a vendor's part of an order is the price per shipment plus ``per_extra_item`` for
every unit after the first, or nothing when that part's subtotal reaches ``free_above``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Zone:
    country: str
    states: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Rate:
    """A method as the pricing needs it (ids and names travel alongside)."""

    zones: tuple[Zone, ...]
    price: int
    per_extra_item: int = 0
    free_above: int | None = None
    min_days: int = 0
    max_days: int = 0


def _norm(value: str) -> str:
    return "".join(value.split()).casefold()


def serves(rate: Rate, country: str, state: str | None) -> bool:
    """Whether ``rate`` ships to ``country`` (ISO 3166-1 alpha-2) and ``state``; a rate without
    zones (the platform default with no countries configured) ships everywhere."""
    if not rate.zones:
        return True
    for zone in rate.zones:
        if zone.country.upper() != country.upper():
            continue
        if not zone.states:
            return True
        if state is not None and _norm(state) in {_norm(s) for s in zone.states}:
            return True
    return False


def price(rate: Rate, *, units: int, subtotal: int) -> int:
    """What ``units`` items worth ``subtotal`` cost to ship with ``rate`` (minor units)."""
    if rate.free_above is not None and subtotal >= rate.free_above:
        return 0
    return rate.price + rate.per_extra_item * max(0, units - 1)


def cheapest(quotes: Iterable[tuple[int, int, int]]) -> int | None:
    """Index of the cheapest of ``(price, max_days, position)`` quotes (faster, then listed first on
    a tie); None when there are none."""
    ranked = sorted(enumerate(quotes), key=lambda item: item[1])
    return ranked[0][0] if ranked else None


def parse_zones(zones: Sequence[dict[str, object]]) -> tuple[Zone, ...]:
    """Zones as stored (``[{"country": "NG", "states": [...] | None}]``)."""
    parsed = []
    for zone in zones:
        states = zone.get("states")
        parsed.append(
            Zone(
                country=str(zone["country"]),
                states=tuple(str(s) for s in states) if isinstance(states, list) and states else None,
            )
        )
    return tuple(parsed)
