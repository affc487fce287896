"""The wishlist over HTTP: idempotent saves, listed products only, each shopper's own, a size cap."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Product, User, Vendor, WishlistItem
from db.services.catalog import products as product_service
from db.services.wishlist.wishlist import MAX_ITEMS
from tests.support.catalog import CURRENCY, category, make_product, make_store
from tests.support.http import problem
from tests.support.identity import bearer, login, make_user

pytestmark = pytest.mark.anyio

API = "/api/v1"
WISHLIST = f"{API}/me/wishlist"


async def shopper(client: httpx.AsyncClient, session: AsyncSession) -> tuple[User, dict[str, str]]:
    user = await make_user(session)
    return user, bearer(await login(client, user.email))


async def saved(client: httpx.AsyncClient, auth: dict[str, str], **params: Any) -> dict[str, Any]:
    response = await client.get(WISHLIST, headers=auth, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def saved_ids(client: httpx.AsyncClient, auth: dict[str, str]) -> list[str]:
    return [item["product"]["id"] for item in (await saved(client, auth, limit=100))["items"]]


async def rows_of(session: AsyncSession, user: User) -> int:
    count = await session.scalar(select(func.count()).where(WishlistItem.user_id == user.id))
    return int(count or 0)


async def test_save_twice_list_and_unsave_twice(client: httpx.AsyncClient, session: AsyncSession) -> None:
    store = await make_store(session)
    product = await make_product(session, store, title="Ankara wrap dress", brand="Lagos Loom")
    user, auth = await shopper(client, session)
    assert await saved(client, auth) == {"items": [], "next_cursor": None}

    first = await client.put(f"{WISHLIST}/{product.id}", headers=auth)
    assert first.status_code == 204, first.text
    again = await client.put(f"{WISHLIST}/{product.id}", headers=auth)
    assert again.status_code == 204, again.text
    assert await rows_of(session, user) == 1

    page = await saved(client, auth)
    assert page["next_cursor"] is None
    [item] = page["items"]
    assert item["added_at"]
    # The same product summary as the catalog listing shows.
    listing = (await client.get(f"{API}/products", params={"vendor": str(store.id)})).json()["items"]
    assert item["product"] == listing[0]
    assert item["product"]["brand"] == "Lagos Loom"

    for _ in range(2):
        response = await client.delete(f"{WISHLIST}/{product.id}", headers=auth)
        assert response.status_code == 204, response.text
    assert await saved(client, auth) == {"items": [], "next_cursor": None}
    assert await rows_of(session, user) == 0
    # Unsaving something never saved, even an unknown id, is the same no-op.
    assert (await client.delete(f"{WISHLIST}/{uuid.uuid4()}", headers=auth)).status_code == 204


async def test_unknown_or_unlisted_products_cannot_be_saved(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    draft = await make_product(session, store, status="draft")
    archived = await make_product(session, store, status="archived")
    user, auth = await shopper(client, session)
    for product_id in (uuid.uuid4(), draft.id, archived.id):
        body = problem(await client.put(f"{WISHLIST}/{product_id}", headers=auth), 404)
        assert body["type"].endswith("/product_not_found")
    problem(await client.put(f"{WISHLIST}/not-a-uuid", headers=auth), 404)
    assert await rows_of(session, user) == 0


async def test_products_no_longer_listed_are_left_out(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    kept = await make_product(session, store, title="Kept tee")
    archived_later = await make_product(session, store, title="Soon archived tee")
    _, auth = await shopper(client, session)
    for product in (kept, archived_later):
        assert (await client.put(f"{WISHLIST}/{product.id}", headers=auth)).status_code == 204

    await product_service.update_product(
        session, store, archived_later.id, currency=CURRENCY, changes={"status": "archived"}
    )
    await session.commit()
    assert await saved_ids(client, auth) == [str(kept.id)]

    # Listed again: it is back, still in its place.
    await product_service.update_product(
        session, store, archived_later.id, currency=CURRENCY, changes={"status": "active"}
    )
    await session.commit()
    assert await saved_ids(client, auth) == [str(archived_later.id), str(kept.id)]


async def test_each_shopper_sees_only_their_own(client: httpx.AsyncClient, session: AsyncSession) -> None:
    store = await make_store(session)
    mine = await make_product(session, store, title="Mine")
    theirs = await make_product(session, store, title="Theirs")
    me, my_auth = await shopper(client, session)
    other, other_auth = await shopper(client, session)
    assert (await client.put(f"{WISHLIST}/{mine.id}", headers=my_auth)).status_code == 204
    assert (await client.put(f"{WISHLIST}/{theirs.id}", headers=other_auth)).status_code == 204

    assert await saved_ids(client, my_auth) == [str(mine.id)]
    assert await saved_ids(client, other_auth) == [str(theirs.id)]
    # Unsaving a product someone else saved only ever touches the caller's own list.
    assert (await client.delete(f"{WISHLIST}/{mine.id}", headers=other_auth)).status_code == 204
    assert await saved_ids(client, my_auth) == [str(mine.id)]
    assert await rows_of(session, me) == 1
    assert await rows_of(session, other) == 1


async def test_the_wishlist_needs_a_login(client: httpx.AsyncClient, session: AsyncSession) -> None:
    product = await make_product(session, await make_store(session))
    problem(await client.get(WISHLIST), 401)
    problem(await client.put(f"{WISHLIST}/{product.id}"), 401)
    problem(await client.delete(f"{WISHLIST}/{product.id}"), 401)
    problem(await client.get(WISHLIST, headers={"Authorization": "Bearer forged"}), 401)


async def test_wishlist_pages_most_recently_saved_first(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    products = [await make_product(session, store, title=f"Tee {index}") for index in range(5)]
    _, auth = await shopper(client, session)
    for product in products:
        assert (await client.put(f"{WISHLIST}/{product.id}", headers=auth)).status_code == 204

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await saved(client, auth, limit=2, **({"cursor": cursor} if cursor else {}))
        assert len(page["items"]) <= 2
        seen += [item["product"]["id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [str(p.id) for p in reversed(products)]

    problem(await client.get(WISHLIST, headers=auth, params={"cursor": "bm90IGEgY3Vyc29y"}), 422)
    problem(await client.get(WISHLIST, headers=auth, params={"limit": 0}), 422)
    problem(await client.get(WISHLIST, headers=auth, params={"limit": 101}), 422)


async def test_the_wishlist_holds_at_most_the_cap(client: httpx.AsyncClient, session: AsyncSession) -> None:
    store = await make_store(session)
    user, auth = await shopper(client, session)
    # Filling the list through the API would take MAX_ITEMS requests; rows straight into the
    # tables are the same state.
    filler = await bulk_products(session, store, MAX_ITEMS)
    session.add_all(WishlistItem(user_id=user.id, product_id=product_id) for product_id in filler)
    await session.commit()
    one_more = await make_product(session, store, title="One too many")

    body = problem(await client.put(f"{WISHLIST}/{one_more.id}", headers=auth), 422)
    assert body["type"].endswith("/wishlist_full")
    assert str(MAX_ITEMS) in body["detail"]
    assert body["errors"][0]["field"] == "product_id"
    assert await rows_of(session, user) == MAX_ITEMS

    # Saving what is already saved is still fine at the cap; making room lets a new one in.
    assert (await client.put(f"{WISHLIST}/{filler[0]}", headers=auth)).status_code == 204
    assert (await client.delete(f"{WISHLIST}/{filler[1]}", headers=auth)).status_code == 204
    assert (await client.put(f"{WISHLIST}/{one_more.id}", headers=auth)).status_code == 204
    assert await rows_of(session, user) == MAX_ITEMS


async def bulk_products(session: AsyncSession, store: Vendor, count: int) -> list[uuid.UUID]:
    """``count`` bare listed products (no variants or photos): rows for wishlist entries to point at."""
    cat = await category(session, "women-tops-t-shirts")
    run = uuid.uuid4().hex[:8]
    products = [
        Product(
            vendor_id=store.id,
            category_id=cat.id,
            title=f"Filler {index}",
            slug=f"filler-{run}-{index}",
            currency=CURRENCY,
            price_amount=1000,
            min_price=1000,
            status="active",
            is_listed=True,
        )
        for index in range(count)
    ]
    session.add_all(products)
    await session.flush()
    return [p.id for p in products]


async def test_the_wishlist_is_in_the_api_document(client: httpx.AsyncClient) -> None:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "get" in paths[WISHLIST]
    assert {"put", "delete"} <= paths[f"{WISHLIST}/{{product_id}}"].keys()
