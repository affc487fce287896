"""Object-level authorisation (BOLA), enumerated from the routes.

Every route whose rule in ``tests/support/access.py`` scopes its objects (``owner`` or
``hidden``) has a case here, and the set of cases must equal the set of such routes. A case makes
a real object of one user (or vendor), then:
- every stranger (another user of the same kind, another vendor, nobody) gets exactly the answer
  a random id gets (404 with the same problem, bar the request id): existence is never revealed.
  Strangers the route's rule turns away before any object is looked up (no token on a route that
  needs one: 401; a shopper on a vendor route: 403) get that answer, again the same as a random id's;
- the owner, asked after the strangers, still gets through (so the object was real, and the
  strangers changed nothing that stops its owner).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.settings import Settings
from db.models import Fulfilment, Notification, OrderLine, Product, User, Variant, Vendor
from tests.support.access import POLICY, Rule, concrete_path
from tests.support.catalog import image_bytes, make_product, make_store
from tests.support.identity import bearer, login, make_user
from tests.support.orders import make_order, variants_of
from tests.test_fit import TOPS_CHART, chart, profile

pytestmark = pytest.mark.anyio

API = "/api/v1"
P = "{product_id:uuid}"
F = "/vendor/fulfilments/{fulfilment_id:uuid}"
R = "/vendor/returns/{return_id:uuid}"
# Who calls as a vendor (the others are turned away from vendor routes by their role).
VENDORS = frozenset({"vendor", "rival"})


@dataclass
class World:
    client: httpx.AsyncClient
    session: AsyncSession
    auth: dict[str, dict[str, str]]
    buyer: User
    store: Vendor
    listed: Product
    draft: Product
    variant: Variant


@dataclass
class Case:
    """A request on ``owner``'s object (``params`` fill the path)."""

    params: dict[str, str]
    owner: str | None  # None: nobody sees it (a suspended store)
    strangers: list[str]
    owner_status: int | None = None
    json: Any = None
    files: dict[str, Any] | None = None
    # What must still hold once the strangers have called (for routes whose answer is the same
    # whether or not the caller had the object, such as an idempotent unsave).
    after: Callable[[], Awaitable[None]] | None = None


async def _world(client: httpx.AsyncClient, session: AsyncSession) -> World:
    auth: dict[str, dict[str, str]] = {"nobody": {}}
    buyer = await make_user(session)
    stranger = await make_user(session)
    await profile(session, buyer)
    await profile(session, stranger)
    owner = await make_user(session, role="vendor")
    rival = await make_user(session, role="vendor")
    store = await make_store(session, owner)
    await make_store(session, rival)
    listed = await make_product(session, store, title="Listed tee", variants=[("M", "black", 50)])
    draft = await make_product(session, store, title="Draft tee", status="draft")
    await chart(session, store, draft.id, TOPS_CHART)
    for name, user in (("buyer", buyer), ("stranger", stranger), ("vendor", owner), ("rival", rival)):
        auth[name] = bearer(await login(client, user.email))
    variant = (await variants_of(session, listed))[0]
    return World(client, session, auth, buyer, store, listed, draft, variant)


async def _order(w: World, status: str = "pending_payment") -> str:
    order = await make_order(w.session, w.buyer, [(w.variant, 1)], status=status)
    return str(order.id)


async def _cart_item(w: World) -> str:
    added = await w.client.post(
        f"{API}/cart/items", headers=w.auth["buyer"], json={"variant_id": str(w.variant.id), "quantity": 1}
    )
    assert added.status_code == 201, added.text
    return str(added.json()["items"][0]["id"])


async def _session_id(w: World) -> str:
    listed = await w.client.get(f"{API}/me/sessions", headers=w.auth["buyer"])
    return str(listed.json()["items"][0]["id"])


async def _notification(w: World) -> str:
    notice = Notification(
        user_id=w.buyer.id,
        kind="order_paid",
        title="Paid",
        body="Your order is paid.",
        data={},
        dedupe_key="x",
    )
    w.session.add(notice)
    await w.session.commit()
    return str(notice.id)


