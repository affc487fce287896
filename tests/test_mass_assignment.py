"""Mass assignment: a client sets only the fields a request body declares, within their values.

Every request body of every route (enumerated from the app) refuses fields it does not declare,
nested bodies included, so ``role``, ``is_verified``, ``vendor_id``, ``status``, ``stock``,
``reserved``, ``price`` and the like cannot ride along on a request meant for something else; the
fields a body does declare keep to their allowed values; and a refused request changes nothing.
"""

from __future__ import annotations

import uuid
from typing import Any, get_args, get_origin, get_type_hints

import httpx
import msgspec
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from api.app import create_app
from core.settings import Settings
from db.models import Product, User, Variant
from tests.conftest import clear_rate_limits
from tests.support.access import POLICY, concrete_path, served_routes
from tests.support.catalog import make_product, make_store
from tests.support.http import problem
from tests.support.identity import bearer, login, make_user
from tests.support.orders import make_order, variants_of

pytestmark = pytest.mark.anyio

API = "/api/v1"
# Fields that belong to the server or to someone else, with a value of a plausible type.
SENSITIVE: dict[str, Any] = {
    "role": "staff",
    "is_verified": True,
    "id": str(uuid.uuid4()),
    "user_id": str(uuid.uuid4()),
    "owner_id": str(uuid.uuid4()),
    "vendor_id": str(uuid.uuid4()),
    "status": "active",
    "stock": 1000,
    "reserved": 0,
    "price": {"amount": 1, "currency": "NGN"},
    "price_amount": 1,
    "total_amount": 1,
    "rating_sum": 500,
    "verified_purchase": True,
    "created_at": "2020-01-01T00:00:00Z",
}


def _structs(kind: Any, seen: set[type] | None = None) -> set[type[msgspec.Struct]]:
    """``kind`` and every Struct nested in its fields."""
    seen = seen if seen is not None else set()
    if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
        if kind in seen:
            return set()
        seen.add(kind)
        found: set[type[msgspec.Struct]] = {kind}
        for hint in get_type_hints(kind, include_extras=True).values():
            found |= _structs(hint, seen)
        return found
    found = set()
    for arg in get_args(kind) if get_origin(kind) is not None else ():
        found |= _structs(arg, seen)
    return found


def _bodies(settings: Settings) -> dict[tuple[str, str], tuple[type[msgspec.Struct], str]]:
    bodies = {}
    for route in served_routes(create_app(settings)):
        data = route.handler.parsed_fn_signature.parameters.get("data")
        if data is not None:
            media = str(getattr(data.kwarg_definition, "media_type", "")).rsplit(".", 1)[-1]
            # An optional body (``Struct | None``) is checked as its Struct.
            annotation = next(
                (arg for arg in get_args(data.annotation) if arg is not type(None)), data.annotation
            )
            bodies[route.key] = (annotation, media)
    return bodies


def test_every_request_body_refuses_unknown_fields(settings: Settings) -> None:
    bodies = _bodies(settings)
    assert len(bodies) >= 20  # the enumeration found the app's bodies
    lax = sorted(
        f"{method} {path}: {struct.__qualname__}"
        for (method, path), (body, _) in bodies.items()
        for struct in _structs(body)
        if not struct.__struct_config__.forbid_unknown_fields
    )
    assert lax == [], "request bodies that silently drop unknown fields"


async def _caller(client: httpx.AsyncClient, session: AsyncSession, access: str) -> dict[str, str]:
    if access in ("public", "signed"):
        return {}
    user = await make_user(session, role={"user": "client"}.get(access, access))
    if access == "vendor":
        await make_store(session, user)
    return bearer(await login(client, user.email))


async def test_undeclared_fields_are_422_on_every_json_body(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings, redis: Redis
) -> None:
    callers = {
        access: await _caller(client, session, access) for access in ("public", "user", "vendor", "staff")
    }
    wrong = []
    for (method, path), (body, media) in sorted(_bodies(settings).items()):
        if media != "JSON":
            continue
        declared = set(body.__struct_fields__)
        headers = callers[POLICY[(method, path)].access]
        if path.endswith("/orders"):
            headers = {**headers, "Idempotency-Key": uuid.uuid4().hex}
        for name, value in SENSITIVE.items():
            if name in declared:
                continue
            # Rate-limited routes (payout accounts) count every attempt; this test is not about them.
            await clear_rate_limits(redis)
            response = await client.request(method, concrete_path(path), headers=headers, json={name: value})
            fields = (
                [e["field"] for e in response.json().get("errors", [])] if response.status_code == 422 else []
            )
            if fields != [name]:
                wrong.append(f"{method} {path} with {name!r}: {response.status_code} {response.text[:160]}")
    assert wrong == [], "\n".join(wrong)


