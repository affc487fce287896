"""Shoppers like me: what shoppers with the nearest body shapes kept, shown only in aggregate,
and moving the size advice when a clear majority kept a size the chart still rates."""

from __future__ import annotations

import math
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.rules.fit import FitAdvice, SizeFit, summarise_shoppers, with_shoppers
from core.settings import Settings
from db.models import Measurement, User, Variant
from db.services.fit import shoppers as shoppers_service
from tests.support.catalog import make_store
from tests.support.identity import make_user
from tests.support.orders import make_order
from tests.test_cart_orders import auth
from tests.test_fit import ALL_SIZES, BODY, charted_product

pytestmark = pytest.mark.anyio

API = "/api/v1"
DIM = 32


def shape(angle: float) -> list[float]:
    """A unit body-shape embedding; nearby angles are nearby shapes."""
    vector = [0.0] * DIM
    vector[0], vector[1] = math.cos(angle), math.sin(angle)
    return vector


async def measured(session: AsyncSession, embedding: list[float]) -> User:
    user = await make_user(session)
    session.add(
        Measurement(
            user_id=user.id,
            status="ready",
            height_cm=BODY["height_cm"],
            measurements=BODY,
            confidence=dict.fromkeys(BODY, 0.9),
            embedding=embedding,
            model_name="body_measurement",
            model_version="test",
        )
    )
    await session.commit()
    return user


async def variant(session: AsyncSession, product_id: uuid.UUID, size: str) -> Variant:
    found = await session.scalar(
        select(Variant).where(Variant.product_id == product_id, Variant.size == size)
    )
    assert found is not None
    return found


async def buyers(
    session: AsyncSession, product_id: uuid.UUID, size: str, angles: list[float], status: str = "paid"
) -> None:
    v = await variant(session, product_id, size)
    for angle in angles:
        await make_order(session, await measured(session, shape(angle)), [(v, 1)], status=status)


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
    await buyers(session, product_id, "L", [0.01, 0.02, 0.03, 0.04, 0.05, 0.06])
    await buyers(session, product_id, "M", [0.07])
    # Returned or cancelled purchases are not "kept".
    await buyers(session, product_id, "XL", [0.08, 0.09], status="refunded")
    await buyers(session, product_id, "XS", [0.1], status="cancelled")
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
    assert (await advice_for(client, settings, me, product_id))["similar_shoppers"]["count"] == 7


async def test_fewer_than_five_similar_shoppers_are_never_shown(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    store = await make_store(session)
    product_id = await charted_product(session, store, variants=STOCKED)
    me = await measured(session, shape(0.0))
    await buyers(session, product_id, "L", [0.01, 0.02, 0.03, 0.04])
    advice = await advice_for(client, settings, me, product_id)
    assert advice["similar_shoppers"] is None
    assert advice["recommended_size"] == "M"
    assert advice["basis"] == "size_chart"


async def test_only_the_nearest_shapes_count(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shoppers_service, "NEIGHBOURS", 6)
    store = await make_store(session)
    product_id = await charted_product(session, store, variants=STOCKED)
    me = await measured(session, shape(0.0))
    await buyers(session, product_id, "M", [0.01, 0.02, 0.03, 0.04, 0.05, 0.06])
    # Six very different bodies all kept XS: not like this shopper, so not counted.
    await buyers(session, product_id, "XS", [1.5, 1.51, 1.52, 1.53, 1.54, 1.55])
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
    await buyers(session, older, "L", [0.01, 0.02, 0.03, 0.04, 0.05])
    await buyers(session, other_brand, "XS", [0.06, 0.07, 0.08, 0.09, 0.1])
    advice = await advice_for(client, settings, me, newer)
    assert advice["similar_shoppers"] == {"count": 5, "size_distribution": {"L": 1.0}, "scope": "brand"}
    assert advice["recommended_size"] == "L"


async def test_a_size_the_body_is_far_from_is_never_recommended(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    store = await make_store(session)
    product_id = await charted_product(session, store, variants=STOCKED)
    me = await measured(session, shape(0.0))
    await buyers(session, product_id, "XS", [0.01, 0.02, 0.03, 0.04, 0.05])
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
