"""Shipping at checkout over HTTP: the cart's options per vendor (GET /cart/shipping-options) and
orders placed with a shipping choice per vendor (POST /orders with ``shipping``).

Two stores with profiles of their own (the platform default is free in tests):
- Lagos Loom: "Lagos same day" (Lagos only, 2 000 NGN, 0-1 days) and "Nationwide" (all of
  Nigeria, 3 000 NGN + 500 NGN per extra item, free from 50 000 NGN, 3-7 days);
- Calabar Couture: "Cross River courier" (Cross River only, 1 000 NGN, 2-3 days) and
  "Express" (Nigeria and Ghana, 5 000 NGN, 1-2 days).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.settings import Settings
from db.models import Fulfilment, Order, User, Variant, Vendor
from db.services.shipping.methods import DEFAULT_METHOD_ID
from db.services.shipping.profiles import MethodIn, replace_profile
from tests.support.catalog import make_product, make_store
from tests.support.http import problem
from tests.support.identity import make_user
from tests.support.orders import variants_of
from tests.test_cart_orders import auth, key, stock_of

pytestmark = pytest.mark.anyio

API = "/api/v1"
OPTIONS = f"{API}/cart/shipping-options"
LAGOS = {"full_name": "Ada Obi", "line1": "1 Marina", "city": "Lagos", "country": "NG", "state": "Lagos"}


def ngn(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "NGN"}


@dataclass
class Shop:
    loom: Vendor
    couture: Vendor
    tee: Variant  # Lagos Loom, 15 000 NGN
    dress: Variant  # Calabar Couture, 40 000 NGN
    methods: dict[str, str]  # name -> id


def _method(
    name: str, kind: str, zones: list[tuple[str, list[str] | None]], price: int, **rest: Any
) -> MethodIn:
    return MethodIn(
        name=name,
        kind=kind,
        zones=zones,
        price=price,
        per_extra_item=rest.get("per_extra_item", 0),
        free_above=rest.get("free_above"),
        min_days=rest["days"][0],
        max_days=rest["days"][1],
    )


@pytest.fixture
async def shop(session: AsyncSession, settings: Settings) -> Shop:
    loom = await make_store(session, name="Lagos Loom")
    couture = await make_store(session, name="Calabar Couture")
    tee = await make_product(session, loom, title="Linen tee", price=1_500_000, variants=[("M", "white", 10)])
    dress = await make_product(
        session, couture, title="Ankara dress", price=4_000_000, variants=[("S", "blue", 5)]
    )
    methods = {}
    loom_profile = await replace_profile(
        session,
        settings,
        loom,
        [
            _method(
                "Nationwide",
                "standard",
                [("NG", None)],
                300_000,
                per_extra_item=50_000,
                free_above=5_000_000,
                days=(3, 7),
            ),
            _method("Lagos same day", "express", [("NG", ["Lagos"])], 200_000, days=(0, 1)),
        ],
        return_window_days=None,
    )
    couture_profile = await replace_profile(
        session,
        settings,
        couture,
        [
            _method("Express", "express", [("NG", None), ("GH", None)], 500_000, days=(1, 2)),
            _method("Cross River courier", "standard", [("NG", ["Cross River"])], 100_000, days=(2, 3)),
        ],
        return_window_days=None,
    )
    await session.commit()
    for profile in (loom_profile, couture_profile):
        methods.update({m.name: str(m.id) for m in profile.methods})
    return Shop(
        loom, couture, (await variants_of(session, tee))[0], (await variants_of(session, dress))[0], methods
    )


async def add(client: httpx.AsyncClient, buyer: dict[str, str], variant: Variant, quantity: int) -> None:
    response = await client.post(
        f"{API}/cart/items", json={"variant_id": str(variant.id), "quantity": quantity}, headers=buyer
    )
    assert response.status_code == 201, response.text


def options(group: dict[str, Any]) -> list[tuple[str, int]]:
    return [(o["name"], o["price"]["amount"]) for o in group["options"]]


async def quote(client: httpx.AsyncClient, buyer: dict[str, str], **address: str) -> list[dict[str, Any]]:
    response = await client.get(OPTIONS, params=address, headers=buyer)
    assert response.status_code == 200, response.text
    groups: list[dict[str, Any]] = response.json()["groups"]
    return groups


# --- the cart's options ---------------------------------------------------------------------


async def test_the_cart_is_quoted_per_vendor_for_the_address(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings, shop: Shop
) -> None:
    buyer = auth(settings, await make_user(session))
    await add(client, buyer, shop.tee, 2)
    await add(client, buyer, shop.dress, 1)

    loom, couture = await quote(client, buyer, country="NG", state=" lagos")
    assert loom["vendor"] == {"id": str(shop.loom.id), "name": "Lagos Loom"}
    assert [(line["variant_id"], line["quantity"]) for line in loom["lines"]] == [(str(shop.tee.id), 2)]
    assert loom["subtotal"] == ngn(3_000_000)
    # Same day 2 000; Nationwide 3 000 + 500 for the second tee. Cheapest first.
    assert options(loom) == [("Lagos same day", 200_000), ("Nationwide", 350_000)]
    assert loom["options"][0] == {
        "method_id": shop.methods["Lagos same day"],
        "name": "Lagos same day",
        "kind": "express",
        "price": ngn(200_000),
        "days": [0, 1],
    }
    assert couture["vendor"]["id"] == str(shop.couture.id)
    assert options(couture) == [("Express", 500_000)]

    # State names match without case or spaces.
    loom, couture = await quote(client, buyer, country="NG", state="CROSSRIVER")
    assert options(loom) == [("Nationwide", 350_000)]
    assert options(couture) == [("Cross River courier", 100_000), ("Express", 500_000)]
    # No state: only methods for the whole country.
    loom, couture = await quote(client, buyer, country="NG")
    assert (options(loom), options(couture)) == ([("Nationwide", 350_000)], [("Express", 500_000)])
    # Lagos Loom does not ship to Ghana: its group has no option.
    loom, couture = await quote(client, buyer, country="GH", state="Greater Accra")
    assert (options(loom), options(couture)) == ([], [("Express", 500_000)])

    # From 50 000 NGN of tees Nationwide is free, so it comes first.
    item_id = next(line["cart_item_id"] for line in loom["lines"])
    assert (
        await client.patch(f"{API}/cart/items/{item_id}", json={"quantity": 4}, headers=buyer)
    ).status_code == 200
    loom, _ = await quote(client, buyer, country="NG", state="Lagos")
    assert loom["subtotal"] == ngn(6_000_000)
    assert options(loom) == [("Nationwide", 0), ("Lagos same day", 200_000)]


async def test_a_store_without_a_profile_offers_the_platform_default(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    store = await make_store(session, name="Plain Store")
    product = await make_product(session, store, variants=[("M", "black", 3)])
    buyer = auth(settings, await make_user(session))
    variant = (await variants_of(session, product))[0]
    await add(client, buyer, variant, 2)
    (group,) = await quote(client, buyer, country="KE")
    assert group["options"] == [
        {
            "method_id": str(DEFAULT_METHOD_ID),
            "name": "Standard delivery",
            "kind": "standard",
            "price": ngn(settings.shipping_default_price),
            "days": [settings.shipping_default_min_days, settings.shipping_default_max_days],
        }
    ]
    assert await quote(client, auth(settings, await make_user(session)), country="NG") == []
    # The default is chosen back by its id; the order keeps it without one (it is no store's method).
    nairobi = {"full_name": "Wanjiru K", "line1": "1 Moi Avenue", "city": "Nairobi", "country": "KE"}
    placed = await place(
        client, buyer, [(variant, 1)], address=nairobi, shipping=[(store, str(DEFAULT_METHOD_ID))]
    )
    assert placed.status_code == 201, placed.text
    (fulfilment,) = placed.json()["fulfilments"]
    assert fulfilment["shipping_method"] == {
        "id": None,
        "name": "Standard delivery",
        "kind": "standard",
        "days": [settings.shipping_default_min_days, settings.shipping_default_max_days],
    }
    assert fulfilment["shipping"] == ngn(settings.shipping_default_price)


async def test_shipping_options_need_a_valid_country_and_a_login(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    buyer = auth(settings, await make_user(session))
    for params in ({"country": "ng"}, {"country": "NGA"}, {"country": "Nigeria"}, {}):
        body = problem(await client.get(OPTIONS, params=params, headers=buyer), 422)
        assert [e["field"] for e in body["errors"]] == ["country"], params
    problem(await client.get(OPTIONS, params={"country": "NG", "state": "x" * 61}, headers=buyer), 422)
    problem(await client.get(OPTIONS, params={"country": "NG"}), 401)


# --- orders ---------------------------------------------------------------------------------


async def place(
    client: httpx.AsyncClient,
    buyer: dict[str, str],
    items: list[tuple[Variant, int]],
    address: dict[str, Any] = LAGOS,
    shipping: Sequence[tuple[Vendor | uuid.UUID, str]] | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {
        "shipping_address": address,
        "items": [{"variant_id": str(v.id), "quantity": q} for v, q in items],
    }
    if shipping is not None:
        body["shipping"] = [
            {"vendor_id": str(v.id if isinstance(v, Vendor) else v), "method_id": m} for v, m in shipping
        ]
    return await client.post(f"{API}/orders", json=body, headers={**buyer, **key()})


async def test_each_vendor_ships_with_the_method_chosen_and_the_total_adds_up(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings, shop: Shop
) -> None:
    buyer = auth(settings, await make_user(session))
    chosen = [(shop.loom, shop.methods["Nationwide"]), (shop.couture, shop.methods["Express"])]
    response = await place(client, buyer, [(shop.tee, 2), (shop.dress, 1)], shipping=chosen)
    assert response.status_code == 201, response.text
    order = response.json()
    by_vendor = {f["vendor"]["id"]: f for f in order["fulfilments"]}
    loom, couture = by_vendor[str(shop.loom.id)], by_vendor[str(shop.couture.id)]
    assert loom["shipping_method"] == {
        "id": shop.methods["Nationwide"],
        "name": "Nationwide",
        "kind": "standard",
        "days": [3, 7],
    }
    assert loom["shipping"] == ngn(350_000)
    assert [line["variant_id"] for line in loom["lines"]] == [str(shop.tee.id)]
    assert (couture["shipping_method"]["name"], couture["shipping"]) == ("Express", ngn(500_000))
    assert order["subtotal"] == ngn(7_000_000)
    assert order["shipping_total"] == order["shipping"] == ngn(850_000)
    assert order["discount_total"] == ngn(0)
    assert order["total"] == ngn(7_850_000)
    total = (
        order["subtotal"]["amount"] + order["shipping_total"]["amount"] - order["discount_total"]["amount"]
    )
    assert total == order["total"]["amount"]
    stored = await session.get(Order, uuid.UUID(order["id"]))
    assert stored is not None
    assert (stored.shipping_amount, stored.total_amount) == (850_000, 7_850_000)

    payment = await client.post(f"{API}/orders/{order['id']}/payments", headers=buyer)
    assert payment.status_code == 201, payment.text
    assert payment.json()["amount"] == order["total"]

    # The order keeps the method as it was chosen, whatever the store changes later.
    await replace_profile(session, settings, shop.loom, [], return_window_days=None)
    await session.commit()
    again = (await client.get(f"{API}/orders/{order['id']}", headers=buyer)).json()
    loom = next(f for f in again["fulfilments"] if f["vendor"]["id"] == str(shop.loom.id))
    assert (loom["shipping_method"]["name"], loom["shipping"]) == ("Nationwide", ngn(350_000))


async def test_a_vendor_left_out_ships_with_its_cheapest_method(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings, shop: Shop
) -> None:
    buyer = auth(settings, await make_user(session))
    cross_river = {**LAGOS, "city": "Calabar", "state": "Cross River"}
    response = await place(
        client,
        buyer,
        [(shop.tee, 1), (shop.dress, 1)],
        address=cross_river,
        shipping=[(shop.couture, shop.methods["Express"])],
    )
    assert response.status_code == 201, response.text
    order = response.json()
    shipped = {
        f["vendor"]["id"]: (f["shipping_method"]["name"], f["shipping"]["amount"])
        for f in order["fulfilments"]
    }
    assert shipped == {str(shop.loom.id): ("Nationwide", 300_000), str(shop.couture.id): ("Express", 500_000)}

    everything_cheapest = (await place(client, buyer, [(shop.tee, 1), (shop.dress, 1)])).json()
    shipped = {
        f["vendor"]["id"]: (f["shipping_method"]["name"], f["shipping"]["amount"])
        for f in everything_cheapest["fulfilments"]
    }
    assert shipped == {
        str(shop.loom.id): ("Lagos same day", 200_000),
        str(shop.couture.id): ("Express", 500_000),
    }
    assert everything_cheapest["total"] == ngn(1_500_000 + 4_000_000 + 700_000)


async def test_bad_shipping_choices_are_refused_and_reserve_nothing(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings, shop: Shop
) -> None:
    user = await make_user(session)
    buyer = auth(settings, user)
    both = [(shop.tee, 1), (shop.dress, 1)]
    ghana = {**LAGOS, "city": "Accra", "country": "GH", "state": "Greater Accra"}
    kano = {**LAGOS, "city": "Kano", "state": "Kano"}
    stranger = await make_store(session, name="Stranger Store")

    unserved = problem(await place(client, buyer, both, address=ghana), 422)
    assert unserved["type"].endswith("shipping_unavailable")
    assert [e["field"] for e in unserved["errors"]] == ["shipping_address.country"]
    assert "Lagos Loom" in unserved["detail"]
    cases: list[tuple[dict[str, Any], list[tuple[Vendor | uuid.UUID, str]], list[str]]] = [
        (LAGOS, [(stranger, shop.methods["Express"])], ["shipping[0].vendor_id"]),
        (
            LAGOS,
            [(shop.loom, shop.methods["Nationwide"]), (shop.loom, shop.methods["Lagos same day"])],
            ["shipping[1].vendor_id"],
        ),
        (
            LAGOS,
            [(shop.couture, shop.methods["Express"]), (shop.loom, shop.methods["Express"])],
            ["shipping[1].method_id"],
        ),
        (kano, [(shop.loom, shop.methods["Lagos same day"])], ["shipping[0].method_id"]),
        (LAGOS, [(shop.loom, str(uuid.uuid4()))], ["shipping[0].method_id"]),
        (LAGOS, [(shop.loom, str(DEFAULT_METHOD_ID))], ["shipping[0].method_id"]),
    ]
    wrong = []
    for address, shipping, fields in cases:
        body = problem(await place(client, buyer, both, address=address, shipping=shipping), 422)
        if (
            not body["type"].endswith("invalid_shipping_choice")
            or [e["field"] for e in body["errors"]] != fields
        ):
            wrong.append(f"{shipping}: {body}")
    assert wrong == [], "\n".join(wrong)
    assert await stock_of(session, shop.tee) == (10, 0)
    assert await stock_of(session, shop.dress) == (5, 0)
    assert await session.scalar(select(func.count()).where(Order.user_id == user.id)) == 0
    assert (
        await session.scalar(
            select(func.count()).select_from(Fulfilment).where(Fulfilment.vendor_id == shop.loom.id)
        )
        == 0
    )


async def test_buyers_only_see_their_own_cart_quoted(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings, shop: Shop
) -> None:
    mine: User = await make_user(session)
    await add(client, auth(settings, mine), shop.tee, 1)
    assert await quote(client, auth(settings, await make_user(session)), country="NG") == []
    (group,) = await quote(client, auth(settings, mine), country="NG")
    assert group["vendor"]["id"] == str(shop.loom.id)
