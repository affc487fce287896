"""Size advice and products that fit me, on the real database."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from core.rules.fit import fit_profile_key, fit_row_vector
from db.models import FitProfile, Measurement, SizeChartRow, User, Vendor
from db.services.catalog import products as product_service
from db.services.catalog.taxonomy import garment_of_category
from tests.support.catalog import category, make_product, make_store
from tests.support.http import problem
from tests.support.identity import bearer, login, make_user

pytestmark = pytest.mark.anyio

API = "/api/v1"
# A woman who wears M in the standard table below.
BODY = {
    "ankle_cm": 22.0,
    "arm_length_cm": 56.0,
    "bicep_cm": 28.0,
    "calf_cm": 36.0,
    "chest_cm": 88.0,
    "forearm_cm": 25.0,
    "height_cm": 166.0,
    "hip_cm": 96.0,
    "leg_length_cm": 77.0,
    "shoulder_breadth_cm": 38.0,
    "shoulder_to_crotch_cm": 60.0,
    "thigh_cm": 55.0,
    "waist_cm": 70.0,
    "wrist_cm": 15.5,
}
SURE = dict.fromkeys(BODY, 0.9)
TOPS_CHART: list[dict[str, Any]] = [
    {"size": "XS", "chest_cm": [78, 82], "waist_cm": [60, 64], "hip_cm": [86, 90]},
    {"size": "S", "chest_cm": [82, 86], "waist_cm": [64, 68], "hip_cm": [90, 94]},
    {"size": "M", "chest_cm": [86, 90], "waist_cm": [68, 72], "hip_cm": [94, 98]},
    {"size": "L", "chest_cm": [90, 96], "waist_cm": [72, 78], "hip_cm": [98, 104]},
    {"size": "XL", "chest_cm": [96, 102], "waist_cm": [78, 84], "hip_cm": [104, 110]},
]
ALL_SIZES = [(row["size"], "black", 5) for row in TOPS_CHART]


async def profile(
    session: AsyncSession, user: User, body: dict[str, float] | None = None, confidence: float = 0.9
) -> Measurement:
    values = body or BODY
    measurement = Measurement(
        user_id=user.id,
        status="ready",
        height_cm=values["height_cm"],
        measurements=values,
        confidence=dict.fromkeys(values, confidence),
        model_name="body_measurement",
        model_version="test",
    )
    session.add(measurement)
    await session.commit()
    return measurement


async def shopper(
    client: httpx.AsyncClient, session: AsyncSession, body: dict[str, float] | None = None
) -> tuple[User, dict[str, str]]:
    user = await make_user(session)
    await profile(session, user, body)
    return user, bearer(await login(client, user.email))


async def chart(
    session: AsyncSession, store: Vendor, product_id: uuid.UUID, rows: list[dict[str, Any]]
) -> None:
    await product_service.put_size_chart(session, store, product_id, rows)
    await session.commit()


async def charted_product(
    session: AsyncSession,
    store: Vendor,
    *,
    rows: list[dict[str, Any]] | None = None,
    variants: list[tuple[str, str, int]] | None = None,
    **kwargs: Any,
) -> uuid.UUID:
    product = await make_product(session, store, variants=variants or ALL_SIZES, **kwargs)
    await chart(session, store, product.id, rows or TOPS_CHART)
    return product.id


# --- size advice ------------------------------------------------------------------------------


async def test_size_advice_recommends_the_size_the_body_falls_into(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    product_id = await charted_product(session, store)
    user, auth = await shopper(client, session)
    response = await client.get(f"{API}/products/{product_id}/fit", headers=auth)
    assert response.status_code == 200, response.text
    advice = response.json()
    assert advice["product_id"] == str(product_id)
    assert advice["recommended_size"] == "M"
    assert advice["reason"] is None
    assert [size["size"] for size in advice["sizes"]] == ["XS", "S", "M", "L", "XL"]
    by_size = {size["size"]: size for size in advice["sizes"]}
    assert by_size["M"]["fit_score"] == 1.0
    assert all(note["status"] == "good" for note in by_size["M"]["notes"])
    small = {note["measurement"]: note for note in by_size["S"]["notes"]}
    assert small["chest_cm"] == {
        "measurement": "chest_cm",
        "status": "tight",
        "delta_cm": 2.0,
        "confidence": 0.9,
        "counted": True,
    }
    large = {note["measurement"]: note for note in by_size["L"]["notes"]}
    assert (large["waist_cm"]["status"], large["waist_cm"]["delta_cm"]) == ("loose", -2.0)
    latest = await session.scalar(select(Measurement.id).where(Measurement.user_id == user.id))
    assert advice["measurement_id"] == str(latest)


async def test_size_advice_uses_the_latest_ready_measurement(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    product_id = await charted_product(session, store)
    user, auth = await shopper(client, session)
    # Measured again after losing weight: S now.
    await profile(session, user, {**BODY, "chest_cm": 84.0, "waist_cm": 66.0, "hip_cm": 92.0})
    # A newer measurement still processing does not count.
    session.add(Measurement(user_id=user.id, status="processing", height_cm=166.0))
    await session.commit()
    advice = (await client.get(f"{API}/products/{product_id}/fit", headers=auth)).json()
    assert advice["recommended_size"] == "S"


async def test_nothing_fits_gives_null_with_the_reason(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    product_id = await charted_product(session, store)
    _, auth = await shopper(client, session, {**BODY, "chest_cm": 118.0, "waist_cm": 100.0, "hip_cm": 120.0})
    advice = (await client.get(f"{API}/products/{product_id}/fit", headers=auth)).json()
    assert advice["recommended_size"] is None
    assert "closest is XL" in advice["reason"]
    assert all(size["fit_score"] < 0.6 for size in advice["sizes"])


async def test_size_advice_needs_a_profile_a_chart_and_a_visible_product(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    product_id = await charted_product(session, store)
    bare = await make_product(session, store, title="No chart tee")
    draft_id = await charted_product(session, store, status="draft", title="Draft tee")
    problem(await client.get(f"{API}/products/{product_id}/fit"), 401)

    nobody = await make_user(session)
    auth = bearer(await login(client, nobody.email))
    no_profile = problem(await client.get(f"{API}/products/{product_id}/fit", headers=auth), 409)
    assert "measurements" in no_profile["detail"]
    failed = Measurement(user_id=nobody.id, status="failed", height_cm=170.0, error_code="bad_pose")
    session.add(failed)
    await session.commit()
    problem(await client.get(f"{API}/products/{product_id}/fit", headers=auth), 409)

    _, auth = await shopper(client, session)
    no_chart = problem(await client.get(f"{API}/products/{bare.id}/fit", headers=auth), 422)
    assert no_chart["errors"] == [{"field": "product_id", "message": "the product has no size chart"}]
    problem(await client.get(f"{API}/products/{uuid.uuid4()}/fit", headers=auth), 404)
    problem(await client.get(f"{API}/products/{draft_id}/fit", headers=auth), 404)
    problem(await client.get(f"{API}/products/not-an-id/fit", headers=auth), 404)


async def test_the_vendor_can_check_fit_on_their_own_draft(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    owner = await make_user(session, role="vendor")
    store = await make_store(session, owner)
    draft_id = await charted_product(session, store, status="draft")
    await profile(session, owner)
    auth = bearer(await login(client, owner.email))
    response = await client.get(f"{API}/products/{draft_id}/fit", headers=auth)
    assert response.status_code == 200, response.text
    assert response.json()["recommended_size"] == "M"


async def stored_profiles(session: AsyncSession, product_id: uuid.UUID) -> dict[str, dict[str, Any]]:
    """size -> the fit profile's columns, as stored now."""
    rows = await session.execute(
        select(SizeChartRow.size, FitProfile.id, FitProfile.key, FitProfile.garment, FitProfile.fit_vector)
        .join(FitProfile, FitProfile.id == SizeChartRow.fit_profile_id)
        .where(SizeChartRow.product_id == product_id)
    )
    return {row.size: row._asdict() for row in rows}


