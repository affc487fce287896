"""Fulfilments through HTTP: vendors list, pack, ship, deliver and cancel their own parts of paid
orders (staff any), the order's status follows them, and cancellations refund what was paid for
the cancelled units and restock them."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.rules.fulfilment import derive_order_status, share
from core.settings import Settings
from db.models import Fulfilment, Order, OrderEvent, Payment, Refund, ShippingMethod, User, Variant, Vendor
from tests.support.catalog import make_product, make_store
from tests.support.http import problem
from tests.support.identity import make_user
from tests.support.orders import captured_payment, make_order, variants_of
from tests.test_cart_orders import auth

pytestmark = pytest.mark.anyio

API = "/api/v1"
SHIP = {"carrier": "GIG Logistics", "tracking_number": "GIG-1001"}


def test_the_order_status_follows_its_fulfilments() -> None:
    assert derive_order_status(["pending", "packed"]) == "paid"
    assert derive_order_status(["shipped", "pending"]) == "partially_shipped"
    assert derive_order_status(["delivered", "packed"]) == "partially_shipped"
    assert derive_order_status(["shipped", "delivered"]) == "shipped"
    assert derive_order_status(["delivered", "cancelled"]) == "delivered"
    assert derive_order_status(["cancelled", "cancelled"]) == "cancelled"
    assert share(1_000, 1, 3) == 333
    assert share(1_000, 3, 3) == 1_000
    assert share(0, 1, 2) == 0


async def two_vendor_order(
    session: AsyncSession,
) -> tuple[Order, User, dict[str, tuple[User, Vendor, Variant]]]:
    """A paid order of 2 x NGN 20,000 from one store (shipping NGN 1,500) and 1 x NGN 10,000 from
    another (shipping NGN 1,000), with a captured payment of its total."""
    vendors: dict[str, tuple[User, Vendor, Variant]] = {}
    for name, price in (("ada", 2_000_000), ("bisi", 1_000_000)):
        owner = await make_user(session, role="vendor")
        store = await make_store(session, owner, name=f"{name} store {uuid.uuid4().hex[:6]}")
        product = await make_product(session, store, price=price, variants=[("M", "red", 5)])
        vendors[name] = (owner, store, (await variants_of(session, product))[0])
        session.add(
            ShippingMethod(
                vendor_id=store.id,
                name="Standard",
                kind="standard",
                zones=[{"country": "NG", "states": None}],
                currency="NGN",
                price_amount=150_000 if name == "ada" else 100_000,
                per_extra_item_amount=0,
                min_days=2,
                max_days=4,
            )
        )
    buyer = await make_user(session)
    order = await make_order(session, buyer, [(vendors["ada"][2], 2), (vendors["bisi"][2], 1)], status="paid")
    await captured_payment(session, order)
    return order, buyer, vendors


async def part_of(session: AsyncSession, order: Order, store: Vendor) -> Fulfilment:
    found = await session.scalar(
        select(Fulfilment).where(Fulfilment.order_id == order.id, Fulfilment.vendor_id == store.id)
    )
    assert found is not None
    return found


async def order_status(client: httpx.AsyncClient, settings: Settings, buyer: User, order: Order) -> str:
    return str((await client.get(f"{API}/orders/{order.id}", headers=auth(settings, buyer))).json()["status"])


async def test_each_vendor_sees_and_moves_only_its_own_part(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    order, buyer, vendors = await two_vendor_order(session)
    (ada, ada_store, _), (bisi, bisi_store, _) = vendors["ada"], vendors["bisi"]
    ada_part, bisi_part = await part_of(session, order, ada_store), await part_of(session, order, bisi_store)
    listed = (await client.get(f"{API}/vendor/fulfilments", headers=auth(settings, ada))).json()
    assert [f["id"] for f in listed["items"]] == [str(ada_part.id)]
    assert listed["items"][0]["lines"][0]["quantity"] == 2
    assert listed["items"][0]["shipping_address"]["city"] == "Lagos"
    assert (
        await client.get(f"{API}/vendor/fulfilments/{bisi_part.id}", headers=auth(settings, ada))
    ).status_code == 404
    for action, body in (("pack", None), ("ship", SHIP), ("deliver", None), ("cancel", {"reason": "x"})):
        answer = await client.post(
            f"{API}/vendor/fulfilments/{bisi_part.id}/{action}", json=body, headers=auth(settings, ada)
        )
        problem(answer, 404)
    # Ada ships: partially shipped; Bisi ships: shipped; both deliver: delivered.
    packed = await client.post(f"{API}/vendor/fulfilments/{ada_part.id}/pack", headers=auth(settings, ada))
    assert packed.json()["status"] == "packed"
    shipped = await client.post(
        f"{API}/vendor/fulfilments/{ada_part.id}/ship", json=SHIP, headers=auth(settings, ada)
    )
    assert (shipped.json()["status"], shipped.json()["tracking_number"]) == ("shipped", "GIG-1001")
    assert await order_status(client, settings, buyer, order) == "partially_shipped"
    problem(await client.post(f"{API}/orders/{order.id}/cancel", headers=auth(settings, buyer)), 409)
    await client.post(
        f"{API}/vendor/fulfilments/{bisi_part.id}/ship", json=SHIP, headers=auth(settings, bisi)
    )
    assert await order_status(client, settings, buyer, order) == "shipped"
    for owner, part in ((ada, ada_part), (bisi, bisi_part)):
        delivered = await client.post(
            f"{API}/vendor/fulfilments/{part.id}/deliver", headers=auth(settings, owner)
        )
        assert delivered.json()["return_until"] is not None
    assert await order_status(client, settings, buyer, order) == "delivered"
    trail = (
        await session.execute(
            select(OrderEvent.to_status, OrderEvent.fulfilment_id.is_not(None))
            .where(OrderEvent.order_id == order.id)
            .order_by(OrderEvent.id)
        )
    ).all()
    fulfilment_moves = [t[0] for t in trail if t[1]]
    assert fulfilment_moves == ["packed", "shipped", "shipped", "delivered", "delivered"]
    assert [t[0] for t in trail if not t[1]] == [
        "pending_payment",
        "paid",
        "partially_shipped",
        "shipped",
        "delivered",
    ]


async def test_moves_out_of_order_and_bad_bodies_are_refused(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    order, _, vendors = await two_vendor_order(session)
    ada, ada_store, _ = vendors["ada"]
    part = await part_of(session, order, ada_store)
    url = f"{API}/vendor/fulfilments/{part.id}"
    headers = auth(settings, ada)
    problem(await client.post(f"{url}/deliver", headers=headers), 409)
    for body in (
        {},
        {"carrier": "", "tracking_number": "1"},
        {"carrier": "DHL"},
        {"carrier": "DHL", "tracking_number": "1", "tracking_url": "ftp://x"},
        {"carrier": "DHL", "tracking_number": "1", "extra": 1},
        {"carrier": "DHL", "tracking_number": "<script>"},
    ):
        problem(await client.post(f"{url}/ship", json=body, headers=headers), 422)
    await client.post(f"{url}/ship", json=SHIP, headers=headers)
    problem(await client.post(f"{url}/pack", headers=headers), 409)
    problem(await client.post(f"{url}/ship", json=SHIP, headers=headers), 409)
    problem(await client.post(f"{url}/cancel", json={"reason": "late"}, headers=headers), 409)
    problem(await client.post(f"{url}/cancel", json={}, headers=headers), 422)
    client_user = await make_user(session)
    problem(await client.get(f"{API}/vendor/fulfilments", headers=auth(settings, client_user)), 403)
    problem(await client.get(f"{API}/vendor/fulfilments", params={"status": "lost"}, headers=headers), 422)
    problem(await client.get(f"{API}/vendor/fulfilments", params={"cursor": "nope"}, headers=headers), 422)


async def refunds_of(session: AsyncSession, order: Order) -> list[tuple[int, uuid.UUID | None]]:
    rows = await session.execute(
        select(Refund.amount, Refund.fulfilment_id).where(Refund.order_id == order.id).order_by(Refund.id)
    )
    return [(amount, fulfilment_id) for amount, fulfilment_id in rows.tuples()]


async def test_cancelling_lines_refunds_them_and_the_last_one_refunds_shipping_once(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    order, buyer, vendors = await two_vendor_order(session)
    (ada, ada_store, ada_variant), (bisi, bisi_store, _) = vendors["ada"], vendors["bisi"]
    part = await part_of(session, order, ada_store)
    assert (part.shipping_amount, order.total_amount) == (150_000, 5_250_000)
    line_id = (await client.get(f"{API}/vendor/fulfilments/{part.id}", headers=auth(settings, ada))).json()[
        "lines"
    ][0]["order_line_id"]
    url = f"{API}/vendor/fulfilments/{part.id}/cancel"
    headers = auth(settings, ada)
    for lines in (
        [{"order_line_id": line_id, "quantity": 3}],
        [{"order_line_id": str(uuid.uuid4()), "quantity": 1}],
        [{"order_line_id": line_id, "quantity": 1}, {"order_line_id": line_id, "quantity": 1}],
        [{"order_line_id": line_id, "quantity": 0}],
    ):
        problem(await client.post(url, json={"reason": "out of stock", "lines": lines}, headers=headers), 422)
    one = await client.post(
        url,
        json={"reason": "one was damaged", "lines": [{"order_line_id": line_id, "quantity": 1}]},
        headers=headers,
    )
    assert one.status_code == 200, one.text
    assert (one.json()["status"], one.json()["lines"][0]["cancelled_quantity"]) == ("pending", 1)
    assert await refunds_of(session, order) == [(2_000_000, part.id)]
    await session.refresh(ada_variant)
    assert ada_variant.stock == 5 - 2 + 1
    rest = await client.post(url, json={"reason": "closing the shop"}, headers=headers)
    assert rest.json()["status"] == "cancelled"
    assert [a for a, _ in await refunds_of(session, order)] == [2_000_000, 2_000_000 + part.shipping_amount]
    assert await order_status(client, settings, buyer, order) == "paid"  # Bisi's part still ships
    # Bisi cancels too: the order is cancelled and nothing more than was paid is refunded.
    bisi_part = await part_of(session, order, bisi_store)
    await client.post(
        f"{API}/vendor/fulfilments/{bisi_part.id}/cancel",
        json={"reason": "sold out"},
        headers=auth(settings, bisi),
    )
    assert await order_status(client, settings, buyer, order) == "cancelled"
    payment = await session.scalar(select(Payment).where(Payment.order_id == order.id))
    assert payment is not None
    await session.refresh(payment)
    total_refunded = await session.scalar(select(func.sum(Refund.amount)).where(Refund.order_id == order.id))
    assert total_refunded == payment.amount == payment.refunded_amount == order.total_amount
    assert payment.status == "refund_pending"


async def test_staff_act_on_any_fulfilment_and_vendors_only_on_their_own(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    order, buyer, vendors = await two_vendor_order(session)
    staff = auth(settings, await make_user(session, role="staff"))
    part = await part_of(session, order, vendors["bisi"][1])
    listed = (
        await client.get(f"{API}/staff/fulfilments", params={"order": str(order.id)}, headers=staff)
    ).json()
    assert len(listed["items"]) == 2
    shipped = await client.post(f"{API}/staff/fulfilments/{part.id}/ship", json=SHIP, headers=staff)
    assert shipped.status_code == 200, shipped.text
    problem(
        await client.post(
            f"{API}/staff/fulfilments/{part.id}/ship", json=SHIP, headers=auth(settings, vendors["bisi"][0])
        ),
        403,
    )
    problem(await client.post(f"{API}/staff/fulfilments/{uuid.uuid4()}/pack", headers=staff), 404)
    problem(await client.post(f"{API}/staff/fulfilments/{part.id}/pack", headers=auth(settings, buyer)), 403)


async def test_unpaid_orders_have_nothing_to_ship(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await make_user(session, role="vendor")
    store = await make_store(session, owner)
    product = await make_product(session, store, variants=[("M", "red", 5)])
    variant = (await variants_of(session, product))[0]
    order = await make_order(session, await make_user(session), [(variant, 1)], status="pending_payment")
    part = await part_of(session, order, store)
    headers = auth(settings, owner)
    assert (await client.get(f"{API}/vendor/fulfilments", headers=headers)).json()["items"] == []
    problem(await client.post(f"{API}/vendor/fulfilments/{part.id}/ship", json=SHIP, headers=headers), 404)
