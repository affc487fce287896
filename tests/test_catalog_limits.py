"""Limits of free-form product fields: ``attributes`` is served on every product page, so its
size, depth, key count and lengths are bounded and answered with a 422 naming the field."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from core.rules import attributes as limits
from core.rules.attributes import attribute_problems
from tests.support.catalog import category, make_product
from tests.support.http import problem
from tests.test_catalog import API, vendor_auth

pytestmark = pytest.mark.anyio

TOO_MUCH: dict[str, dict[str, Any]] = {
    "five megabytes": {"blob": "x" * 5_000_000},
    "over the byte cap": {f"k{i}": "y" * 400 for i in range(30)},  # each entry within its limits
    "too deep": {"a": {"b": {"c": 1}}},
    "too many keys": {f"k{i}": i for i in range(limits.MAX_KEYS + 1)},
    "too long a list": {"sizes": ["M"] * (limits.MAX_KEYS + 1)},
    "too long a key": {"k" * (limits.MAX_KEY_LENGTH + 1): 1},
    "an empty key": {"": 1},
    "too long a value": {"care": "z" * (limits.MAX_TEXT_LENGTH + 1)},
}


@pytest.mark.parametrize("case", TOO_MUCH)
async def test_oversized_attributes_are_422_naming_the_field_on_create_and_update(
    client: httpx.AsyncClient, session: AsyncSession, case: str
) -> None:
    store, auth = await vendor_auth(client, session)
    tees = await category(session, "men-tops-t-shirts")
    payload = {"title": "Tee", "category_id": str(tees.id), "price": {"amount": 500_000, "currency": "NGN"}}
    created = await client.post(
        f"{API}/vendor/products", headers=auth, json={**payload, "attributes": TOO_MUCH[case]}
    )
    errors = problem(created, 422)["errors"]
    assert [e["field"].split("[")[0] for e in errors] == ["attributes"], errors

    product = await make_product(session, store)
    updated = await client.patch(
        f"{API}/vendor/products/{product.id}", headers=auth, json={"attributes": TOO_MUCH[case]}
    )
    errors = problem(updated, 422)["errors"]
    assert [e["field"].split("[")[0] for e in errors] == ["attributes"], errors
    assert len(updated.content) < 2_000  # the answer does not echo the oversized value


async def test_attributes_within_the_limits_are_kept(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, auth = await vendor_auth(client, session)
    tees = await category(session, "men-tops-t-shirts")
    attributes = {
        "material": "cotton",
        "weight_gsm": 180,
        "organic": True,
        "sizes_on_model": ["M", "L"],
        "care": {"wash_c": 30, "tumble_dry": False, "note": "inside out"},
    }
    created = await client.post(
        f"{API}/vendor/products",
        headers=auth,
        json={
            "title": "Tee",
            "category_id": str(tees.id),
            "price": {"amount": 500_000, "currency": "NGN"},
            "attributes": attributes,
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["attributes"] == attributes


def test_attribute_rules_catch_what_the_schema_would() -> None:
    for case, value in TOO_MUCH.items():
        assert attribute_problems(value), case
    assert attribute_problems({"a": [1, "b", None], "c": {"d": 1.5}}) == []
