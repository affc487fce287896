"""Shoppers like me: what shoppers with the nearest body shapes kept, counted ahead of time per
body-shape cell, shown only in aggregate, and moving the size advice when a clear majority kept a
size the chart still rates."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import msgspec
import pytest
from sqlalchemy import delete, make_url, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from taskiq import AsyncBroker

from core.rules.fit import FitAdvice, SizeFit, summarise_counts, summarise_shoppers, with_shoppers
from core.rules.shape_cells import nearby_cells, shape_cell
from core.settings import Settings
from core.task_names import REFRESH_SHOPPER_SIZES as REFRESH
from db import migrate
from db.engine import Database, create_database
from db.models import Measurement, Order, User, Variant, shopper_cells, shopper_sizes, shopper_totals
from db.services.fit.shopper_sizes import rebuild_all, refresh_shopper
from devstack import shopper_sizes as shopper_sizes_command
from tests.conftest import Services, run_task
from tests.support.catalog import make_store
from tests.support.identity import make_user
from tests.support.orders import make_order
from tests.support.similarity import database_url, drop_database, recreate_database
from tests.support.stack import WorkerProcess
from tests.test_cart_orders import auth
from tests.test_fit import ALL_SIZES, BODY, charted_product

pytestmark = pytest.mark.anyio

API = "/api/v1"


def shape(grown_cm: float) -> dict[str, float]:
    """``BODY`` with chest, waist and hip ``grown_cm`` larger: small values are nearby shapes."""
    return {**BODY, **{key: BODY[key] + grown_cm for key in ("chest_cm", "waist_cm", "hip_cm")}}


def ready_measurement(user_id: uuid.UUID, body: dict[str, float]) -> Measurement:
    return Measurement(
        user_id=user_id,
        status="ready",
        height_cm=body["height_cm"],
        measurements=body,
        confidence=dict.fromkeys(body, 0.9),
        embedding=[0.0] * 32,
        model_name="body_measurement",
        model_version="test",
    )


async def measured(session: AsyncSession, body: dict[str, float]) -> User:
    user = await make_user(session)
    session.add(ready_measurement(user.id, body))
    await session.commit()
    await refresh_shopper(session, user.id)
    return user


async def variant(session: AsyncSession, product_id: uuid.UUID, size: str) -> Variant:
    found = await session.scalar(
        select(Variant).where(Variant.product_id == product_id, Variant.size == size)
    )
    assert found is not None
    return found


async def buyers(
    session: AsyncSession, product_id: uuid.UUID, size: str, grown: list[float], status: str = "paid"
) -> None:
    """One shopper per ``grown`` (cm from ``BODY``) who bought ``size`` and whose order is in
    ``status``; the counts follow each order as the job deferred by its status change does."""
    v = await variant(session, product_id, size)
    for cm in grown:
        buyer = await measured(session, shape(cm))
        await make_order(session, buyer, [(v, 1)], status=status)
        await refresh_shopper(session, buyer.id)


STOCKED = [(size, color, 50) for size, color, _ in ALL_SIZES]


async def advice_for(client: httpx.AsyncClient, settings: Settings, user: User, product_id: uuid.UUID) -> Any:
    response = await client.get(f"{API}/products/{product_id}/fit", headers=auth(settings, user))
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_clear_majority_of_similar_shoppers_moves_the_recommendation(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    store = await make_store(session)
    product_id = await charted_product(session, store, variants=STOCKED, brand="Adire")
    me = await measured(session, shape(0.0))
    # The chart says M; six shoppers shaped like this one kept L (the cut runs small).
    await buyers(session, product_id, "L", [0.5, 1.0, 1.5, 2.0, 2.5, 3.0])
    await buyers(session, product_id, "M", [3.5])
    # Returned or cancelled purchases are not "kept".
    await buyers(session, product_id, "XL", [0.2, 0.4], status="refunded")
    await buyers(session, product_id, "XS", [0.6], status="cancelled")
    advice = await advice_for(client, settings, me, product_id)
    assert advice["recommended_size"] == "L"
    assert advice["basis"] == "similar_shoppers"
    assert advice["similar_shoppers"] == {
        "count": 7,
        "size_distribution": {"L": pytest.approx(6 / 7, abs=1e-3), "M": pytest.approx(1 / 7, abs=1e-3)},
        "scope": "product",
    }
    # The shopper's own purchases never count as "shoppers like me".
    await make_order(session, me, [(await variant(session, product_id, "XL"), 1)], status="paid")
    await refresh_shopper(session, me.id)
    assert (await advice_for(client, settings, me, product_id))["similar_shoppers"]["count"] == 7


async def test_fewer_than_five_similar_shoppers_are_never_shown(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    store = await make_store(session)
    product_id = await charted_product(session, store, variants=STOCKED)
    me = await measured(session, shape(0.0))
    await buyers(session, product_id, "L", [0.5, 1.0, 1.5, 2.0])
    advice = await advice_for(client, settings, me, product_id)
    assert advice["similar_shoppers"] is None
    assert advice["recommended_size"] == "M"
    assert advice["basis"] == "size_chart"


async def test_only_the_nearest_shapes_count(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    store = await make_store(session)
    product_id = await charted_product(session, store, variants=STOCKED)
    me = await measured(session, shape(0.0))
    await buyers(session, product_id, "M", [0.5, 1.0, 1.5, 2.0, 2.5, 3.0])
    # Six very different bodies (chest, waist and hip 25 cm larger) all kept XS: not like this
    # shopper, so not counted.
    await buyers(session, product_id, "XS", [25.0, 25.5, 26.0, 26.5, 27.0, 27.5])
    advice = await advice_for(client, settings, me, product_id)
    assert advice["similar_shoppers"]["size_distribution"] == {"M": 1.0}
    assert advice["recommended_size"] == "M"
    assert advice["basis"] == "size_chart"


async def test_the_brand_speaks_when_the_product_is_new(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    store = await make_store(session)
    older = await charted_product(session, store, variants=STOCKED, brand="Kente & Co")
    newer = await charted_product(session, store, variants=STOCKED, brand="Kente & Co", title="New tee")
    other_brand = await charted_product(session, store, variants=STOCKED, brand="Someone else")
    me = await measured(session, shape(0.0))
    await buyers(session, older, "L", [0.5, 1.0, 1.5, 2.0, 2.5])
    await buyers(session, other_brand, "XS", [3.0, 3.5, 0.2, 0.4, 0.6])
    advice = await advice_for(client, settings, me, newer)
    assert advice["similar_shoppers"] == {"count": 5, "size_distribution": {"L": 1.0}, "scope": "brand"}
    assert advice["recommended_size"] == "L"


async def test_a_size_the_body_is_far_from_is_never_recommended(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    store = await make_store(session)
    product_id = await charted_product(session, store, variants=STOCKED)
    me = await measured(session, shape(0.0))
    await buyers(session, product_id, "XS", [0.5, 1.0, 1.5, 2.0, 2.5])
    advice = await advice_for(client, settings, me, product_id)
    assert advice["similar_shoppers"]["size_distribution"] == {"XS": 1.0}
    assert advice["recommended_size"] == "M"  # XS is two sizes too small on the chart
    assert advice["basis"] == "size_chart"


# --- the pure rules ------------------------------------------------------------------------


def _advice(recommended: str | None, scores: dict[str, float]) -> FitAdvice:
    return FitAdvice(recommended, None, [SizeFit(size, score, [], 0.0) for size, score in scores.items()])


def test_shopper_aggregates_need_five_distinct_shoppers() -> None:
    assert summarise_shoppers([("a", "M"), ("a", "L"), ("b", "M"), ("c", "M"), ("d", "M")], "product") is None
    found = summarise_shoppers([(s, "M") for s in "abcd"] + [("e", "L"), ("e", "L")], "product")
    assert found is not None
    assert found.count == 5
    assert found.size_distribution == {"M": 0.8, "L": 0.2}


def test_the_recommendation_moves_only_on_a_clear_majority_of_a_size_that_still_fits() -> None:
    base = _advice("M", {"S": 0.3, "M": 0.95, "L": 0.7})
    majority_l = summarise_shoppers([(s, "L") for s in "abcd"] + [("e", "M")], "product")
    split = summarise_shoppers([(s, "L") for s in "abc"] + [(s, "M") for s in "de"], "product")
    majority_s = summarise_shoppers([(s, "S") for s in "abcde"], "product")
    assert with_shoppers(base, None) == base
    moved = with_shoppers(base, majority_l)
    assert (moved.recommended_size, moved.basis) == ("L", "similar_shoppers")
    kept = with_shoppers(base, split)  # 60% is the threshold; 3 of 5 is exactly it
    assert kept.recommended_size == "L"
    not_enough = with_shoppers(
        base, summarise_shoppers([(s, "L") for s in "ab"] + [(s, "M") for s in "cde"], "product")
    )
    assert (not_enough.recommended_size, not_enough.basis) == ("M", "size_chart")
    far = with_shoppers(base, majority_s)  # S scores 0.3 on the chart: below SHOPPERS_MIN_FIT
    assert (far.recommended_size, far.basis) == ("M", "size_chart")
    assert far.similar_shoppers == majority_s
    # Nothing fits well enough on the chart, but shoppers like me kept L, which is close.
    nothing = _advice(None, {"M": 0.5, "L": 0.55})
    rescued = with_shoppers(nothing, majority_l)
    assert (rescued.recommended_size, rescued.reason, rescued.basis) == ("L", None, "similar_shoppers")


# --- keeping the counts --------------------------------------------------------------------


async def counts(session: AsyncSession) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
    totals = {tuple(r) for r in await session.execute(select(shopper_totals))}
    sizes = {tuple(r) for r in await session.execute(select(shopper_sizes))}
    return totals, sizes


async def test_an_undone_order_and_a_new_body_shape_leave_the_counts(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    store = await make_store(session)
    product_id = await charted_product(session, store, variants=STOCKED)
    me = await measured(session, shape(0.0))
    await buyers(session, product_id, "L", [0.5, 1.0, 1.5, 2.0])
    late = await measured(session, shape(2.5))
    order = await make_order(session, late, [(await variant(session, product_id, "L"), 1)], status="paid")
    await refresh_shopper(session, late.id)
    assert (await advice_for(client, settings, me, product_id))["similar_shoppers"]["count"] == 5
    # Refunded: no longer kept.
    await session.execute(update(Order).where(Order.id == order.id).values(status="refunded"))
    await refresh_shopper(session, late.id)
    assert (await advice_for(client, settings, me, product_id))["similar_shoppers"] is None
    await session.execute(update(Order).where(Order.id == order.id).values(status="paid"))
    await refresh_shopper(session, late.id)
    assert (await advice_for(client, settings, me, product_id))["similar_shoppers"]["count"] == 5
    # Measured again with a very different body: no longer like this shopper.
    session.add(ready_measurement(late.id, shape(30.0)))
    await session.flush()
    await refresh_shopper(session, late.id)
    assert (await advice_for(client, settings, me, product_id))["similar_shoppers"] is None


async def test_counts_kept_by_refreshes_equal_a_full_recount(session: AsyncSession) -> None:
    store = await make_store(session)
    product_id = await charted_product(session, store, variants=STOCKED, brand="Adire")
    other = await charted_product(session, store, variants=STOCKED, brand="Adire", title="Wrap")
    await buyers(session, product_id, "L", [0.5, 1.0, 9.0])
    await buyers(session, other, "M", [0.5, 14.0])
    await buyers(session, product_id, "S", [1.0, 2.0], status="cancelled")
    two_sizes = await measured(session, shape(4.0))
    await make_order(
        session,
        two_sizes,
        [(await variant(session, product_id, "M"), 1), (await variant(session, product_id, "L"), 1)],
    )
    await refresh_shopper(session, two_sizes.id)
    kept = await counts(session)
    assert kept[0]
    assert kept[1]
    await rebuild_all(session)
    assert await counts(session) == kept
    # A second refresh of anyone changes nothing.
    await refresh_shopper(session, two_sizes.id)
    assert await counts(session) == kept


async def test_the_refresh_runs_in_a_worker(
    start_worker: Callable[..., WorkerProcess], committed_db: Database, broker: AsyncBroker
) -> None:
    async with committed_db.session_maker() as session:
        store = await make_store(session)
        product_id = await charted_product(session, store, variants=STOCKED)
        buyer = await measured(session, shape(0.0))
        await make_order(session, buyer, [(await variant(session, product_id, "M"), 1)], status="paid")
        await session.execute(delete(shopper_cells))
        await session.commit()
    analytics = start_worker(queues="analytics")
    try:
        assert await run_task(broker, REFRESH, str(buyer.id), wait_seconds=60) == "recounted"
    finally:
        analytics.stop()
    async with committed_db.session_maker() as session:
        assert await session.scalar(select(shopper_cells.c.cell).where(shopper_cells.c.user_id == buyer.id))
        assert (await counts(session))[1] == {(f"p:{product_id}", shape_cell(shape(0.0)), "M", 1)}


def test_a_body_is_in_one_cell_and_its_neighbours_are_a_step_either_way() -> None:
    cell = shape_cell(BODY)
    assert cell is not None
    near = nearby_cells(cell)
    assert len(near) == 81
    assert cell in near
    assert shape_cell(shape(4.0)) in near  # one girth step larger
    assert shape_cell(shape(12.0)) not in near  # more than a step away
    assert shape_cell({**BODY, "height_cm": BODY["height_cm"] + 20}) not in near
    assert shape_cell({key: v for key, v in BODY.items() if key != "hip_cm"}) is None
    assert shape_cell({**BODY, "waist_cm": float("nan")}) is None
    # At the bottom of the grid there is nothing below.
    smallest = shape_cell(dict.fromkeys(("chest_cm", "waist_cm", "hip_cm", "height_cm"), 1.0))
    assert smallest is not None
    assert len(nearby_cells(smallest)) == 16


def test_counted_shoppers_are_summarised_like_listed_ones() -> None:
    assert summarise_counts(4, {"M": 4}, "product") is None
    found = summarise_counts(5, {"M": 4, "L": 1, "XS": 0}, "brand")
    assert found == summarise_shoppers([(s, "M") for s in "abcd"] + [("e", "L")], "brand")


async def test_the_recount_command_finds_drifted_counts_and_mends_them(
    committed_db: Database, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    async with committed_db.session_maker() as session:
        store = await make_store(session)
        product_id = await charted_product(session, store, variants=STOCKED)
        await buyers(session, product_id, "M", [0.5, 1.0])
        await session.commit()
    assert await shopper_sizes_command.run(settings, check=True) == 0
    async with committed_db.session_maker() as session:
        await session.execute(update(shopper_sizes).values(shoppers=shopper_sizes.c.shoppers + 1))
        await session.commit()
    assert await shopper_sizes_command.run(settings, check=True) == 1
    assert "1 rows differed" in capsys.readouterr().out
    assert await shopper_sizes_command.run(settings, check=False) == 0
    assert await shopper_sizes_command.run(settings, check=True) == 0
    assert "0 rows differed" in capsys.readouterr().out


async def test_the_migration_counts_what_existing_orders_kept(services: Services, settings: Settings) -> None:
    name = f"{make_url(services.database_url).database}_shopper_sizes"
    await recreate_database(services.database_url, name)
    local = msgspec.structs.replace(settings, database_url=database_url(services.database_url, name))
    database = create_database(local, "test")
    try:
        # The data is made with today's models, then the schema goes back to before 0018 (the
        # measurements and orders stay) and 0018 is applied again.
        await anyio.to_thread.run_sync(migrate.upgrade, local, "head")
        async with database.session_maker() as session:
            store = await make_store(session)
            product_id = await charted_product(session, store, variants=STOCKED)
            buyer = await make_user(session)
            session.add(ready_measurement(buyer.id, BODY))
            await make_order(session, buyer, [(await variant(session, product_id, "M"), 1)])
            await session.commit()
        await anyio.to_thread.run_sync(migrate.downgrade, local, "0017")
        await anyio.to_thread.run_sync(migrate.upgrade, local, "0018")
        async with database.session_maker() as session:
            cell = shape_cell(BODY)
            assert (await counts(session))[1] == {(f"p:{product_id}", cell, "M", 1)}
            assert await session.scalar(select(shopper_cells.c.cell)) == cell
    finally:
        await database.dispose()
        await drop_database(services.database_url, name)
