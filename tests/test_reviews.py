"""Product reviews over HTTP: verified buyers only, one per shopper, the rating summary kept exact."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from litestar import Litestar
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.engine import Database
from db.models import Product, Review, User
from db.services.catalog import products as product_service
from tests.conftest import clear_rate_limits
from tests.support.catalog import CURRENCY, make_product, make_store
from tests.support.http import problem, serve
from tests.support.identity import bearer, login, make_user
from tests.support.orders import make_order, variants_of

pytestmark = pytest.mark.anyio

API = "/api/v1"


def reviews_url(product: Product | uuid.UUID) -> str:
    product_id = product.id if isinstance(product, Product) else product
    return f"{API}/products/{product_id}/reviews"


def review_body(rating: float = 4, **fields: Any) -> dict[str, Any]:
    return {"rating": rating, "title": "Fits true to size", "body": "Soft cotton, kept its shape.", **fields}


async def stocked_product(session: AsyncSession, **kwargs: Any) -> Product:
    return await make_product(session, await make_store(session), variants=[("M", "black", 50)], **kwargs)


async def buyer_of(
    session: AsyncSession, product: Product, *, status: str = "paid", full_name: str = "Ada Obi"
) -> User:
    """A shopper with an order of ``product`` in ``status``."""
    user = await make_user(session, full_name=full_name)
    variant = (await variants_of(session, product))[0]
    await make_order(session, user, [(variant, 1)], status=status)
    return user


async def auth_of(client: httpx.AsyncClient, user: User) -> dict[str, str]:
    return bearer(await login(client, user.email))


async def product_rating(client: httpx.AsyncClient, product: Product) -> dict[str, Any]:
    response = await client.get(f"{API}/products/{product.id}")
    assert response.status_code == 200, response.text
    rating: dict[str, Any] = response.json()["rating"]
    return rating


async def summary_and_aggregate(session: AsyncSession, product: Product) -> tuple[Any, Any]:
    stored = (
        await session.execute(
            select(Product.rating_count, Product.rating_sum).where(Product.id == product.id)
        )
    ).one()
    actual = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(Review.rating), 0)).where(
                Review.product_id == product.id
            )
        )
    ).one()
    return tuple(stored), tuple(actual)


# --- writing ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["paid", "shipped", "delivered"])
async def test_verified_buyer_reviews_and_the_rating_follows(
    client: httpx.AsyncClient, session: AsyncSession, status: str
) -> None:
    product = await stocked_product(session)
    buyer = await buyer_of(session, product, status=status, full_name="Ada Nneka Obi")
    assert await product_rating(client, product) == {"average": None, "count": 0}

    response = await client.post(
        reviews_url(product),
        headers=await auth_of(client, buyer),
        json=review_body(4, title="  Fits   true to size ", body=" Soft cotton. "),
    )
    assert response.status_code == 201, response.text
    review = response.json()
    assert review["product_id"] == str(product.id)
    assert review["rating"] == 4
    assert review["title"] == "Fits true to size"
    assert review["body"] == "Soft cotton."
    # First name and last initial only: reviews are public.
    assert review["author"] == {"name": "Ada O."}
    assert review["verified_purchase"] is True
    assert {"id", "created_at"} <= review.keys()
    assert buyer.email not in response.text

    assert await product_rating(client, product) == {"average": 4.0, "count": 1}
    listed = (await client.get(reviews_url(product))).json()
    assert listed["items"] == [review]
    assert listed["rating"] == {"average": 4.0, "count": 1}
    assert listed["next_cursor"] is None


async def test_average_over_several_buyers(client: httpx.AsyncClient, session: AsyncSession) -> None:
    product = await stocked_product(session)
    for rating in (5, 4, 4):
        buyer = await buyer_of(session, product)
        response = await client.post(
            reviews_url(product), headers=await auth_of(client, buyer), json=review_body(rating)
        )
        assert response.status_code == 201, response.text
    assert await product_rating(client, product) == {"average": 4.33, "count": 3}


async def test_shoppers_without_a_paid_order_of_the_product_are_refused(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    product = await stocked_product(session)
    other_product = await stocked_product(session)
    never_bought = await make_user(session)
    bought_something_else = await buyer_of(session, other_product)
    for user in (never_bought, bought_something_else):
        body = problem(
            await client.post(reviews_url(product), headers=await auth_of(client, user), json=review_body()),
            403,
        )
        assert body["type"].endswith("/not_a_verified_buyer")
        assert "paid order" in body["detail"]
    assert await product_rating(client, product) == {"average": None, "count": 0}


@pytest.mark.parametrize("status", ["pending_payment", "cancelled", "expired", "refunded"])
async def test_an_unpaid_or_undone_order_does_not_count(
    client: httpx.AsyncClient, session: AsyncSession, status: str
) -> None:
    product = await stocked_product(session)
    buyer = await buyer_of(session, product, status=status)
    body = problem(
        await client.post(reviews_url(product), headers=await auth_of(client, buyer), json=review_body()), 403
    )
    assert body["type"].endswith("/not_a_verified_buyer")


async def test_one_review_per_shopper_and_product(client: httpx.AsyncClient, session: AsyncSession) -> None:
    product = await stocked_product(session)
    buyer = await buyer_of(session, product)
    auth = await auth_of(client, buyer)
    assert (await client.post(reviews_url(product), headers=auth, json=review_body(5))).status_code == 201
    body = problem(await client.post(reviews_url(product), headers=auth, json=review_body(1)), 409)
    assert body["type"].endswith("/review_exists")
    # The refused second review changed nothing.
    assert await product_rating(client, product) == {"average": 5.0, "count": 1}
    assert len((await client.get(reviews_url(product))).json()["items"]) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (review_body(0), "rating"),
        (review_body(6), "rating"),
        (review_body(4.5), "rating"),
        ({"rating": 4, "body": "Nice."}, "title"),
        (review_body(title="   "), "title"),
        (review_body(title=" a "), "title"),
        (review_body(title="x" * 121), "title"),
        ({"rating": 4, "title": "Nice tee"}, "body"),
        (review_body(body=""), "body"),
        (review_body(body=" \n "), "body"),
        (review_body(body="x" * 5001), "body"),
        (review_body(stars=5), "stars"),
    ],
)
async def test_invalid_reviews_name_the_field(
    client: httpx.AsyncClient, session: AsyncSession, body: dict[str, Any], field: str
) -> None:
    product = await stocked_product(session)
    buyer = await buyer_of(session, product)
    errors = problem(
        await client.post(reviews_url(product), headers=await auth_of(client, buyer), json=body), 422
    )["errors"]
    assert [e["field"] for e in errors] == [field]
    assert await product_rating(client, product) == {"average": None, "count": 0}


async def test_writing_and_deleting_need_a_login(client: httpx.AsyncClient, session: AsyncSession) -> None:
    product = await stocked_product(session)
    problem(await client.post(reviews_url(product), json=review_body()), 401)
    problem(await client.delete(f"{reviews_url(product)}/mine"), 401)


async def test_unknown_and_unlisted_products_are_404(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    product = await make_product(session, store, variants=[("M", "black", 5)])
    buyer = await buyer_of(session, product)
    auth = await auth_of(client, buyer)
    draft = await stocked_product(session, status="draft")
    for missing in (uuid.uuid4(), draft.id):
        problem(await client.get(reviews_url(missing)), 404)
        problem(await client.post(reviews_url(missing), headers=auth, json=review_body()), 404)

    # Bought while listed, archived by its store since: no longer shown or open to reviews.
    await product_service.update_product(
        session, store, product.id, currency=CURRENCY, changes={"status": "archived"}
    )
    await session.commit()
    problem(await client.post(reviews_url(product), headers=auth, json=review_body()), 404)
    problem(await client.get(reviews_url(product)), 404)


# --- reading ----------------------------------------------------------------------------------


async def test_reviews_page_newest_first_with_a_cursor(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    product = await stocked_product(session)
    written = []
    for index in range(5):
        buyer = await buyer_of(session, product, full_name=f"Buyer{index} Lastname")
        response = await client.post(
            reviews_url(product), headers=await auth_of(client, buyer), json=review_body(1 + index % 5)
        )
        assert response.status_code == 201, response.text
        written.append(response.json()["id"])

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        response = await client.get(reviews_url(product), params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["rating"] == {"average": 3.0, "count": 5}
        seen += [item["id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == list(reversed(written))
    assert [i["author"]["name"] for i in (await client.get(reviews_url(product))).json()["items"]] == [
        f"Buyer{index} L." for index in reversed(range(5))
    ]

    problem(await client.get(reviews_url(product), params={"cursor": "bm90IGEgY3Vyc29y"}), 422)
    problem(await client.get(reviews_url(product), params={"limit": 0}), 422)
    problem(await client.get(reviews_url(product), params={"limit": 101}), 422)


# --- deleting ---------------------------------------------------------------------------------


async def test_delete_my_review(client: httpx.AsyncClient, session: AsyncSession) -> None:
    product = await stocked_product(session)
    author = await buyer_of(session, product)
    other = await buyer_of(session, product)
    author_auth, other_auth = await auth_of(client, author), await auth_of(client, other)
    assert (
        await client.post(reviews_url(product), headers=author_auth, json=review_body(2))
    ).status_code == 201
    assert (
        await client.post(reviews_url(product), headers=other_auth, json=review_body(5))
    ).status_code == 201
    assert await product_rating(client, product) == {"average": 3.5, "count": 2}

    assert (await client.delete(f"{reviews_url(product)}/mine", headers=author_auth)).status_code == 204
    assert await product_rating(client, product) == {"average": 5.0, "count": 1}
    items = (await client.get(reviews_url(product))).json()["items"]
    assert [i["rating"] for i in items] == [5]

    body = problem(await client.delete(f"{reviews_url(product)}/mine", headers=author_auth), 404)
    assert body["type"].endswith("/review_not_found")
    problem(await client.delete(f"{reviews_url(uuid.uuid4())}/mine", headers=author_auth), 404)
    # Deleting it made room for a new review.
    assert (
        await client.post(reviews_url(product), headers=author_auth, json=review_body(3))
    ).status_code == 201
    assert await product_rating(client, product) == {"average": 4.0, "count": 2}


async def test_rating_summary_equals_the_reviews_table(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    product = await stocked_product(session)
    buyers = [await buyer_of(session, product) for _ in range(4)]
    auths = [await auth_of(client, buyer) for buyer in buyers]

    # (buyer, rating) writes that buyer's review; (buyer, None) deletes it.
    steps: list[tuple[int, int | None]] = [
        (0, 5),
        (1, 1),
        (2, 3),
        (1, None),
        (3, 2),
        (1, 4),
        (0, None),
        (2, None),
    ]
    for index, rating in steps:
        if rating is None:
            response = await client.delete(f"{reviews_url(product)}/mine", headers=auths[index])
            assert response.status_code == 204, response.text
        else:
            response = await client.post(reviews_url(product), headers=auths[index], json=review_body(rating))
            assert response.status_code == 201, response.text
        stored, actual = await summary_and_aggregate(session, product)
        assert stored == actual
    assert await summary_and_aggregate(session, product) == ((2, 6), (2, 6))
    assert await product_rating(client, product) == {"average": 3.0, "count": 2}


async def test_concurrent_reviews_keep_the_summary_exact(
    make_app: Callable[..., Litestar], committed_db: Database, redis: Redis
) -> None:
    """Real concurrent transactions: reviews of one product by several buyers at once all count,
    and the same buyer's two simultaneous reviews end as one 201 and one 409."""
    async with committed_db.session_maker() as session:
        product = await stocked_product(session)
        buyers = [await buyer_of(session, product) for _ in range(6)]
    try:
        async with serve(make_app(database=committed_db)) as live:
            auths = [await auth_of(live, buyer) for buyer in buyers]
            sends = [(auths[0], 5), (auths[0], 1), *zip(auths[1:], [1, 2, 3, 4, 5], strict=True)]
            responses = await asyncio.gather(
                *(live.post(reviews_url(product), headers=auth, json=review_body(r)) for auth, r in sends)
            )
            assert sorted(r.status_code for r in responses) == [201] * 6 + [409], [r.text for r in responses]
            rating = await product_rating(live, product)
        async with committed_db.session_maker() as session:
            stored, actual = await summary_and_aggregate(session, product)
        assert stored == actual
        assert rating["count"] == 6
    finally:
        await clear_rate_limits(redis)


async def test_reviews_are_in_the_api_document(client: httpx.AsyncClient) -> None:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {"get", "post"} <= paths[f"{API}/products/{{product_id}}/reviews"].keys()
    assert "delete" in paths[f"{API}/products/{{product_id}}/reviews/mine"]
