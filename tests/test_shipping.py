"""Vendors' shipping profiles over HTTP (GET/PUT /vendor/shipping-profile), and the pricing rules.

The cart's shipping options and orders with a shipping choice are in tests/test_shipping_checkout.py.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.rules.shipping import Rate, Zone, cheapest, parse_zones, price, serves
from core.settings import Settings
from db.models import ShippingMethod, Vendor
from db.services.shipping.methods import DEFAULT_METHOD_ID
from tests.support.catalog import make_store
from tests.support.http import problem
from tests.support.identity import make_user
from tests.test_cart_orders import auth

pytestmark = pytest.mark.anyio

API = "/api/v1"
PROFILE = f"{API}/vendor/shipping-profile"


def ngn(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "NGN"}


def method(
    name: str,
    *,
    kind: str = "standard",
    zones: list[dict[str, Any]] | None = None,
    price: int = 150_000,
    days: tuple[int, int] = (2, 4),
    **extra: Any,
) -> dict[str, Any]:
    return {
        "name": name,
        "kind": kind,
        "zones": zones if zones is not None else [{"country": "NG"}],
        "price": ngn(price),
        "days": list(days),
        **extra,
    }


async def a_vendor(session: AsyncSession, settings: Settings) -> tuple[Vendor, dict[str, str]]:
    owner = await make_user(session, role="vendor")
    return await make_store(session, owner), auth(settings, owner)


async def rows_of(session: AsyncSession, vendor_id: uuid.UUID) -> dict[uuid.UUID, ShippingMethod]:
    session.expire_all()
    found = await session.scalars(select(ShippingMethod).where(ShippingMethod.vendor_id == vendor_id))
    return {row.id: row for row in found}


# --- the profile ----------------------------------------------------------------------------


async def test_a_new_store_ships_with_the_platform_default(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    _, vendor = await a_vendor(session, settings)
    response = await client.get(PROFILE, headers=vendor)
    assert response.status_code == 200, response.text
    profile = response.json()
    assert profile["uses_platform_default"] is True
    assert profile["return_window_days"] == settings.return_window_days
    assert profile["own_return_window_days"] is None
    assert profile["methods"] == [
        {
            "id": str(DEFAULT_METHOD_ID),
            "name": "Standard delivery",
            "kind": "standard",
            "zones": [],
            "price": ngn(settings.shipping_default_price),
            "per_extra_item": ngn(settings.shipping_default_per_extra_item),
            "free_above": None,
            "days": [settings.shipping_default_min_days, settings.shipping_default_max_days],
        }
    ]


async def test_methods_are_created_kept_updated_and_retired(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    store, vendor = await a_vendor(session, settings)
    store_id = store.id
    body = {
        "methods": [
            method(
                "Lagos express",
                kind="express",
                zones=[{"country": "NG", "states": ["Lagos", " Ogun "]}],
                price=200_000,
                days=(1, 2),
            ),
            method(
                "Nationwide",
                zones=[{"country": "NG"}, {"country": "GH", "states": []}],
                price=300_000,
                per_extra_item=ngn(50_000),
                free_above=ngn(5_000_000),
                days=(3, 7),
            ),
        ],
        "return_window_days": 30,
    }
    created = await client.put(PROFILE, json=body, headers=vendor)
    assert created.status_code == 200, created.text
    profile = created.json()
    assert profile["uses_platform_default"] is False
    assert (profile["return_window_days"], profile["own_return_window_days"]) == (30, 30)
    express, nationwide = profile["methods"]
    assert express == {
        "id": express["id"],
        "name": "Lagos express",
        "kind": "express",
        "zones": [{"country": "NG", "states": ["Lagos", "Ogun"]}],
        "price": ngn(200_000),
        "per_extra_item": ngn(0),
        "free_above": None,
        "days": [1, 2],
    }
    assert nationwide["zones"] == [{"country": "NG", "states": None}, {"country": "GH", "states": None}]
    assert (nationwide["per_extra_item"], nationwide["free_above"]) == (ngn(50_000), ngn(5_000_000))
    assert nationwide["days"] == [3, 7]
    ids = {uuid.UUID(express["id"]), uuid.UUID(nationwide["id"])}
    assert DEFAULT_METHOD_ID not in ids
    assert set(await rows_of(session, store_id)) == ids
    assert (await client.get(PROFILE, headers=vendor)).json() == profile

    # Keep Nationwide (changed), leave Lagos express out, add a pickup point; no return window sent:
    # the store follows the platform's again.
    kept = {**method("Nationwide", price=350_000, days=(2, 5)), "id": nationwide["id"]}
    pickup = method("Pickup at Yaba", kind="pickup", zones=[{"country": "NG", "states": ["Lagos"]}], price=0)
    replaced = await client.put(PROFILE, json={"methods": [pickup, kept]}, headers=vendor)
    assert replaced.status_code == 200, replaced.text
    profile = replaced.json()
    assert [m["name"] for m in profile["methods"]] == ["Pickup at Yaba", "Nationwide"]
    new_pickup, updated = profile["methods"]
    assert updated["id"] == nationwide["id"]
    assert (updated["price"], updated["days"], updated["free_above"]) == (ngn(350_000), [2, 5], None)
    assert updated["per_extra_item"] == ngn(0)
    assert updated["zones"] == [{"country": "NG", "states": None}]
    assert new_pickup["id"] not in ids
    assert (new_pickup["kind"], new_pickup["price"]) == ("pickup", ngn(0))
    assert (profile["return_window_days"], profile["own_return_window_days"]) == (
        settings.return_window_days,
        None,
    )
    rows = await rows_of(session, store_id)
    # The retired method stays (past orders and quotes name it) but is archived.
    assert len(rows) == 3
    assert rows[uuid.UUID(express["id"])].archived_at is not None
    assert rows[uuid.UUID(nationwide["id"])].archived_at is None
    assert rows[uuid.UUID(nationwide["id"])].position == 1
    # A retired method cannot be brought back by its id.
    revived = {**method("Lagos express"), "id": express["id"]}
    refused = problem(await client.put(PROFILE, json={"methods": [revived]}, headers=vendor), 422)
    assert [e["field"] for e in refused["errors"]] == ["methods[0].id"]

    # An empty list goes back to the platform default; every method is retired.
    emptied = await client.put(PROFILE, json={"methods": [], "return_window_days": 0}, headers=vendor)
    assert emptied.status_code == 200, emptied.text
    profile = emptied.json()
    assert profile["uses_platform_default"] is True
    assert [m["id"] for m in profile["methods"]] == [str(DEFAULT_METHOD_ID)]
    assert (profile["return_window_days"], profile["own_return_window_days"]) == (0, 0)
    assert all(row.archived_at is not None for row in (await rows_of(session, store_id)).values())


async def test_bad_profiles_are_refused_naming_the_field(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    store, vendor = await a_vendor(session, settings)
    store_id = store.id
    _, rival = await a_vendor(session, settings)
    theirs = await client.put(PROFILE, json={"methods": [method("Rival post")]}, headers=rival)
    rival_id = theirs.json()["methods"][0]["id"]
    mine = await client.put(PROFILE, json={"methods": [method("Courier", price=111_000)]}, headers=vendor)
    assert mine.status_code == 200, mine.text
    before = mine.json()

    no_price = method("Courier")
    del no_price["price"]
    cases: list[tuple[dict[str, Any], list[str]]] = [
        (
            {"methods": [{**method("Courier"), "price": {"amount": 1, "currency": "USD"}}]},
            ["methods[0].price.currency"],
        ),
        (
            {"methods": [method("Courier", free_above={"amount": 9, "currency": "GHS"})]},
            ["methods[0].free_above.currency"],
        ),
        ({"methods": [method("Courier", days=(5, 2))]}, ["methods[0].days"]),
        ({"methods": [method("Express"), method(" express ")]}, ["methods[1].name"]),
        ({"methods": [{**method("Courier"), "id": str(uuid.uuid4())}]}, ["methods[0].id"]),
        ({"methods": [{**method("Courier"), "id": rival_id}]}, ["methods[0].id"]),
        (
            {
                "methods": [
                    method("Courier", zones=[{"country": "NG"}, {"country": "NG", "states": ["Lagos"]}])
                ]
            },
            ["methods[0].zones"],
        ),
        (
            {"methods": [method(f"Courier {i}") for i in range(settings.shipping_max_methods + 1)]},
            ["methods"],
        ),
        ({"methods": [method("Courier", free_above=ngn(0))]}, ["methods[0].free_above.amount"]),
        ({"methods": [no_price]}, ["methods[0].price"]),
        ({}, ["methods"]),
        ({"methods": [{**method("Courier"), "price": 150_000}]}, ["methods[0].price"]),
        (
            {"methods": [{**method("Courier"), "price": {"amount": "a lot", "currency": "NGN"}}]},
            ["methods[0].price.amount"],
        ),
        ({"methods": [{**method("Courier"), "zones": "NG"}]}, ["methods[0].zones"]),
        ({"methods": [{**method("Courier"), "days": [2, "four"]}]}, ["methods[0].days[1]"]),
        ({"methods": [method("Courier", colour="red")]}, ["methods[0].colour"]),
        ({"methods": [method("Courier")], "free_shipping": True}, ["free_shipping"]),
        ({"methods": [method("Courier", kind="drone")]}, ["methods[0].kind"]),
        ({"methods": [method("Courier", price=-1)]}, ["methods[0].price.amount"]),
        ({"methods": [method("Courier", zones=[{"country": "ng"}])]}, ["methods[0].zones[0].country"]),
        ({"methods": [method("Courier", zones=[])]}, ["methods[0].zones"]),
        ({"methods": [method("Courier")], "return_window_days": 400}, ["return_window_days"]),
    ]
    wrong = []
    for body, fields in cases:
        response = await client.put(PROFILE, json=body, headers=vendor)
        if response.status_code != 422 or [e["field"] for e in problem(response, 422)["errors"]] != fields:
            wrong.append(f"{body}: {response.status_code} {response.text[:300]}")
    assert wrong == [], "\n".join(wrong)
    # Nothing of the refused bodies was kept.
    assert (await client.get(PROFILE, headers=vendor)).json() == before
    live = [row for row in (await rows_of(session, store_id)).values() if row.archived_at is None]
    assert [(row.name, row.price_amount) for row in live] == [("Courier", 111_000)]


async def test_only_vendors_with_a_store_have_a_shipping_profile(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    shopper = auth(settings, await make_user(session))
    storeless = auth(settings, await make_user(session, role="vendor"))
    body = {"methods": [method("Courier")]}
    problem(await client.get(PROFILE), 401)
    problem(await client.put(PROFILE, json=body), 401)
    problem(await client.get(PROFILE, headers=shopper), 403)
    problem(await client.put(PROFILE, json=body, headers=shopper), 403)
    assert problem(await client.get(PROFILE, headers=storeless), 403)["type"].endswith("store_required")
    assert problem(await client.put(PROFILE, json=body, headers=storeless), 403)["type"].endswith(
        "store_required"
    )


# --- the pricing rules ----------------------------------------------------------------------


def test_which_methods_serve_an_address() -> None:
    everywhere = Rate(zones=(), price=100)
    assert serves(everywhere, "GH", None)
    nigeria = Rate(zones=(Zone("NG"),), price=100)
    assert serves(nigeria, "NG", None)
    assert serves(nigeria, "ng", "Kano")
    assert not serves(nigeria, "GH", None)
    south = Rate(zones=(Zone("NG", ("Lagos", "Cross River")), Zone("GH")), price=100)
    assert serves(south, "NG", "lagos")
    assert serves(south, "NG", "  crossriver ")
    assert serves(south, "NG", "CROSS  RIVER")
    assert not serves(south, "NG", "Kano")
    assert not serves(south, "NG", None)  # a method for some states needs the address's state
    assert serves(south, "GH", "Ashanti")
    assert not serves(south, "KE", "Lagos")
    assert parse_zones([{"country": "NG", "states": []}, {"country": "GH", "states": ["Accra"]}]) == (
        Zone("NG"),
        Zone("GH", ("Accra",)),
    )


def test_what_a_method_costs() -> None:
    rate = Rate(zones=(), price=300_000, per_extra_item=50_000, free_above=5_000_000)
    assert price(rate, units=1, subtotal=1_000_000) == 300_000
    assert price(rate, units=3, subtotal=4_999_999) == 400_000
    assert price(rate, units=3, subtotal=5_000_000) == 0
    assert price(rate, units=0, subtotal=0) == 300_000
    never_free = Rate(zones=(), price=200_000)
    assert price(never_free, units=4, subtotal=10**9) == 200_000


def test_the_cheapest_quote_then_the_fastest_then_the_first_listed() -> None:
    assert cheapest([]) is None
    assert cheapest([(500, 2, 0), (300, 7, 1), (400, 1, 2)]) == 1
    assert cheapest([(300, 7, 0), (300, 3, 1)]) == 1
    assert cheapest([(300, 3, 1), (300, 3, 0)]) == 1
    assert cheapest([(0, 9, 3)]) == 0