async def _measurement(w: World) -> str:
    return str((await profile(w.session, w.buyer)).id)


async def _review(w: World) -> str:
    await _order(w, status="paid")
    written = await w.client.post(
        f"{API}/products/{w.listed.id}/reviews",
        headers=w.auth["buyer"],
        json={"rating": 4, "title": "Good tee", "body": "Fits well."},
    )
    assert written.status_code == 201, written.text
    return str(w.listed.id)


async def _saved(w: World) -> Case:
    saved = await w.client.put(f"{API}/me/wishlist/{w.listed.id}", headers=w.auth["buyer"])
    assert saved.status_code == 204, saved.text

    async def still_saved() -> None:
        mine = await w.client.get(f"{API}/me/wishlist", headers=w.auth["buyer"])
        assert [item["product"]["id"] for item in mine.json()["items"]] == [str(w.listed.id)]

    # Unsaving is idempotent (204 whether or not it was saved): the stranger's call answers the same
    # as for any product, and must leave the buyer's wishlist alone.
    return Case({"product_id": str(w.listed.id)}, "buyer", ["stranger"], 204, after=still_saved)


async def _suspended_store(w: World) -> Case:
    store = await make_store(w.session)
    store.status = "suspended"
    await w.session.commit()
    return Case({"vendor_id": str(store.id)}, None, ["nobody", "stranger", "vendor"])


def _vendor_case(w: World, owner_status: int, **kwargs: Any) -> Case:
    return Case({"product_id": str(w.draft.id)}, "vendor", ["rival"], owner_status, **kwargs)


def _hidden(w: World, owner_status: int | None, strangers: list[str], **kwargs: Any) -> Case:
    """The vendor's draft product: only its vendor may know it exists."""
    return Case(
        {"product_id": str(w.draft.id)}, "vendor" if owner_status else None, strangers, owner_status, **kwargs
    )


CaseMaker = Callable[[World], Awaitable[Case]]


async def _const(case: Case) -> Case:
    return case


