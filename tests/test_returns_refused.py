"""Returns that are refused: not delivered, past the window, final sale, too many units, two
sellers at once, someone else's order; and vendors' moves out of order or on others' returns."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.settings import Settings
from db.models import Fulfilment, OrderLine, Return, Vendor
from tests.support.http import problem
from tests.support.identity import make_user
from tests.support.returns import API, a_store, ask, auth, bought

pytestmark = pytest.mark.anyio


async def returns_of(session: AsyncSession, order_id: uuid.UUID) -> int:
    return int(await session.scalar(select(func.count()).where(Return.order_id == order_id)) or 0)


async def delivered_ago(session: AsyncSession, order_id: uuid.UUID, days: float) -> None:
    await session.execute(
        update(Fulfilment)
        .where(Fulfilment.order_id == order_id)
        .values(delivered_at=datetime.now(UTC) - timedelta(days=days))
    )
    await session.commit()


async def test_only_delivered_items_inside_the_window_may_be_returned(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    store = await a_store(session, settings, "Lagos Loom")
    user = await make_user(session)
    buyer = auth(settings, user)
    for status in ("paid", "shipped"):
        sale = await bought(session, user, [(store.scarf, 1)], status=status)
        refused = problem(await ask(client, buyer, sale.order, [(sale.line(store.scarf), 1)]), 422)
        assert refused["type"].endswith("return_not_allowed"), status
        assert [e["field"] for e in refused["errors"]] == ["lines"], status
        assert await returns_of(session, sale.order.id) == 0

    window = settings.return_window_days
    late = await bought(session, user, [(store.tee, 1)])
    await delivered_ago(session, late.order.id, window + 0.5)
    refused = problem(await ask(client, buyer, late.order, [(late.line(store.tee), 1)]), 422)
    assert [e["field"] for e in refused["errors"]] == ["lines"]
    assert "window" in refused["errors"][0]["message"]
    await delivered_ago(session, late.order.id, window - 0.5)
    assert (await ask(client, buyer, late.order, [(late.line(store.tee), 1)])).status_code == 201

    # The store's own window, as it was when the order was placed.
    vendor_id = store.vendor.id
    await session.execute(update(Vendor).where(Vendor.id == vendor_id).values(return_window_days=30))
    await session.commit()
    longer = await bought(session, user, [(store.tee, 1)])
    await delivered_ago(session, longer.order.id, window + 10)
    assert (await ask(client, buyer, longer.order, [(longer.line(store.tee), 1)])).status_code == 201
    # A store that takes no returns (a window of 0 days).
    await session.execute(update(Vendor).where(Vendor.id == vendor_id).values(return_window_days=0))
    await session.commit()
    no_returns = await bought(session, user, [(store.tee, 1)])
    windows = await session.scalars(
        select(Fulfilment.return_window_days).where(Fulfilment.order_id == no_returns.order.id)
    )
    assert windows.all() == [0]
    await delivered_ago(session, no_returns.order.id, 0.01)
    problem(await ask(client, buyer, no_returns.order, [(no_returns.line(store.tee), 1)]), 422)


async def test_lines_that_cannot_be_returned_are_named(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    store = await a_store(session, settings, "Lagos Loom")
    user = await make_user(session)
    buyer = auth(settings, user)
    sale = await bought(session, user, [(store.tee, 3), (store.scarf, 1)])
    other = await bought(session, user, [(store.tee, 1)])
    tee, scarf = sale.line(store.tee), sale.line(store.scarf)
    await session.execute(update(OrderLine).where(OrderLine.id == uuid.UUID(scarf)).values(final_sale=True))
    await session.commit()

    cases: list[tuple[list[tuple[str, int]], list[str]]] = [
        ([(tee, 1), (scarf, 1)], ["lines[1].order_line_id"]),  # final sale
        ([(tee, 4)], ["lines[0].quantity"]),  # only 3 were delivered
        ([(tee, 1), (tee, 1)], ["lines[1].order_line_id"]),  # listed twice
        ([(other.line(store.tee), 1)], ["lines[0].order_line_id"]),  # a line of another order
        ([(str(uuid.uuid4()), 1)], ["lines[0].order_line_id"]),
        ([(tee, 0)], ["lines[0].quantity"]),
    ]
    wrong = []
    for lines, fields in cases:
        body = problem(await ask(client, buyer, sale.order, lines), 422)
        if [e["field"] for e in body["errors"]] != fields:
            wrong.append(f"{lines}: {body}")
    assert wrong == [], "\n".join(wrong)
    assert await returns_of(session, sale.order.id) == 0

    # Units already in an open return cannot be asked for again.
    assert (await ask(client, buyer, sale.order, [(tee, 2)])).status_code == 201
    refused = problem(await ask(client, buyer, sale.order, [(tee, 2)]), 422)
    assert refused["errors"] == [{"field": "lines[0].quantity", "message": "only 1 can be returned"}]
    assert (await ask(client, buyer, sale.order, [(tee, 1)])).status_code == 201
    problem(await ask(client, buyer, sale.order, [(tee, 1)]), 422)
    assert await returns_of(session, sale.order.id) == 2


async def test_items_of_two_sellers_are_returned_one_seller_at_a_time(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    loom = await a_store(session, settings, "Lagos Loom")
    couture = await a_store(session, settings, "Calabar Couture")
    user = await make_user(session)
    buyer = auth(settings, user)
    sale = await bought(session, user, [(loom.tee, 1), (couture.scarf, 1)])
    both = [(sale.line(loom.tee), 1), (sale.line(couture.scarf), 1)]
    refused = problem(await ask(client, buyer, sale.order, both), 422)
    assert [e["field"] for e in refused["errors"]] == ["lines"]
    assert await returns_of(session, sale.order.id) == 0
    first = (await ask(client, buyer, sale.order, both[:1])).json()
    second = (await ask(client, buyer, sale.order, both[1:])).json()
    assert (first["vendor"]["id"], second["vendor"]["id"]) == (str(loom.vendor.id), str(couture.vendor.id))
    assert first["fulfilment_id"] != second["fulfilment_id"]
    # Each seller sees only their own.
    for store, ret in ((loom, first), (couture, second)):
        listed = (await client.get(f"{API}/vendor/returns", headers=store.auth)).json()["items"]
        assert [r["id"] for r in listed] == [ret["id"]]


async def test_someone_elses_order_is_not_found(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    store = await a_store(session, settings, "Lagos Loom")
    user = await make_user(session)
    sale = await bought(session, user, [(store.tee, 1)])
    stranger = auth(settings, await make_user(session))
    line = [(sale.line(store.tee), 1)]
    theirs = problem(await ask(client, stranger, sale.order, line), 404)
    missing = problem(await ask(client, stranger, uuid.uuid4(), line), 404)
    assert {k: v for k, v in theirs.items() if k != "request_id"} == {
        k: v for k, v in missing.items() if k != "request_id"
    }
    problem(await client.get(f"{API}/orders/{sale.order.id}/returns", headers=stranger), 404)
    problem(await ask(client, store.auth, sale.order, line), 404)  # the seller is not the buyer
    problem(await ask(client, {}, sale.order, line), 401)
    assert await returns_of(session, sale.order.id) == 0


async def test_vendors_move_their_own_returns_in_order(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    store = await a_store(session, settings, "Lagos Loom")
    rival = await a_store(session, settings, "Rival Rags")
    user = await make_user(session)
    buyer = auth(settings, user)
    sale = await bought(session, user, [(store.tee, 2)])
    ret = (await ask(client, buyer, sale.order, [(sale.line(store.tee), 1)])).json()["id"]
    url = f"{API}/vendor/returns/{ret}"
    receipt = {"restock": True}

    early = problem(await client.post(f"{url}/receive", json=receipt, headers=store.auth), 409)
    assert early["type"].endswith("invalid_return_transition")
    for move, body in (("approve", None), ("reject", {"note": "No"}), ("receive", receipt)):
        problem(await client.post(f"{url}/{move}", json=body, headers=rival.auth), 404)
        problem(
            await client.post(f"{API}/vendor/returns/{uuid.uuid4()}/{move}", json=body, headers=store.auth),
            404,
        )
        problem(await client.post(f"{url}/{move}", json=body, headers=buyer), 403)
        problem(await client.post(f"{url}/{move}", json=body), 401)
    # The rival's attempts changed nothing.
    assert (await session.scalar(select(Return.status).where(Return.id == uuid.UUID(ret)))) == "requested"

    assert (await client.post(f"{url}/approve", headers=store.auth)).status_code == 200
    problem(await client.post(f"{url}/approve", headers=store.auth), 409)
    problem(await client.post(f"{url}/reject", json={"note": "Changed my mind"}, headers=store.auth), 409)
    assert (await client.post(f"{url}/receive", json=receipt, headers=store.auth)).status_code == 200
    problem(await client.post(f"{url}/receive", json=receipt, headers=store.auth), 409)
    problem(await client.post(f"{url}/receive", json={"restock": "yes"}, headers=store.auth), 422)
    await session.refresh(store.tee)
    assert store.tee.stock == 9  # restocked once: 10 - 2 sold + 1 back
