"""More like this (``GET /products/{id}/similar``) on the real database, with embeddings chosen so
the expected ranking is known."""

from __future__ import annotations

import dataclasses
import math
import uuid
from typing import Any

import httpx
import pytest
from pgvector.sqlalchemy import HALFVEC
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.engine import Database
from db.models import Product, ProductImage, Vendor
from db.models.catalog import EMBEDDING_DIMENSIONS
from db.services.catalog.similar import PRODUCT_IMAGES, SimilarityFilters, first_embedding, similar_products
from db.services.catalog.taxonomy import load_category_tree
from db.services.vector_search import nearest
from tests.support.catalog import category, make_product, make_store
from tests.support.http import problem
from tests.support.identity import bearer, login, make_user
from tests.support.similarity import add_image, direction

pytestmark = pytest.mark.anyio

API = "/api/v1"


async def similar(client: httpx.AsyncClient, product: Product, **params: Any) -> list[dict[str, Any]]:
    response = await client.get(f"{API}/products/{product.id}/similar", params=params)
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"items"}
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["product"]["id"] for item in items]


async def product_with_photo(
    session: AsyncSession, store: Vendor, angle: float, *, axis: int = 1, **fields: Any
) -> Product:
    product = await make_product(session, store, **fields)
    await add_image(session, product, direction(angle, axis=axis))
    return product