def _cases() -> dict[tuple[str, str], CaseMaker]:
    review = {"rating": 5, "title": "Lovely", "body": "Great fit."}
    everyone = ["nobody", "stranger", "rival"]
    return {
        ("DELETE", "/me/sessions/{session_id:uuid}"): lambda w: _owned(w, "session_id", _session_id, 204),
        ("POST", "/me/notifications/{notification_id:uuid}/read"): lambda w: _owned(
            w, "notification_id", _notification, 204
        ),
        ("GET", f"/products/{P}"): lambda w: _const(_hidden(w, 200, everyone)),
        ("GET", f"/products/{P}/similar"): lambda w: _const(_hidden(w, None, everyone)),
        ("GET", f"/products/{P}/reviews"): lambda w: _const(_hidden(w, None, everyone)),
        ("POST", f"/products/{P}/reviews"): lambda w: _const(
            _hidden(w, None, ["stranger", "rival"], json=review)
        ),
        ("GET", f"/products/{P}/fit"): lambda w: _const(_hidden(w, None, ["stranger", "buyer"])),
        ("PUT", f"/me/wishlist/{P}"): lambda w: _const(_hidden(w, None, ["stranger", "rival"])),
        ("GET", "/vendors/{vendor_id:uuid}"): _suspended_store,
        ("GET", f"/vendor/products/{P}"): lambda w: _const(_vendor_case(w, 200)),
        ("PATCH", f"/vendor/products/{P}"): lambda w: _const(_vendor_case(w, 200, json={"title": "Renamed"})),
        ("POST", f"/vendor/products/{P}/variants"): lambda w: _const(
            _vendor_case(
                w, 201, json={"sku": f"SKU-{uuid.uuid4().hex[:8]}", "size": "L", "color": "red", "stock": 3}
            )
        ),
        ("PUT", f"/vendor/products/{P}/size-chart"): lambda w: _const(
            _vendor_case(w, 200, json={"rows": [{"size": "M", "chest_cm": [86, 90]}]})
        ),
        ("POST", f"/vendor/products/{P}/images"): lambda w: _const(
            _vendor_case(w, 202, files={"image": ("p.jpg", image_bytes(), "image/jpeg")})
        ),
        ("PATCH", "/vendor/variants/{variant_id:uuid}"): lambda w: _const(
            Case({"variant_id": str(w.variant.id)}, "vendor", ["rival"], 200, json={"stock": 7})
        ),
        ("GET", "/vendor/orders/{order_id:uuid}"): _vendor_order,
        ("GET", "/measurements/{measurement_id:uuid}"): lambda w: _owned(
            w, "measurement_id", _measurement, 200
        ),
        ("GET", "/measurements/{measurement_id:uuid}/events"): lambda w: _owned(
            w, "measurement_id", _measurement, 200
        ),
        ("PATCH", "/cart/items/{item_id:uuid}"): lambda w: _owned(
            w, "item_id", _cart_item, 200, json={"quantity": 2}
        ),
        ("DELETE", "/cart/items/{item_id:uuid}"): lambda w: _owned(w, "item_id", _cart_item, 204),
        ("GET", "/orders/{order_id:uuid}"): lambda w: _owned(w, "order_id", _order, 200),
        ("POST", "/orders/{order_id:uuid}/cancel"): lambda w: _owned(w, "order_id", _order, 200),
        ("POST", "/orders/{order_id:uuid}/payments"): lambda w: _owned(w, "order_id", _order, 201),
        ("DELETE", f"/products/{P}/reviews/mine"): lambda w: _owned(w, "product_id", _review, 204),
        ("DELETE", f"/me/wishlist/{P}"): _saved,
        ("GET", F): lambda w: _fulfilment_case(w, "paid"),
        ("POST", f"{F}/pack"): lambda w: _fulfilment_case(w, "paid"),
        ("POST", f"{F}/ship"): lambda w: _fulfilment_case(
            w, "paid", json={"carrier": "GIG Logistics", "tracking_number": "GIG-123"}
        ),
        ("POST", f"{F}/deliver"): lambda w: _fulfilment_case(w, "shipped"),
        ("POST", f"{F}/cancel"): lambda w: _fulfilment_case(w, "paid", json={"reason": "Out of stock"}),
        ("POST", f"{R}/approve"): _return_case,
        ("POST", f"{R}/reject"): lambda w: _return_case(w, json={"note": "Worn"}),
        ("POST", f"{R}/receive"): lambda w: _return_case(w, approved=True, json={"restock": True}),
        ("PATCH", "/vendor/vouchers/{voucher_id:uuid}"): _voucher_case,
        ("GET", "/orders/{order_id:uuid}/returns"): lambda w: _order_returns_case(w, 200),
        ("POST", "/orders/{order_id:uuid}/returns"): lambda w: _order_returns_case(w, 201),
    }


async def _owned(
    w: World, name: str, make: Callable[[World], Awaitable[str]], status: int, **kwargs: Any
) -> Case:
    return Case({name: await make(w)}, "buyer", ["stranger", "vendor"], status, **kwargs)


async def _vendor_order(w: World) -> Case:
    return Case({"order_id": await _order(w)}, "vendor", ["rival"], 200)


async def _fulfilment_case(w: World, status: str, json: Any = None) -> Case:
    """The vendor's part of the buyer's order, moved to ``status``: the buyer who placed the order
    and the rival vendor are strangers to it as much as nobody is."""
    order = await _order(w, status=status)
    fulfilment_id = await w.session.scalar(
        select(Fulfilment.id).where(Fulfilment.order_id == uuid.UUID(order))
    )
    return Case({"fulfilment_id": str(fulfilment_id)}, "vendor", ["rival", "buyer", "nobody"], 200, json=json)


async def _delivered_line(w: World) -> tuple[str, dict[str, Any]]:
    """A delivered order of the buyer and a body asking to return its line."""
    order = await _order(w, status="delivered")
    line_id = await w.session.scalar(select(OrderLine.id).where(OrderLine.order_id == uuid.UUID(order)))
    return order, {"lines": [{"order_line_id": str(line_id), "quantity": 1, "reason": "Too small"}]}