async def test_size_charts_share_fit_profiles_weighted_by_garment(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    owner = await make_user(session, role="vendor")
    store = await make_store(session, owner)
    auth = bearer(await login(client, owner.email))
    first = await charted_product(session, store)
    second = await charted_product(session, store, title="Same chart, other tee")
    ranges: dict[str, dict[str, list[float]]] = {
        row["size"]: {k: v for k, v in row.items() if k != "size"} for row in TOPS_CHART
    }

    def expected(size: str, garment: str) -> Any:
        return pytest.approx(fit_row_vector(ranges[size], garment), rel=1e-6, abs=1e-6)  # float32 storage

    profiles = await stored_profiles(session, first)
    assert set(profiles) == set(ranges)
    for size, profile in profiles.items():
        assert (profile["garment"], profile["key"]) == ("tops", fit_profile_key(ranges[size], "tops"))
        assert list(profile["fit_vector"]) == expected(size, "tops")
    # The same chart on another product: the same profiles, stored once.
    shared = await stored_profiles(session, second)
    assert {s: p["id"] for s, p in shared.items()} == {s: p["id"] for s, p in profiles.items()}
    # Moved to trousers: hip and inside leg now matter, so the rows move to other profiles.
    jeans = await category(session, "women-bottoms-jeans")
    moved = await client.patch(
        f"{API}/vendor/products/{first}", headers=auth, json={"category_id": str(jeans.id)}
    )
    assert moved.status_code == 200, moved.text
    assert await garment_of_category(session, jeans.id) == "bottoms"
    for size, profile in (await stored_profiles(session, first)).items():
        assert profile["garment"] == "bottoms"
        assert list(profile["fit_vector"]) == expected(size, "bottoms")
        assert profile["id"] != profiles[size]["id"]


async def test_a_category_inherits_its_garment_kind(session: AsyncSession) -> None:
    traditional = await category(session, "men-traditional-agbada")
    assert await garment_of_category(session, traditional.id) == "tops"
    women = await category(session, "women")
    assert await garment_of_category(session, women.id) is None


# --- products that fit me ---------------------------------------------------------------------


async def fit_products(client: httpx.AsyncClient, auth: dict[str, str], **params: Any) -> dict[str, Any]:
    response = await client.get(f"{API}/fit/products", headers=auth, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_products_that_fit_list_fitting_sizes_best_first(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    exact = await charted_product(session, store, title="Standard tee")
    # Runs small: the body falls between this chart's M and L.
    between = await charted_product(
        session,
        store,
        title="Slim tee",
        rows=[
            {"size": "M", "chest_cm": [84, 87], "waist_cm": [66, 69]},
            {"size": "L", "chest_cm": [89, 92], "waist_cm": [71, 74]},
        ],
        variants=[("M", "black", 3), ("L", "black", 3)],
    )
    # Only XS and XL in stock: nothing that fits.
    no_stock = await charted_product(
        session,
        store,
        title="Sold-out tee",
        variants=[("XS", "black", 4), ("M", "black", 0), ("XL", "red", 2)],
    )
    # Far too small in every size.
    tiny = await charted_product(
        session, store, title="Baby tee", rows=[{"size": "XXS", "chest_cm": [70, 74], "waist_cm": [54, 58]}]
    )
    _, auth = await shopper(client, session)
    items = (await fit_products(client, auth))["items"]
    assert [item["product"]["id"] for item in items] == [str(exact), str(between)]
    assert (items[0]["size"], items[0]["fit_score"]) == ("M", 1.0)
    assert items[1]["fit_score"] < 1.0
    assert items[0]["product"]["title"] == "Standard tee"
    assert items[0]["product"]["vendor"]["id"] == str(store.id)
    listed = {item["product"]["id"] for item in items}
    assert str(no_stock) not in listed
    assert str(tiny) not in listed


async def test_products_that_fit_filter_by_category_with_descendants(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    tee = await charted_product(session, store, title="Tee")
    blouse = await charted_product(
        session, store, title="Blouse", category_slug="women-tops-shirts-and-blouses"
    )
    dress = await charted_product(session, store, title="Dress", category_slug="women-dresses-midi-dresses")
    _, auth = await shopper(client, session)
    everything = {item["product"]["id"] for item in (await fit_products(client, auth))["items"]}
    assert everything == {str(tee), str(blouse), str(dress)}
    tops = {
        item["product"]["id"] for item in (await fit_products(client, auth, category="women-tops"))["items"]
    }
    assert tops == {str(tee), str(blouse)}
    dresses = await fit_products(client, auth, category="women-dresses-midi-dresses")
    assert [item["product"]["id"] for item in dresses["items"]] == [str(dress)]
    unknown = problem(await client.get(f"{API}/fit/products", headers=auth, params={"category": "nope"}), 422)
    assert unknown["errors"][0]["field"] == "category"


async def test_products_that_fit_are_paged_without_repeats(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    made = set()
    for index in range(7):
        shift = index * 0.4  # charts a little apart so scores differ
        rows = [
            {"size": "M", "chest_cm": [86 - shift, 89 - shift], "waist_cm": [68, 72]},
            {"size": "L", "chest_cm": [90, 96], "waist_cm": [72, 78]},
        ]
        made.add(
            str(
                await charted_product(
                    session,
                    store,
                    title=f"Tee {index}",
                    rows=rows,
                    variants=[("M", "black", 1), ("L", "black", 1)],
                )
            )
        )
    _, auth = await shopper(client, session)
    seen: list[str] = []
    scores: list[float] = []
    cursor = None
    for _ in range(10):
        page = await fit_products(client, auth, limit=3, **({"cursor": cursor} if cursor else {}))
        seen += [item["product"]["id"] for item in page["items"]]
        scores += [item["fit_score"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(made)
    assert scores == sorted(scores, reverse=True)
    problem(await client.get(f"{API}/fit/products", headers=auth, params={"cursor": "garbage"}), 422)


async def test_products_that_fit_need_a_profile(client: httpx.AsyncClient, session: AsyncSession) -> None:
    problem(await client.get(f"{API}/fit/products"), 401)
    nobody = await make_user(session)
    auth = bearer(await login(client, nobody.email))
    problem(await client.get(f"{API}/fit/products", headers=auth), 409)
    problem(await client.get(f"{API}/fit/products", headers=auth, params={"limit": 0}), 422)


async def test_the_fit_search_ranks_profiles_through_the_index(session: AsyncSession) -> None:
    # The planner may prefer a scan of a table this small; what matters is that the index serves
    # this ordering (operator class and expression), so make the scan the expensive choice.
    await session.execute(text("SET LOCAL enable_seqscan = off"))
    plan = await session.execute(
        text("EXPLAIN SELECT id FROM fit_profiles ORDER BY fit_vector <#> CAST(:q AS vector) LIMIT 10"),
        {"q": str([0.0] * 42)},
    )
    assert "ix_fit_profiles_fit_hnsw" in "\n".join(row[0] for row in plan)
