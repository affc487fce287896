"""Shipping quotes for a cart, and the methods an order ships with.

A cart or order splits into one group per vendor; each group ships on its own, priced by that
vendor's method for the group's units and subtotal (``core.rules.shipping``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from core.rules.shipping import price, serves
from core.settings import Settings
from db.services.orders.cart import CartLine, cart_lines
from db.services.shipping.errors import InvalidShippingChoice, ShippingUnavailable
from db.services.shipping.methods import Method, methods_of


@dataclass(frozen=True, slots=True)
class Address:
    country: str
    state: str | None = None


@dataclass(frozen=True, slots=True)
class Option:
    method: Method
    price: int


@dataclass(frozen=True, slots=True)
class Group:
    """One vendor's part of a cart or order and what it costs to ship."""

    vendor_id: UUID
    vendor_name: str
    units: int
    subtotal: int
    lines: list[CartLine]
    # Methods serving the address, cheapest first (then fastest, then the store's order).
    options: list[Option]


@dataclass(frozen=True, slots=True)
class Chosen:
    """The method an order ships a vendor's part with, and its price."""

    method: Method
    amount: int

    def snapshot(self) -> dict[str, Any]:
        return self.method.snapshot()


def _options(methods: Sequence[Method], address: Address, units: int, subtotal: int) -> list[Option]:
    options = [
        Option(method=m, price=price(m.rate, units=units, subtotal=subtotal))
        for m in methods
        if serves(m.rate, address.country, address.state)
    ]
    return sorted(options, key=lambda o: (o.price, o.method.rate.max_days, o.method.position))


async def cart_quote(
    session: AsyncSession, settings: Settings, user_id: UUID, address: Address
) -> list[Group]:
    """The caller's cart split by vendor (in the cart's order), each with its shipping options."""
    lines = [line for line in await cart_lines(session, user_id) if line.listed]
    by_vendor: dict[UUID, list[CartLine]] = {}
    for line in lines:
        by_vendor.setdefault(line.vendor_id, []).append(line)
    methods = await methods_of(session, settings, by_vendor)
    groups = []
    for vendor_id, group in by_vendor.items():
        units = sum(line.quantity for line in group)
        subtotal = sum(line.unit_price * line.quantity for line in group)
        groups.append(
            Group(
                vendor_id=vendor_id,
                vendor_name=group[0].vendor_name,
                units=units,
                subtotal=subtotal,
                lines=group,
                options=_options(methods[vendor_id], address, units, subtotal),
            )
        )
    return groups


@dataclass(frozen=True, slots=True)
class VendorPart:
    """What an order holds of one vendor, for choosing its shipping."""

    vendor_id: UUID
    vendor_name: str
    units: int
    subtotal: int


async def choose(
    session: AsyncSession,
    settings: Settings,
    parts: Sequence[VendorPart],
    address: Address,
    choices: Sequence[tuple[UUID, UUID]] | None,
) -> dict[UUID, Chosen]:
    """The method each vendor's part ships with: the one chosen (``(vendor_id, method_id)``
    pairs), else the cheapest serving the address.

    Raises:
        InvalidShippingChoice: a choice names a vendor with nothing in the order, names one twice,
            or names a method that is not that vendor's or does not serve the address (422).
        ShippingUnavailable: a vendor has no method serving the address (422).
    """
    by_vendor = {part.vendor_id: part for part in parts}
    wanted = _check_choices(choices or [], by_vendor)
    methods = await methods_of(session, settings, by_vendor)
    chosen: dict[UUID, Chosen] = {}
    unavailable = []
    for part in parts:
        options = _options(methods[part.vendor_id], address, part.units, part.subtotal)
        if not options:
            unavailable.append(part)
            continue
        if part.vendor_id not in wanted:
            chosen[part.vendor_id] = Chosen(method=options[0].method, amount=options[0].price)
            continue
        index, method_id = wanted[part.vendor_id]
        match = next((o for o in options if o.method.id == method_id), None)
        if match is None:
            raise InvalidShippingChoice(
                f"{part.vendor_name} has no shipping method {method_id} for this address.",
                errors=[
                    {"field": f"shipping[{index}].method_id", "message": "not a method serving this address"}
                ],
            )
        chosen[part.vendor_id] = Chosen(method=match.method, amount=match.price)
    if unavailable:
        where = address.country + (f" ({address.state})" if address.state else "")
        raise ShippingUnavailable(
            f"{', '.join(p.vendor_name for p in unavailable)} cannot ship to {where}.",
            errors=[
                {"field": "shipping_address.country", "message": f"{p.vendor_name} does not ship there"}
                for p in unavailable
            ],
        )
    return chosen


def _check_choices(
    choices: Sequence[tuple[UUID, UUID]], parts: dict[UUID, VendorPart]
) -> dict[UUID, tuple[int, UUID]]:
    wanted: dict[UUID, tuple[int, UUID]] = {}
    errors = []
    for index, (vendor_id, method_id) in enumerate(choices):
        if vendor_id not in parts:
            errors.append({"field": f"shipping[{index}].vendor_id", "message": "no item of this vendor"})
        elif vendor_id in wanted:
            errors.append({"field": f"shipping[{index}].vendor_id", "message": "listed twice"})
        else:
            wanted[vendor_id] = (index, method_id)
    if errors:
        raise InvalidShippingChoice("Some shipping choices do not match the order.", errors=errors)
    return wanted