async def _return_case(w: World, *, approved: bool = False, json: Any = None) -> Case:
    order, body = await _delivered_line(w)
    asked = await w.client.post(f"{API}/orders/{order}/returns", headers=w.auth["buyer"], json=body)
    assert asked.status_code == 201, asked.text
    return_id = asked.json()["id"]
    if approved:
        done = await w.client.post(f"{API}/vendor/returns/{return_id}/approve", headers=w.auth["vendor"])
        assert done.status_code == 200, done.text
    return Case({"return_id": return_id}, "vendor", ["rival", "buyer", "nobody"], 200, json=json)


async def _voucher_case(w: World) -> Case:
    """The vendor's own code: another store (and anyone not a vendor) cannot stop it."""
    made = await w.client.post(
        f"{API}/vendor/vouchers",
        headers=w.auth["vendor"],
        json={"code": f"OWN-{uuid.uuid4().hex[:8]}", "kind": "percent", "value": 1_000},
    )
    assert made.status_code == 201, made.text
    return Case(
        {"voucher_id": made.json()["id"]}, "vendor", ["rival", "buyer", "nobody"], 200, json={"active": False}
    )


async def _order_returns_case(w: World, owner_status: int) -> Case:
    order, body = await _delivered_line(w)
    return Case({"order_id": order}, "buyer", ["stranger", "vendor", "nobody"], owner_status, json=body)


CASES = {(method, API + path): maker for (method, path), maker in _cases().items()}


def _problem_without_id(response: httpx.Response) -> tuple[int, Any]:
    if not response.content:
        return response.status_code, None
    body = response.json()
    if isinstance(body, dict):
        body.pop("request_id", None)
    return response.status_code, body


def test_every_object_route_has_a_case() -> None:
    scoped = {key for key, rule in POLICY.items() if rule.objects in ("owner", "hidden")}
    assert scoped - CASES.keys() == set(), "object routes without a BOLA case"
    assert CASES.keys() - scoped == set(), "BOLA cases for routes the policy does not scope"


async def test_strangers_get_what_a_missing_object_gets(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """All cases in one world (users, stores, products are made once; each case makes its object)."""
    w = await _world(client, session)
    wrong: list[str] = []
    for (method, template), make_case in sorted(CASES.items()):
        case = await make_case(w)
        where = f"{method} {template.removeprefix(API)}"
        try:
            await _check_case(w, method, template, case)
        except AssertionError as exc:
            wrong.append(f"{where}: {exc}")
    assert wrong == [], "\n".join(wrong)


async def _check_case(w: World, method: str, template: str, case: Case) -> None:
    name = next(iter(case.params))

    async def call(who: str, params: dict[str, str]) -> httpx.Response:
        return await w.client.request(
            method, concrete_path(template, params), headers=w.auth[who], json=case.json, files=case.files
        )

    rule = POLICY[(method, template)]
    for who in case.strangers:
        theirs = await call(who, case.params)
        missing = await call(who, {**case.params, name: str(uuid.uuid4())})
        expected = _turned_away(rule, who) or (404 if case.after is None else case.owner_status)
        assert theirs.status_code == expected, f"{who}: {theirs.status_code} {theirs.text}"
        assert _problem_without_id(theirs) == _problem_without_id(missing), (
            f"{who}: differs from a missing id"
        )
    if case.after is not None:
        await case.after()
    if case.owner is not None:
        mine = await call(case.owner, case.params)
        assert mine.status_code == case.owner_status, f"owner: {mine.status_code} {mine.text}"


def _turned_away(rule: Rule, who: str) -> int | None:
    """The answer of a caller the route's rule refuses whatever the object (None: not refused)."""
    if who == "nobody" and rule.access not in ("public", "signed"):
        return 401
    if rule.access == "vendor" and who not in VENDORS:
        return 403
    return None


def test_cases_run_on_the_sandbox_provider(settings: Settings) -> None:
    # POST /orders/{id}/payments answers 201 for the owner only through the local sandbox provider.
    assert settings.payment_provider == "sandbox"
