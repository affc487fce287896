"""A marketplace order end to end, through HTTP with a real worker: a shopper buys from two
vendors with different shipping methods, pays through the sandbox, each vendor sees and ships
only its own part (the shopper sees the tracking), one part is delivered and a line of it
returned: the refund is that line's paid amount, the stock is back, and every notice and mail
was sent exactly once."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from sqlalchemy import func, select

from core.adapters.payments.sandbox import sandbox_fee
from core.settings import Settings
from db.engine import Database
from db.models import Notification, Payment, Refund, User, Variant
from db.services.ledger import checks
from tests.support.catalog import make_product, make_store
from tests.support.identity import make_user
from tests.support.orders import variants_of
from tests.support.stack import WorkerProcess
from tests.test_cart_orders import auth
from tests.test_orders_e2e import mail_to
from tests.test_tasks_e2e import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.worker]

API = "/api/v1"
LAGOS = {"full_name": "Ada Obi", "line1": "1 Marina", "city": "Lagos", "state": "Lagos", "country": "NG"}


def method(name: str, kind: str, price: int, days: tuple[int, int], **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "kind": kind,
        "zones": [{"country": "NG", "states": ["Lagos", "Ogun"]}],
        "price": {"amount": price, "currency": "NGN"},
        "days": list(days),
        **extra,
    }


async def _store(
    db: Database, client: httpx.AsyncClient, settings: Settings, name: str, price: int
) -> tuple[User, dict[str, str], Variant]:
    async with db.session_maker() as session:
        owner = await make_user(session, role="vendor", full_name=f"{name} owner")
        store = await make_store(session, owner, name=name)
        product = await make_product(
            session, store, title=f"{name} dress", price=price, variants=[("M", "red", 5)]
        )
        variant = (await variants_of(session, product))[0]
    headers = auth(settings, owner)
    profile = {
        "methods": [
            method("Standard", "standard", 150_000, (3, 5)),
            method(
                "Express", "express", 400_000, (1, 2), per_extra_item={"amount": 50_000, "currency": "NGN"}
            ),
        ]
    }
    saved = await client.put(f"{API}/vendor/shipping-profile", json=profile, headers=headers)
    assert saved.status_code == 200, saved.text
    return owner, headers, variant


async def _fulfilment_of(client: httpx.AsyncClient, headers: dict[str, str], order_id: str) -> dict[str, Any]:
    listed = await client.get(f"{API}/vendor/fulfilments", headers=headers)
    assert listed.status_code == 200, listed.text
    mine = [f for f in listed.json()["items"] if f["order_id"] == order_id]
    assert len(mine) == 1
    return dict(mine[0])


async def test_two_vendors_ship_their_parts_and_a_returned_line_is_refunded(
    live_client: httpx.AsyncClient, committed_db: Database, settings: Settings, worker: WorkerProcess
) -> None:
    client = live_client
    ada_owner, ada, ada_dress = await _store(committed_db, client, settings, "Ada Couture", 3_000_000)
    bisi_owner, bisi, bisi_dress = await _store(committed_db, client, settings, "Bisi Threads", 2_000_000)
    async with committed_db.session_maker() as session:
        user = await make_user(session, full_name="Ngozi Eze")
    buyer = auth(settings, user)
    for variant, quantity in ((ada_dress, 2), (bisi_dress, 1)):
        added = await client.post(
            f"{API}/cart/items", json={"variant_id": str(variant.id), "quantity": quantity}, headers=buyer
        )
        assert added.status_code == 201, added.text

    # Options per vendor; the shopper picks express from Bisi and leaves Ada's to the cheapest.
    options = await client.get(
        f"{API}/cart/shipping-options", params={"country": "NG", "state": "lagos"}, headers=buyer
    )
    groups = {g["vendor"]["name"]: g for g in options.json()["groups"]}
    assert [o["name"] for o in groups["Ada Couture"]["options"]] == ["Standard", "Express"]
    assert groups["Ada Couture"]["options"][1]["price"]["amount"] == 450_000  # 400,000 + one extra unit
    express = groups["Bisi Threads"]["options"][1]
    placed = await client.post(
        f"{API}/orders",
        json={
            "shipping_address": LAGOS,
            "shipping": [
                {"vendor_id": groups["Bisi Threads"]["vendor"]["id"], "method_id": express["method_id"]}
            ],
        },
        headers={**buyer, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert placed.status_code == 201, placed.text
    order = placed.json()
    assert order["subtotal"]["amount"] == 8_000_000
    assert order["shipping_total"]["amount"] == 150_000 + 400_000
    assert order["total"]["amount"] == 8_550_000
    assert {f["vendor"]["name"]: f["shipping_method"]["name"] for f in order["fulfilments"]} == {
        "Ada Couture": "Standard",
        "Bisi Threads": "Express",
    }

    # Pay through the sandbox: its checkout delivers a signed webhook; the worker applies it.
    started = await client.post(f"{API}/orders/{order['id']}/payments", headers=buyer)
    assert started.json()["amount"]["amount"] == 8_550_000
    checkout = urlparse(started.json()["authorization_url"])
    assert (await client.get(f"{checkout.path}?{checkout.query}")).json()["webhook_status"] == 200

    async def order_now() -> dict[str, Any]:
        return dict((await client.get(f"{API}/orders/{order['id']}", headers=buyer)).json())

    await eventually(lambda: _status_is(order_now, "paid"), within=30)

    # Each vendor sees only its own part, with the address; ships it with tracking.
    ada_part = await _fulfilment_of(client, ada, order["id"])
    bisi_part = await _fulfilment_of(client, bisi, order["id"])
    assert [line["title"] for line in ada_part["lines"]] == ["Ada Couture dress"]
    assert [line["title"] for line in bisi_part["lines"]] == ["Bisi Threads dress"]
    assert ada_part["shipping_address"]["city"] == "Lagos"
    foreign = await client.get(f"{API}/vendor/fulfilments/{bisi_part['id']}", headers=ada)
    assert foreign.status_code == 404
    shipped = await client.post(
        f"{API}/vendor/fulfilments/{ada_part['id']}/ship",
        json={
            "carrier": "GIG Logistics",
            "tracking_number": "GIG-778812",
            "tracking_url": "https://gig.example/t/GIG-778812",
        },
        headers=ada,
    )
    assert shipped.status_code == 200, shipped.text
    assert (await order_now())["status"] == "partially_shipped"
    packed = await client.post(f"{API}/vendor/fulfilments/{bisi_part['id']}/pack", headers=bisi)
    assert packed.json()["status"] == "packed"
    await client.post(
        f"{API}/vendor/fulfilments/{bisi_part['id']}/ship",
        json={"carrier": "DHL", "tracking_number": "DHL 55 01"},
        headers=bisi,
    )
    seen = await order_now()
    assert seen["status"] == "shipped"
    tracking = {f["vendor"]["name"]: (f["carrier"], f["tracking_number"]) for f in seen["fulfilments"]}
    assert tracking == {"Ada Couture": ("GIG Logistics", "GIG-778812"), "Bisi Threads": ("DHL", "DHL 55 01")}

    # Ada's part arrives; one of its two dresses goes back.
    delivered = await client.post(f"{API}/vendor/fulfilments/{ada_part['id']}/deliver", headers=ada)
    assert delivered.json()["status"] == "delivered"
    assert (await order_now())["status"] == "shipped"  # Bisi's part is still on its way
    line_id = ada_part["lines"][0]["order_line_id"]
    asked = await client.post(
        f"{API}/orders/{order['id']}/returns",
        json={"lines": [{"order_line_id": line_id, "quantity": 1, "reason": "too long"}]},
        headers=buyer,
    )
    assert asked.status_code == 201, asked.text
    ret = asked.json()
    assert (await client.post(f"{API}/vendor/returns/{ret['id']}/approve", headers=bisi)).status_code == 404
    assert (await client.post(f"{API}/vendor/returns/{ret['id']}/approve", headers=ada)).json()[
        "status"
    ] == "approved"
    received = await client.post(
        f"{API}/vendor/returns/{ret['id']}/receive", json={"restock": True}, headers=ada
    )
    assert received.json()["refund"] == {"amount": 3_000_000, "currency": "NGN"}

    async def returned() -> bool:
        listed = (await client.get(f"{API}/orders/{order['id']}/returns", headers=buyer)).json()["items"]
        return bool(listed[0]["status"] == "refunded")

    await eventually(returned, within=30)
    async with committed_db.session_maker() as session:
        stock = await session.scalar(select(Variant.stock).where(Variant.id == ada_dress.id))
        refunds = (
            await session.execute(
                select(Refund.amount, Refund.status).where(Refund.order_id == uuid.UUID(order["id"]))
            )
        ).all()
    assert stock == 5 - 2 + 1
    assert [tuple(r) for r in refunds] == [(3_000_000, "succeeded")]

    await _every_notice_once(committed_db, settings, user, ada_owner, bisi_owner, order["id"])
    # The money: the ledger holds, the shopper's payment less the refund is the vendors' earnings
    # plus the commission, and the provider's fee is the one the sandbox reported.
    async with committed_db.session_maker() as session:
        assert await checks.check(session) == []
        fee = await session.scalar(
            select(Payment.fee_amount).where(Payment.order_id == uuid.UUID(order["id"]))
        )
    assert fee == sandbox_fee(8_550_000)


async def _every_notice_once(
    db: Database, settings: Settings, buyer: User, ada_owner: User, bisi_owner: User, order_id: str
) -> None:
    expected = {
        buyer.id: {
            "order_placed": 1,
            "order_paid": 1,
            "fulfilment_shipped": 2,
            "fulfilment_delivered": 1,
            "refund_sent": 1,
        },
        ada_owner.id: {"vendor_new_order": 1},
        bisi_owner.id: {"vendor_new_order": 1},
    }

    async def notices() -> dict[uuid.UUID, Counter[str]]:
        async with db.session_maker() as session:
            rows = await session.execute(
                select(Notification.user_id, Notification.kind, func.count())
                .where(Notification.user_id.in_(list(expected)))
                .group_by(Notification.user_id, Notification.kind)
            )
            found: dict[uuid.UUID, Counter[str]] = {}
            for user_id, kind, count in rows.tuples():
                found.setdefault(user_id, Counter())[kind] = count
            return found

    await eventually(lambda: _notices_are(notices, expected), within=30, step=0.2)
    number = order_id.replace("-", "")[-8:].upper()
    shipped = [m for m in mail_to(settings.mail_dir, buyer.email) if "has shipped" in str(m["Subject"])]
    assert len(shipped) == 2
    for owner in (ada_owner, bisi_owner):
        sold = [
            m
            for m in mail_to(settings.mail_dir, owner.email)
            if str(m["Subject"]).startswith(f"New order {number}")
        ]
        assert len(sold) == 1
        body = sold[0].get_body(preferencelist=("plain",))
        assert body is not None
        assert "1 Marina" in body.get_content()


async def _notices_are(read: Any, expected: dict[uuid.UUID, dict[str, int]]) -> bool:
    found = await read()
    return bool(found == {user: Counter(kinds) for user, kinds in expected.items()})


async def _status_is(read: Any, expected: str) -> bool:
    return bool((await read())["status"] == expected)
