"""Returns over HTTP: a shopper asks to return delivered items, the vendor approves (or rejects),
receives them (refund, optional restock), and the refund job gives the money back.

Orders are built delivered with ``make_order`` and given a captured payment (tests/support/returns.py);
the refund job runs in the test's transaction (``refund_next``), as the ``critical.payments.refund``
task does. The refusals are in tests/test_returns_refused.py.
"""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.adapters.payments.sandbox import SandboxProvider
from core.jobs import job_buffer
from core.settings import Settings
from core.task_names import NOTIFY_REFUND_SENT, REFUND_PAYMENT
from db.models import Order, OrderLine, OutboxMessage, Payment, Refund, Variant
from db.services.payments.processing import refund_next
from tests.support.http import problem
from tests.support.identity import make_user
from tests.support.returns import API, a_store, ask, auth, bought

pytestmark = pytest.mark.anyio

T = TypeVar("T", Order, Payment)


def ngn(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "NGN"}


async def stock(session: AsyncSession, variant: Variant) -> tuple[int, int]:
    await session.refresh(variant)
    return variant.stock, variant.reserved


async def fresh(session: AsyncSession, row: T) -> T:
    await session.refresh(row)
    return row


async def test_a_return_is_asked_approved_received_and_refunded(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    store = await a_store(session, settings, "Lagos Loom")
    rival = await a_store(session, settings, "Rival Rags")
    user = await make_user(session)
    buyer = auth(settings, user)
    sale = await bought(session, user, [(store.tee, 3), (store.scarf, 1)])
    assert await stock(session, store.tee) == (7, 0)

    asked = await ask(client, buyer, sale.order, [(sale.line(store.tee), 2)], note="Kept the box")
    assert asked.status_code == 201, asked.text
    ret = asked.json()
    assert ret["status"] == "requested"
    assert (ret["order_id"], ret["vendor"]) == (
        str(sale.order.id),
        {"id": str(store.vendor.id), "name": "Lagos Loom"},
    )
    line = await session.get(OrderLine, uuid.UUID(sale.line(store.tee)))
    assert line is not None
    assert ret["fulfilment_id"] == str(line.fulfilment_id)
    assert ret["lines"] == [
        {
            "order_line_id": sale.line(store.tee),
            "title": "Linen tee",
            "size": "M",
            "color": "white",
            "quantity": 2,
            "reason": "Too small",
            "unit_price": ngn(1_500_000),
        }
    ]
    assert (ret["note"], ret["refund"], ret["restocked"], ret["decided_at"]) == (
        "Kept the box",
        None,
        None,
        None,
    )

    mine = (await client.get(f"{API}/orders/{sale.order.id}/returns", headers=buyer)).json()
    assert mine["items"] == [ret]
    listed = (await client.get(f"{API}/vendor/returns", headers=store.auth)).json()
    assert [r["id"] for r in listed["items"]] == [ret["id"]]
    assert listed["next_cursor"] is None
    requested = await client.get(f"{API}/vendor/returns", params={"status": "requested"}, headers=store.auth)
    assert [r["id"] for r in requested.json()["items"]] == [ret["id"]]
    approved = await client.get(f"{API}/vendor/returns", params={"status": "approved"}, headers=store.auth)
    assert approved.json()["items"] == []
    assert (await client.get(f"{API}/vendor/returns", headers=rival.auth)).json()["items"] == []

    decided = await client.post(
        f"{API}/vendor/returns/{ret['id']}/approve", json={"note": "Send it to Yaba"}, headers=store.auth
    )
    assert decided.status_code == 200, decided.text
    assert (decided.json()["status"], decided.json()["vendor_note"]) == ("approved", "Send it to Yaba")
    assert decided.json()["decided_at"] is not None

    received = await client.post(
        f"{API}/vendor/returns/{ret['id']}/receive", json={"restock": True}, headers=store.auth
    )
    assert received.status_code == 200, received.text
    body = received.json()
    assert (body["status"], body["refund"], body["restocked"]) == ("received", ngn(2 * 1_500_000), True)
    assert body["received_at"] is not None
    assert body["refunded_at"] is None
    # The two tees are back on sale; the scarf was not returned.
    assert await stock(session, store.tee) == (9, 0)
    assert await stock(session, store.scarf) == (4, 0)
    order = (await client.get(f"{API}/orders/{sale.order.id}", headers=buyer)).json()
    assert {line["variant_id"]: line["returned_quantity"] for line in order["lines"]} == {
        str(store.tee.id): 2,
        str(store.scarf.id): 0,
    }
    assert order["status"] == "delivered"  # the scarf and one tee are still the shopper's
    refunds = (await session.scalars(select(Refund).where(Refund.order_id == sale.order.id))).all()
    assert [(r.return_id, r.payment_id, r.amount, r.status) for r in refunds] == [
        (uuid.UUID(ret["id"]), sale.payment.id, 3_000_000, "pending")
    ]
    payment = await fresh(session, sale.payment)
    assert (payment.refunded_amount, payment.status) == (3_000_000, "succeeded")
    queued = await session.scalars(select(OutboxMessage).where(OutboxMessage.task_name == REFUND_PAYMENT))
    assert [job.args for job in queued] == [[str(payment.id)]]

    # The refund job sends it to the provider: the return is refunded.
    with job_buffer() as jobs:
        assert await refund_next(session, SandboxProvider(), payment.id) == "refunded"
        assert await refund_next(session, SandboxProvider(), payment.id) == "nothing_pending"
    assert [job.task_name for job in jobs.jobs] == [NOTIFY_REFUND_SENT]
    await session.commit()
    done = (await client.get(f"{API}/orders/{sale.order.id}/returns", headers=buyer)).json()["items"]
    assert [(r["status"], r["refund"]) for r in done] == [("refunded", ngn(3_000_000))]
    assert done[0]["refunded_at"] is not None
    assert (await fresh(session, payment)).status == "succeeded"  # 5 000 NGN + 15 000 NGN still paid for


async def test_a_rejected_return_frees_its_units_and_a_return_may_stay_off_sale(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    store = await a_store(session, settings, "Lagos Loom")
    user = await make_user(session)
    buyer = auth(settings, user)
    sale = await bought(session, user, [(store.tee, 2)])
    first = (await ask(client, buyer, sale.order, [(sale.line(store.tee), 2)])).json()
    reject = f"{API}/vendor/returns/{first['id']}/reject"
    # Rejecting says why.
    problem(await client.post(reject, headers=store.auth), 422)
    for body in ({}, {"note": ""}, {"note": "   "}):
        refused = problem(await client.post(reject, json=body, headers=store.auth), 422)
        assert [e["field"] for e in refused["errors"]] == ["note"], body
    rejected = await client.post(reject, json={"note": "Worn: the tag is off"}, headers=store.auth)
    assert rejected.status_code == 200, rejected.text
    assert (rejected.json()["status"], rejected.json()["vendor_note"]) == ("rejected", "Worn: the tag is off")
    assert rejected.json()["refund"] is None
    problem(await client.post(f"{API}/vendor/returns/{first['id']}/approve", headers=store.auth), 409)

    # The units of a rejected return may be asked for again.
    second = await ask(client, buyer, sale.order, [(sale.line(store.tee), 2)])
    assert second.status_code == 201, second.text
    ret = second.json()["id"]
    assert (await client.post(f"{API}/vendor/returns/{ret}/approve", headers=store.auth)).status_code == 200
    received = await client.post(
        f"{API}/vendor/returns/{ret}/receive", json={"restock": False}, headers=store.auth
    )
    assert received.status_code == 200, received.text
    assert (received.json()["restocked"], received.json()["refund"]) == (False, ngn(3_000_000))
    assert await stock(session, store.tee) == (8, 0)  # not back on sale
    statuses = await client.get(f"{API}/vendor/returns", params={"status": "rejected"}, headers=store.auth)
    assert [r["id"] for r in statuses.json()["items"]] == [first["id"]]


async def test_returning_everything_refunds_the_order(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    store = await a_store(session, settings, "Lagos Loom")
    user = await make_user(session)
    buyer = auth(settings, user)
    sale = await bought(session, user, [(store.tee, 2), (store.scarf, 1)])
    ret = (
        await ask(client, buyer, sale.order, [(sale.line(store.tee), 2), (sale.line(store.scarf), 1)])
    ).json()
    await client.post(f"{API}/vendor/returns/{ret['id']}/approve", headers=store.auth)
    received = await client.post(
        f"{API}/vendor/returns/{ret['id']}/receive", json={"restock": True}, headers=store.auth
    )
    assert received.json()["refund"] == ngn(2 * 1_500_000 + 500_000)
    order = await fresh(session, sale.order)
    assert order.status == "refunded"
    assert order.closed_at is not None
    payment = await fresh(session, sale.payment)
    assert (payment.status, payment.refunded_amount) == ("refund_pending", payment.amount)
    with job_buffer():
        assert await refund_next(session, SandboxProvider(), payment.id) == "refunded"
    await session.commit()
    assert (await fresh(session, payment)).status == "refunded"
    statuses = await session.scalars(select(Order.status).where(Order.id == sale.order.id))
    assert statuses.all() == ["refunded"]
    assert (await client.get(f"{API}/orders/{sale.order.id}/returns", headers=buyer)).json()["items"][0][
        "status"
    ] == "refunded"
    # Nothing is left to return.
    refused = problem(await ask(client, buyer, sale.order, [(sale.line(store.scarf), 1)]), 422)
    assert refused["errors"][0]["field"] == "lines[0].quantity"


async def test_vendors_page_through_their_returns_newest_first(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    store = await a_store(session, settings, "Lagos Loom")
    user = await make_user(session)
    buyer = auth(settings, user)
    ids = []
    for _ in range(3):
        sale = await bought(session, user, [(store.scarf, 1)])
        ids.append((await ask(client, buyer, sale.order, [(sale.line(store.scarf), 1)])).json()["id"])
    first = (await client.get(f"{API}/vendor/returns", params={"limit": 2}, headers=store.auth)).json()
    assert [r["id"] for r in first["items"]] == ids[::-1][:2]
    rest = await client.get(
        f"{API}/vendor/returns", params={"limit": 2, "cursor": first["next_cursor"]}, headers=store.auth
    )
    assert [r["id"] for r in rest.json()["items"]] == [ids[0]]
    assert rest.json()["next_cursor"] is None
    problem(await client.get(f"{API}/vendor/returns", params={"cursor": "nonsense"}, headers=store.auth), 422)
    problem(await client.get(f"{API}/vendor/returns", params={"status": "lost"}, headers=store.auth), 422)
    problem(await client.get(f"{API}/vendor/returns", headers=buyer), 403)
    problem(await client.get(f"{API}/vendor/returns"), 401)
