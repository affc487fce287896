"""Bodies of the shipping endpoints: a store's shipping profile and a cart's shipping options."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

import msgspec
from msgspec import Meta

from api.catalog.schemas import VendorRef
from api.common import Currency, Money

Country = Annotated[str, Meta(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")]
StateName = Annotated[str, Meta(min_length=1, max_length=60, pattern=r"\S")]
Days = Annotated[int, Meta(ge=0, le=90)]
ShippingKind = Literal["standard", "express", "pickup"]


class Amount(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An amount a vendor charges, in minor units of the marketplace currency; zero allowed."""

    amount: Annotated[int, Meta(ge=0, le=10**10, description="Integer minor units (kobo, cents)")]
    currency: Currency


class Zone(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    country: Country
    # Omitted or empty: the whole country.
    states: Annotated[list[StateName], Meta(max_length=100)] | None = None


class MethodIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=80, pattern=r"\S")]
    kind: ShippingKind
    zones: Annotated[list[Zone], Meta(min_length=1, max_length=60)]
    price: Amount
    days: Annotated[tuple[Days, Days], Meta(description="[min, max] estimated delivery days")]
    per_extra_item: Amount | None = None
    free_above: Amount | None = None
    # Sent back to keep (update) one of the store's methods; omitted for a new method.
    id: UUID | None = None


class ProfileIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The whole profile: methods left out are retired; an empty list means the platform default."""

    methods: Annotated[list[MethodIn], Meta(max_length=100)]
    # Days after delivery a shopper may ask to return items; null follows the platform's window.
    return_window_days: Annotated[int, Meta(ge=0, le=365)] | None = None


class Method(msgspec.Struct):
    id: UUID
    name: str
    kind: ShippingKind
    zones: list[Zone]
    price: Money
    per_extra_item: Money
    free_above: Money | None
    days: tuple[int, int]


class Profile(msgspec.Struct):
    methods: list[Method]
    # True when the store has no methods of its own and ships with the platform's default.
    uses_platform_default: bool
    return_window_days: int
    own_return_window_days: int | None


class Option(msgspec.Struct):
    method_id: UUID
    name: str
    kind: ShippingKind
    price: Money
    days: tuple[int, int]


class GroupLine(msgspec.Struct):
    cart_item_id: UUID
    variant_id: UUID
    title: str
    quantity: int


class Group(msgspec.Struct):
    vendor: VendorRef
    lines: list[GroupLine]
    subtotal: Money
    # Cheapest first; empty when the vendor does not ship to the address.
    options: list[Option]


class ShippingOptions(msgspec.Struct):
    groups: list[Group]
