"""Shipping: a store's shipping profile (vendors) and the shipping options of a cart (shoppers)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, put
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Principal, requires_role, requires_user
from api.catalog.schemas import VendorRef
from api.common import money
from api.resources import AppResources
from api.seller.controllers import provide_store
from api.shipping import schemas
from core.errors import InvalidInput
from core.rules.shipping import Rate
from db.models import Vendor
from db.services.shipping import profiles, quotes
from db.services.shipping.methods import Method

CountryQuery = Annotated[str, QueryParameter(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")]
# `state` is a name Litestar keeps for itself, so the parameter is read under its query name.
StateQuery = Annotated[str | None, QueryParameter(name="state", max_length=60, description="State or region")]


def method_out(method: Method, currency: str) -> schemas.Method:
    rate: Rate = method.rate
    return schemas.Method(
        id=method.id,
        name=method.name,
        kind=method.kind,  # type: ignore[arg-type]  # constrained by a CHECK constraint
        zones=[
            schemas.Zone(country=z.country, states=list(z.states) if z.states else None) for z in rate.zones
        ],
        price=money(rate.price, currency),
        per_extra_item=money(rate.per_extra_item, currency),
        free_above=money(rate.free_above, currency) if rate.free_above is not None else None,
        days=(rate.min_days, rate.max_days),
    )


def profile_out(profile: profiles.Profile, currency: str) -> schemas.Profile:
    return schemas.Profile(
        methods=[method_out(m, currency) for m in profile.methods],
        uses_platform_default=profile.uses_default,
        return_window_days=profile.return_window_days,
        own_return_window_days=profile.own_return_window_days,
    )


def _methods_in(data: schemas.ProfileIn, currency: str) -> list[profiles.MethodIn]:
    """The methods as the service takes them; every amount must be in the marketplace currency.

    Raises:
        InvalidInput: an amount in another currency (422, naming it).
    """
    errors = []
    for index, m in enumerate(data.methods):
        for name, value in (
            ("price", m.price),
            ("per_extra_item", m.per_extra_item),
            ("free_above", m.free_above),
        ):
            if value is not None and value.currency.upper() != currency:
                errors.append(
                    {"field": f"methods[{index}].{name}.currency", "message": f"must be {currency}"}
                )
        if m.free_above is not None and m.free_above.amount == 0:
            errors.append({"field": f"methods[{index}].free_above.amount", "message": "must be above 0"})
    if errors:
        raise InvalidInput("Some amounts are not valid.", errors=errors)
    return [
        profiles.MethodIn(
            id=m.id,
            name=m.name.strip(),
            kind=m.kind,
            zones=[(z.country, [s.strip() for s in z.states] if z.states else None) for z in m.zones],
            price=m.price.amount,
            per_extra_item=m.per_extra_item.amount if m.per_extra_item else 0,
            free_above=m.free_above.amount if m.free_above else None,
            min_days=m.days[0],
            max_days=m.days[1],
        )
        for m in data.methods
    ]


class ShippingProfileController(Controller):
    path = "/vendor/shipping-profile"
    tags = ["vendor", "shipping"]
    guards = [requires_role("vendor")]
    dependencies = {"store": Provide(provide_store)}

    @get("/", summary="Your store's shipping methods and return window")
    async def read(
        self,
        db_session: NamedDependency[AsyncSession],
        store: NamedDependency[Vendor],
        resources: NamedDependency[AppResources],
    ) -> schemas.Profile:
        profile = await profiles.read_profile(db_session, resources.settings, store)
        return profile_out(profile, resources.settings.currency)

    @put(
        "/",
        summary="Replace your store's shipping methods",
        description="Methods sent with an `id` are updated, new ones created, the others retired "
        "(orders already placed keep what they chose). An empty list returns the store to the "
        "platform's default method. 422 names each field that is not acceptable.",
    )
    async def replace(
        self,
        data: JSONBody[schemas.ProfileIn],
        db_session: NamedDependency[AsyncSession],
        store: NamedDependency[Vendor],
        resources: NamedDependency[AppResources],
    ) -> schemas.Profile:
        settings = resources.settings
        profile = await profiles.replace_profile(
            db_session,
            settings,
            store,
            _methods_in(data, settings.currency),
            return_window_days=data.return_window_days,
        )
        return profile_out(profile, settings.currency)


class CartShippingController(Controller):
    path = "/cart/shipping-options"
    tags = ["cart", "shipping"]
    guards = [requires_user]

    @get(
        "/",
        summary="Shipping options for your cart, per vendor, for an address",
        description="The cart splits into one group per vendor; each group lists the vendor's methods "
        "that serve the address, cheapest first, priced for that group. A group with no options "
        "cannot be ordered to this address.",
    )
    async def options(
        self,
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        resources: NamedDependency[AppResources],
        country: CountryQuery,
        region: StateQuery = None,
    ) -> schemas.ShippingOptions:
        settings = resources.settings
        groups = await quotes.cart_quote(
            db_session, settings, principal.user_id, quotes.Address(country=country, state=region)
        )
        return schemas.ShippingOptions(groups=[_group_out(g, settings.currency) for g in groups])


def _group_out(group: quotes.Group, currency: str) -> schemas.Group:
    return schemas.Group(
        vendor=VendorRef(id=group.vendor_id, name=group.vendor_name),
        lines=[
            schemas.GroupLine(
                cart_item_id=line.id, variant_id=line.variant_id, title=line.title, quantity=line.quantity
            )
            for line in group.lines
        ],
        subtotal=money(group.subtotal, currency),
        options=[
            schemas.Option(
                method_id=o.method.id,
                name=o.method.name,
                kind=o.method.kind,  # type: ignore[arg-type]  # constrained by a CHECK constraint
                price=money(o.price, currency),
                days=(o.method.rate.min_days, o.method.rate.max_days),
            )
            for o in group.options
        ],
    )