async def test_ranked_by_cosine_similarity_and_never_the_product_itself(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    query = await product_with_photo(session, store, 0, title="The original")
    near = await product_with_photo(session, store, 20, title="Near")
    middle = await product_with_photo(session, store, 60, axis=2, title="Middle")
    far = await product_with_photo(session, store, 100, axis=3, title="Far")
    items = await similar(client, query)
    assert ids(items) == [str(near.id), str(middle.id), str(far.id)]
    for item, angle in zip(items, (20, 60, 100), strict=True):
        assert item["score"] == pytest.approx(math.cos(math.radians(angle)), abs=1e-5)
    summary = items[0]["product"]
    assert summary["title"] == "Near"
    assert summary["price"] == {"amount": 1_500_000, "currency": "NGN"}
    assert summary["vendor"] == {"id": str(store.id), "name": store.name}
    assert {"slug", "category_id", "brand", "thumbnail_url", "in_stock"} <= summary.keys()
    assert ids(await similar(client, query, limit=2)) == [str(near.id), str(middle.id)]


async def test_one_entry_per_product_scored_by_its_best_photo(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    query = await product_with_photo(session, store, 0)
    two_photos = await product_with_photo(session, store, 80)
    await add_image(session, two_photos, direction(10, axis=2), position=1)
    other = await product_with_photo(session, store, 30)
    items = await similar(client, query)
    assert ids(items) == [str(two_photos.id), str(other.id)]
    assert items[0]["score"] == pytest.approx(math.cos(math.radians(10)), abs=1e-5)


async def test_the_query_is_the_first_photo_with_an_embedding(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    query = await make_product(session, store)
    await add_image(session, query, None, position=0)  # still being embedded
    await add_image(session, query, direction(90, axis=5), position=2)
    await add_image(session, query, direction(0), position=1)
    like_position_1 = await product_with_photo(session, store, 5)
    like_position_2 = await product_with_photo(session, store, 85, axis=5)
    assert ids(await similar(client, query)) == [str(like_position_1.id), str(like_position_2.id)]


async def test_filters_narrow_the_results(client: httpx.AsyncClient, session: AsyncSession) -> None:
    store = await make_store(session)
    query = await product_with_photo(session, store, 0)
    tee = await product_with_photo(session, store, 10, price=900_000, variants=[("M", "red", 3)])
    jeans = await product_with_photo(
        session, store, 20, category_slug="women-bottoms-jeans", price=2_500_000, variants=[("M", "blue", 1)]
    )
    sold_out_shirt = await product_with_photo(
        session, store, 30, category_slug="men-tops-shirts", price=1_800_000, variants=[("L", "white", 0)]
    )
    assert ids(await similar(client, query, category="women")) == [str(tee.id), str(jeans.id)]
    women_tops = await category(session, "women-tops")
    assert ids(await similar(client, query, category=str(women_tops.id))) == [str(tee.id)]
    assert ids(await similar(client, query, max_price=1_800_000)) == [str(tee.id), str(sold_out_shirt.id)]
    assert ids(await similar(client, query, in_stock=True)) == [str(tee.id), str(jeans.id)]
    assert ids(await similar(client, query, in_stock=False)) == [str(sold_out_shirt.id)]
    assert ids(await similar(client, query, category="women", max_price=1_000_000, in_stock=True)) == [
        str(tee.id)
    ]
    assert await similar(client, query, category="women-dresses") == []


async def test_unlisted_products_are_never_suggested(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    query = await product_with_photo(session, store, 0)
    listed = await product_with_photo(session, store, 40)
    await product_with_photo(session, store, 10, status="draft")
    await product_with_photo(session, store, 20, status="archived")
    suspended_store = await make_store(session)
    await product_with_photo(session, suspended_store, 5)
    staff = await make_user(session, role="staff")
    auth = bearer(await login(client, staff.email))
    suspended = await client.patch(
        f"{API}/staff/vendors/{suspended_store.id}/status", headers=auth, json={"status": "suspended"}
    )
    assert suspended.status_code == 200, suspended.text
    assert ids(await similar(client, query)) == [str(listed.id)]


async def test_a_product_without_an_embedding_has_no_similar_products(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    await product_with_photo(session, store, 0)
    no_photo = await make_product(session, store)
    pending = await make_product(session, store)
    await add_image(session, pending, None)
    assert await similar(client, no_photo) == []
    assert await similar(client, pending) == []


async def test_unknown_and_unlisted_products_are_404_and_bad_filters_422(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    draft = await product_with_photo(session, store, 0, status="draft")
    listed = await product_with_photo(session, store, 10)
    for product_id in (uuid.uuid4(), draft.id):
        body = problem(await client.get(f"{API}/products/{product_id}/similar"), 404)
        assert body["status"] == 404
    url = f"{API}/products/{listed.id}/similar"
    body = problem(await client.get(url, params={"category": "no-such-category"}), 422)
    assert body["errors"] == [{"field": "category", "message": "unknown category"}]
    for params in ({"limit": 0}, {"limit": 101}, {"max_price": -1}, {"in_stock": "perhaps"}):
        problem(await client.get(url, params=params), 422)
    problem(await client.get(f"{API}/products/not-a-uuid/similar"), 404)


async def test_openapi_describes_similarity(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/schema/openapi.json")).json()
    similar_doc = doc["paths"]["/api/v1/products/{product_id}/similar"]["get"]
    assert "empty `items`" in similar_doc["description"]
    assert {p["name"] for p in similar_doc["parameters"]} >= {"limit", "category", "max_price", "in_stock"}
    photo = doc["paths"]["/api/v1/search/image"]["post"]
    assert "multipart/form-data" in photo["requestBody"]["content"]
    assert "200" in photo["responses"]


# --- several photos per product ---------------------------------------------------------------


async def test_a_product_whose_photos_fill_the_first_rows_still_leaves_a_full_page(
    client: httpx.AsyncClient, session: AsyncSession, isolated_db: Database
) -> None:
    store = await make_store(session)
    query = await product_with_photo(session, store, 0)
    crowded = await product_with_photo(session, store, 10)
    for position, angle in enumerate((11, 12, 13, 14, 15), start=1):
        await add_image(session, crowded, direction(angle), position=position)
    second = await product_with_photo(session, store, 30, axis=2)
    await product_with_photo(session, store, 40, axis=3)
    # The first pass asks for 2 * limit = 4 rows: all four are the crowded product's photos.
    assert ids(await similar(client, query, limit=2)) == [str(crowded.id), str(second.id)]
    tree = await load_category_tree(session)
    found, path = await similar_products(isolated_db, tree, query.id, SimilarityFilters(), limit=2)
    assert [p.summary.id for p in found] == [crowded.id, second.id]
    assert path == ("nearest", "nearest")


async def test_an_index_on_half_precision_copies_orders_the_same_and_scores_at_full_precision(
    session: AsyncSession,
) -> None:
    store = await make_store(session)
    query = await product_with_photo(session, store, 0)
    near = await product_with_photo(session, store, 20)
    far = await product_with_photo(session, store, 50, axis=2)
    matching = (
        select(ProductImage.id)
        .select_from(ProductImage)
        .join(Product, Product.id == ProductImage.product_id)
        .where(Product.id != query.id)
    )
    half = dataclasses.replace(PRODUCT_IMAGES, indexed_as=HALFVEC(EMBEDDING_DIMENSIONS))
    result = await nearest(session, half, first_embedding(query.id), matching=matching, limit=5)
    assert [n.group for n in result.neighbours] == [near.id, far.id]
    for neighbour, angle in zip(result.neighbours, (20, 50), strict=True):
        assert 1 - neighbour.distance == pytest.approx(math.cos(math.radians(angle)), abs=1e-6)
