"""Fit end to end: rendered bodies designed to wear a size, measured by the real models, get that
size from a standard size chart, and find products in that size first."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import httpx
import numpy as np
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from core.rules.fit import advise
from db.models import Measurement
from devstack.demo.size_tables import WOMEN_TOPS
from inference.body_measure.measurer import load_body_measurer
from inference.manifest import all_manifests
from tests.support.catalog import make_product, make_store
from tests.support.identity import bearer, login, make_user
from tests.test_fit import chart
from training.body.anthropometry import Body
from training.body.render import render_pair
from training.body.scene import Camera, Look, Pose
from training.body.sizing import body_for

API = "/api/v1"
SIZES = ["XS", "S", "M", "L", "XL"]
STANDARD = [(size, {k: [float(lo), float(hi)] for k, (lo, hi) in WOMEN_TOPS[size].items()}) for size in SIZES]


@dataclass(frozen=True)
class Measured:
    size: str  # the size the body was designed to wear
    body: Body
    measurements: dict[str, float]
    confidence: dict[str, float]


@functools.cache
def measured_bodies() -> list[Measured]:
    """Ten bodies, two per size XS-XL, photographed and measured through the real pipeline."""
    measurer = load_body_measurer(all_manifests())
    out = []
    for index, size in enumerate(SIZES * 2):
        rng = np.random.default_rng(100 + index)
        body = body_for(size, rng)
        photos = render_pair(body, rng, setup=(Pose(), Camera(fill=0.75), Look()))
        result = measurer.measure(photos.front.jpeg, photos.side.jpeg, body.measurements["height_cm"])
        out.append(Measured(size, body, dict(result.measurements), dict(result.confidence)))
    return out


def test_rendered_bodies_get_the_size_they_were_designed_to_wear() -> None:
    outcomes = []
    for item in measured_bodies():
        advice = advise(STANDARD, item.measurements, item.confidence, "tops")
        outcomes.append((item.size, advice.recommended_size))
    right = sum(designed == recommended for designed, recommended in outcomes)
    assert right >= 8, outcomes
    # A miss is at most one size away, never a wild guess.
    for designed, recommended in outcomes:
        assert recommended is not None, outcomes
        assert abs(SIZES.index(designed) - SIZES.index(recommended)) <= 1, outcomes


@pytest.mark.anyio
async def test_products_that_fit_me_list_the_designed_size_first(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    in_stock = [(size, "black", 4) for size in SIZES]
    standard = set()
    for title in ("Everyday tee", "Linen blouse"):
        product = await make_product(session, store, title=title, variants=in_stock)
        await chart(session, store, product.id, [{"size": s, **r} for s, r in STANDARD])
        standard.add(str(product.id))
    # Trousers sized by waist and hip: they may fit too, but are not what this is about.
    trousers = await make_product(
        session, store, title="Wide-leg trousers", category_slug="women-bottoms-trousers", variants=in_stock
    )
    await chart(
        session,
        store,
        trousers.id,
        [{"size": s, "waist_cm": r["waist_cm"], "hip_cm": r["hip_cm"]} for s, r in STANDARD],
    )

    outcomes = []
    for item in measured_bodies():
        user = await make_user(session)
        session.add(
            Measurement(
                user_id=user.id,
                status="ready",
                height_cm=item.body.measurements["height_cm"],
                measurements=item.measurements,
                confidence=item.confidence,
            )
        )
        await session.commit()
        auth = bearer(await login(client, user.email))
        response = await client.get(f"{API}/fit/products", headers=auth, params={"category": "women-tops"})
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        assert {entry["product"]["id"] for entry in items} <= standard
        outcomes.append((item.size, [entry["size"] for entry in items]))
    right = sum(sizes[:2] == [designed, designed] for designed, sizes in outcomes)
    assert right >= 8, outcomes