async def _vendor_product(client: httpx.AsyncClient, session: AsyncSession) -> tuple[Product, dict[str, str]]:
    owner = await make_user(session, role="vendor")
    store = await make_store(session, owner)
    product = await make_product(session, store, variants=[("M", "black", 5)])
    return product, bearer(await login(client, owner.email))


@pytest.mark.parametrize(
    ("target", "body", "field"),
    [
        ("product", {"status": "deleted"}, "status"),
        ("product", {"price": {"amount": -1, "currency": "NGN"}}, "price.amount"),
        ("product", {"items": [], "title": "x" * 10_000}, "items"),
        ("variant", {"stock": -1}, "stock"),
        ("variant", {"stock": 10**12}, "stock"),
        ("variant", {"price": {"amount": "free", "currency": "NGN"}}, "price.amount"),
        ("variant", {"reserved": 0}, "reserved"),
    ],
    ids=[
        "status-unknown",
        "negative-price",
        "unknown-first",
        "negative-stock",
        "absurd-stock",
        "price-text",
        "reserved",
    ],
)
async def test_vendor_fields_keep_to_their_values_and_change_nothing(
    client: httpx.AsyncClient, session: AsyncSession, target: str, body: dict[str, Any], field: str
) -> None:
    product, auth = await _vendor_product(client, session)
    variant = (await variants_of(session, product))[0]
    path = (
        f"{API}/vendor/products/{product.id}"
        if target == "product"
        else f"{API}/vendor/variants/{variant.id}"
    )
    refused = problem(await client.patch(path, headers=auth, json=body), 422)
    assert [e["field"] for e in refused["errors"]] == [field]
    await session.refresh(product)
    await session.refresh(variant)
    assert (product.status, product.price_amount) == ("active", 1_500_000)
    assert (variant.stock, variant.reserved) == (5, 0)


async def test_nested_order_lines_take_no_price_or_owner(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    product, _ = await _vendor_product(client, session)
    variant = (await variants_of(session, product))[0]
    buyer = await make_user(session)
    auth = {**bearer(await login(client, buyer.email)), "Idempotency-Key": uuid.uuid4().hex}
    address = {"full_name": "Ada Obi", "line1": "1 Marina", "city": "Lagos", "country": "NG"}
    for extra, field in (
        ({"unit_price": 1}, "items[0].unit_price"),
        ({"vendor_id": str(uuid.uuid4())}, "items[0].vendor_id"),
    ):
        line = {"variant_id": str(variant.id), "quantity": 1, **extra}
        refused = problem(
            await client.post(
                f"{API}/orders", headers=auth, json={"items": [line], "shipping_address": address}
            ),
            422,
        )
        assert [e["field"] for e in refused["errors"]] == [field]
    address_owner = {**address, "user_id": str(uuid.uuid4())}
    refused = problem(
        await client.post(
            f"{API}/orders",
            headers=auth,
            json={
                "items": [{"variant_id": str(variant.id), "quantity": 1}],
                "shipping_address": address_owner,
            },
        ),
        422,
    )
    assert [e["field"] for e in refused["errors"]] == ["shipping_address.user_id"]
    assert (await client.get(f"{API}/orders", headers=auth)).json()["items"] == []
    await session.refresh(variant)
    assert (variant.stock, variant.reserved) == (5, 0)


async def test_staff_cannot_mark_an_order_paid_nor_grant_unknown_roles(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    staff = await make_user(session, role="staff")
    auth = bearer(await login(client, staff.email))
    product, _ = await _vendor_product(client, session)
    variant: Variant = (await variants_of(session, product))[0]
    shopper: User = await make_user(session)
    order = await make_order(session, shopper, [(variant, 1)], status="pending_payment")
    moved = problem(
        await client.post(f"{API}/staff/orders/{order.id}/status", headers=auth, json={"status": "paid"}), 422
    )
    assert [e["field"] for e in moved["errors"]] == ["status"]
    role = problem(
        await client.patch(f"{API}/staff/users/{shopper.id}/role", headers=auth, json={"role": "admin"}), 422
    )
    assert [e["field"] for e in role["errors"]] == ["role"]
    await session.refresh(order)
    await session.refresh(shopper)
    assert (order.status, shopper.role) == ("pending_payment", "client")


async def test_a_client_cannot_make_itself_staff_or_verified(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await make_user(session)
    auth = bearer(await login(client, user.email))
    for body in (
        {"role": "staff"},
        {"full_name": "Ada", "is_verified": False},
        {"email": "other@example.com"},
    ):
        problem(await client.patch(f"{API}/me", headers=auth, json=body), 422)
    me = (await client.get(f"{API}/me", headers=auth)).json()
    assert (me["role"], me["is_verified"], me["email"], me["full_name"]) == (
        "client",
        True,
        user.email,
        "Ada Obi",
    )
