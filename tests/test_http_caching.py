"""HTTP caching of the public catalog: ETag, Cache-Control, Vary and 304 on every public page;
the in-process page cache and its versions in Redis, so that a write (a price, an order taking
stock, a cancellation, a restock, a suspension, a review) is on the very next page; personal
answers stay ``private, no-store``; media are immutable."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import msgspec
import pytest
from litestar import Litestar
from redis.asyncio import Redis
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from api.page_cache import Page, PageCache, etag_of, none_match
from core.adapters.storage import build_storage
from core.adapters.tokens import TokenSigner
from core.page_versions import PageVersions
from core.settings import Settings
from db.engine import Database
from db.models import Product, ProductImage, User, Variant
from db.services.orders import stock
from db.uow import unit_of_work
from devstack.demo.pictures import encode, product_picture
from tasks.runtime.dispatch import BrokerDispatcher
from tests.support.catalog import make_product, make_store
from tests.support.http import serve
from tests.support.identity import bearer, login, make_user
from tests.support.orders import make_order, variants_of
from tests.support.stack import WorkerProcess
from tests.test_tasks_e2e import eventually

pytestmark = pytest.mark.anyio

API = "/api/v1"
PUBLIC = "public, max-age=30, stale-while-revalidate=300"
ADDRESS = {"full_name": "Ada Obi", "line1": "1 Marina", "city": "Lagos", "country": "NG"}


def auth(settings: Settings, user: User) -> dict[str, str]:
    return {"Authorization": f"Bearer {TokenSigner(settings).issue(user.id, user.role)}"}


async def revalidate(client: httpx.AsyncClient, path: str, etag: str) -> httpx.Response:
    return await client.get(path, headers={"If-None-Match": etag})


def assert_public(page: httpx.Response) -> str:
    assert page.status_code == 200, page.text
    assert page.headers["cache-control"] == PUBLIC
    assert "accept-encoding" in page.headers["vary"].lower()
    # Nothing personal in a public page, so no Vary on the caller's token.
    assert "authorization" not in page.headers["vary"].lower()
    etag = page.headers["etag"]
    assert etag.startswith('"')
    assert etag.endswith('"')
    assert not etag.startswith("W/")
    return etag


def assert_personal(page: httpx.Response) -> None:
    assert page.headers["cache-control"] in ("no-store", "private, no-store"), page.headers
    assert "etag" not in page.headers


@pytest.fixture
async def shelf(session: AsyncSession) -> dict[str, Any]:
    owner = await make_user(session, role="vendor")
    store = await make_store(session, owner, name=f"Cache Loom {uuid.uuid4().hex[:6]}")
    shirt = await make_product(
        session, store, title="Linen shirt", price=1_500_000, variants=[("M", "white", 5)]
    )
    other = await make_product(session, store, title="Ankara dress", price=4_000_000)
    draft = await make_product(session, store, title="Draft coat", status="draft")
    return {"owner": owner, "store": store, "shirt": shirt, "other": other, "draft": draft}


def public_paths(shelf: dict[str, Any]) -> list[str]:
    shirt, store = shelf["shirt"].id, shelf["store"].id
    return [
        f"{API}/categories",
        f"{API}/brands",
        f"{API}/products?vendor={store}",
        f"{API}/products/{shirt}",
        f"{API}/products/{shirt}/similar",
        f"{API}/products/{shirt}/reviews",
        f"{API}/vendors/{store}",
    ]


async def test_every_public_page_is_cacheable_and_answers_if_none_match(
    client: httpx.AsyncClient, shelf: dict[str, Any]
) -> None:
    for path in public_paths(shelf):
        first = await client.get(path)
        etag = assert_public(first)
        # The same bytes, the same tag (served from the page cache the second time).
        again = await client.get(path)
        assert again.content == first.content, path
        assert again.headers["etag"] == etag, path
        for header in (etag, f"W/{etag}", f'"nope", {etag}', "*"):
            not_modified = await revalidate(client, path, header)
            assert not_modified.status_code == 304, (path, header)
            assert not_modified.content == b""
            assert not_modified.headers["etag"] == etag
            assert not_modified.headers["cache-control"] == PUBLIC
            assert "accept-encoding" in not_modified.headers["vary"].lower()
        changed = await revalidate(client, path, '"something-else", W/"other"')
        assert changed.status_code == 200, path
        assert changed.content == first.content, path


async def test_the_query_is_part_of_the_key_and_its_order_is_not(
    client: httpx.AsyncClient, shelf: dict[str, Any]
) -> None:
    store = shelf["store"].id
    newest = await client.get(f"{API}/products?vendor={store}&sort=newest")
    cheapest = await client.get(f"{API}/products?vendor={store}&sort=price_asc")
    assert [p["title"] for p in newest.json()["items"]] == ["Ankara dress", "Linen shirt"]
    assert [p["title"] for p in cheapest.json()["items"]] == ["Linen shirt", "Ankara dress"]
    assert assert_public(newest) != assert_public(cheapest)
    swapped = await client.get(f"{API}/products?sort=newest&vendor={store}")
    assert swapped.headers["etag"] == newest.headers["etag"]


async def test_errors_and_personal_answers_are_never_cached(
    client: httpx.AsyncClient, settings: Settings, shelf: dict[str, Any], session: AsyncSession
) -> None:
    draft = shelf["draft"]
    owner = auth(settings, shelf["owner"])
    # The store's own vendor sees its draft; that answer is theirs alone.
    own = await client.get(f"{API}/products/{draft.id}", headers=owner)
    assert own.status_code == 200
    assert own.json()["title"] == "Draft coat"
    assert own.headers["cache-control"] == "private, no-store"
    assert "etag" not in own.headers
    assert (await revalidate(client, f"{API}/products/{draft.id}", "*")).status_code == 404
    anonymous = await client.get(f"{API}/products/{draft.id}")
    assert anonymous.status_code == 404
    assert_personal(anonymous)
    # A listed product: the owner gets the public page, the same bytes as anyone.
    shirt = shelf["shirt"].id
    public = await client.get(f"{API}/products/{shirt}")
    mine = await client.get(f"{API}/products/{shirt}", headers=owner)
    assert mine.content == public.content
    assert mine.headers["etag"] == assert_public(public)
    assert_personal(await client.get(f"{API}/products?category=no-such-category"))
    assert_personal(await client.get(f"{API}/products/{uuid.uuid4()}"))
    # Personal pages stay private, whoever asks.
    buyer = auth(settings, await make_user(session))
    for path, headers in [
        ("/me", buyer),
        ("/cart", buyer),
        ("/orders", buyer),
        ("/me/wishlist", buyer),
        ("/vendor/products", owner),
        ("/vendor/orders", owner),
        (f"/products/{shirt}/fit", buyer),
    ]:
        answer = await client.get(f"{API}{path}", headers=headers)
        assert answer.status_code < 500, (path, answer.text)
        assert_personal(answer)


async def test_a_price_change_through_the_vendor_api_is_on_the_next_page(
    client: httpx.AsyncClient, settings: Settings, shelf: dict[str, Any], session: AsyncSession
) -> None:
    shirt = shelf["shirt"]
    variant = (await variants_of(session, shirt))[0]
    page_path = f"{API}/products/{shirt.id}"
    list_path = f"{API}/products?vendor={shelf['store'].id}&sort=price_asc"
    page_tag = assert_public(await client.get(page_path))
    list_tag = assert_public(await client.get(list_path))
    assert (await revalidate(client, page_path, page_tag)).status_code == 304

    changed = await client.patch(
        f"{API}/vendor/variants/{variant.id}",
        json={"price": {"amount": 1_200_000, "currency": "NGN"}},
        headers=auth(settings, shelf["owner"]),
    )
    assert changed.status_code == 200, changed.text

    page = await revalidate(client, page_path, page_tag)
    assert page.status_code == 200
    assert page.json()["variants"][0]["price"]["amount"] == 1_200_000
    assert assert_public(page) != page_tag
    listing = await revalidate(client, list_path, list_tag)
    assert listing.status_code == 200
    assert listing.json()["items"][0]["price"]["amount"] == 1_200_000
    assert assert_public(listing) != list_tag
    # And now nothing changed again: 304 for the new tags.
    assert (await revalidate(client, page_path, page.headers["etag"])).status_code == 304
    assert (await revalidate(client, list_path, listing.headers["etag"])).status_code == 304


async def test_stock_taken_by_an_order_and_given_back_is_on_the_next_page(
    client: httpx.AsyncClient, settings: Settings, shelf: dict[str, Any], session: AsyncSession
) -> None:
    shirt = shelf["shirt"]
    variant = (await variants_of(session, shirt))[0]
    page_path = f"{API}/products/{shirt.id}"
    in_stock_path = f"{API}/products?vendor={shelf['store'].id}&in_stock=true"
    before = await client.get(page_path)
    assert before.json()["variants"][0]["stock"] == 5
    in_stock = await client.get(in_stock_path)
    assert "Linen shirt" in [p["title"] for p in in_stock.json()["items"]]

    buyer = auth(settings, await make_user(session))
    order = await client.post(
        f"{API}/orders",
        json={"items": [{"variant_id": str(variant.id), "quantity": 5}], "shipping_address": ADDRESS},
        headers={**buyer, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert order.status_code == 201, order.text

    sold_out = await revalidate(client, page_path, before.headers["etag"])
    assert sold_out.status_code == 200
    assert sold_out.json()["variants"][0]["stock"] == 0
    assert sold_out.json()["in_stock"] is False
    listing = await revalidate(client, in_stock_path, in_stock.headers["etag"])
    assert listing.status_code == 200
    assert "Linen shirt" not in [p["title"] for p in listing.json()["items"]]

    cancelled = await client.post(f"{API}/orders/{order.json()['id']}/cancel", headers=buyer)
    assert cancelled.status_code == 200, cancelled.text
    back = await revalidate(client, page_path, sold_out.headers["etag"])
    assert back.status_code == 200
    assert back.json()["variants"][0]["stock"] == 5
    # The same bytes as before the order: the same tag, since the tag is the body's hash.
    assert back.headers["etag"] == before.headers["etag"]


async def test_one_product_changing_leaves_the_others_pages_alone(
    client: httpx.AsyncClient, settings: Settings, shelf: dict[str, Any], session: AsyncSession
) -> None:
    shirt, other = shelf["shirt"], shelf["other"]
    shirt_tag = assert_public(await client.get(f"{API}/products/{shirt.id}"))
    reviews_tag = assert_public(await client.get(f"{API}/products/{shirt.id}/reviews"))
    other_page = await client.get(f"{API}/products/{other.id}")
    variant = (await variants_of(session, other))[0]
    changed = await client.patch(
        f"{API}/vendor/variants/{variant.id}", json={"stock": 2}, headers=auth(settings, shelf["owner"])
    )
    assert changed.status_code == 200, changed.text
    assert (await revalidate(client, f"{API}/products/{shirt.id}", shirt_tag)).status_code == 304
    assert (await revalidate(client, f"{API}/products/{shirt.id}/reviews", reviews_tag)).status_code == 304
    fresh = await revalidate(client, f"{API}/products/{other.id}", other_page.headers["etag"])
    assert fresh.status_code == 200
    assert fresh.json()["variants"][0]["stock"] == 2


async def test_a_suspended_store_leaves_the_very_next_page(
    client: httpx.AsyncClient, settings: Settings, shelf: dict[str, Any], session: AsyncSession
) -> None:
    shirt, store = shelf["shirt"], shelf["store"]
    page = await client.get(f"{API}/products/{shirt.id}")
    listing = await client.get(f"{API}/products?vendor={store.id}")
    assert listing.json()["items"]
    assert_public(page)
    assert_public(listing)
    assert_public(await client.get(f"{API}/vendors/{store.id}"))
    staff = auth(settings, await make_user(session, role="staff"))
    suspended = await client.patch(
        f"{API}/staff/vendors/{store.id}/status", json={"status": "suspended"}, headers=staff
    )
    assert suspended.status_code == 200, suspended.text
    gone = await revalidate(client, f"{API}/products/{shirt.id}", page.headers["etag"])
    assert gone.status_code == 404
    assert_personal(gone)
    empty = await revalidate(client, f"{API}/products?vendor={store.id}", listing.headers["etag"])
    assert empty.status_code == 200
    assert empty.json()["items"] == []
    assert (await client.get(f"{API}/vendors/{store.id}")).status_code == 404


async def test_a_restock_by_a_worker_unit_of_work_is_on_the_next_page(
    client: httpx.AsyncClient, shelf: dict[str, Any], isolated_db: Database, redis: Redis, broker: Any
) -> None:
    """Returns and fulfilment cancellations restock through ``stock.restock`` in their own unit of
    work (a request's or a task's): the bump follows its commit."""
    shirt = shelf["shirt"]
    path = f"{API}/products/{shirt.id}"
    before = await client.get(path)
    variant_id = uuid.UUID(before.json()["variants"][0]["id"])
    versions = PageVersions(redis)
    async with unit_of_work(isolated_db.session_maker, BrokerDispatcher(broker), versions=versions) as s:
        await stock.restock(s, {variant_id: 3})
    after = await revalidate(client, path, before.headers["etag"])
    assert after.status_code == 200
    assert after.json()["variants"][0]["stock"] == 8

    # A unit of work that rolls back bumps nothing: the page is still the cached one.
    async def restock_then_fail() -> None:
        async with unit_of_work(isolated_db.session_maker, BrokerDispatcher(broker), versions=versions) as s:
            await stock.restock(s, {variant_id: 3})
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        await restock_then_fail()
    assert (await revalidate(client, path, after.headers["etag"])).status_code == 304


async def test_pages_come_from_the_cache_until_a_version_moves(
    client: httpx.AsyncClient,
    shelf: dict[str, Any],
    session: AsyncSession,
    isolated_db: Database,
    redis: Redis,
) -> None:
    """A 304 and a cached 200 do not run the handler: a write that bumps nothing (a script
    outside any unit of work) stays unseen until a version moves or the page ages out."""
    shirt = shelf["shirt"]
    path = f"{API}/products/{shirt.id}"
    first = await client.get(path)
    await session.execute(update(Variant).where(Variant.product_id == shirt.id).values(stock=1))
    await session.execute(update(Product).where(Product.id == shirt.id).values(title="Renamed"))
    await session.commit()
    cached = await client.get(path)
    assert cached.content == first.content
    assert (await revalidate(client, path, first.headers["etag"])).status_code == 304
    await PageVersions(redis).bump([f"fashionistar:pv:product:{shirt.id}"])
    rebuilt = await revalidate(client, path, first.headers["etag"])
    assert rebuilt.status_code == 200
    assert rebuilt.json()["title"] == "Renamed"
    assert rebuilt.json()["variants"][0]["stock"] == 1


async def test_with_no_page_cache_every_page_is_built_and_still_revalidates(
    make_app: Callable[..., Litestar],
    shelf: dict[str, Any],
    session: AsyncSession,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def no_read(*args: Any) -> Any:
        raise AssertionError("with nothing to file pages under, no counter is read")

    monkeypatch.setattr(PageVersions, "read", no_read)
    monkeypatch.setattr(PageVersions, "read_with_position", no_read)
    shirt = shelf["shirt"]
    path = f"{API}/products/{shirt.id}"
    uncached = msgspec.structs.replace(settings, page_cache_max_pages=0)
    async with serve(make_app(settings=uncached)) as client:
        first = await client.get(path)
        assert_public(first)
        assert (await revalidate(client, path, first.headers["etag"])).status_code == 304
        # A write that bumps no version (outside any unit of work) is seen at once: nothing is kept.
        await session.execute(update(Product).where(Product.id == shirt.id).values(title="Renamed"))
        await session.commit()
        rebuilt = await revalidate(client, path, first.headers["etag"])
    assert rebuilt.status_code == 200
    assert rebuilt.json()["title"] == "Renamed"


async def test_without_redis_pages_are_built_and_not_cached(
    client: httpx.AsyncClient, make_app: Callable[..., Litestar], shelf: dict[str, Any]
) -> None:
    assert_public(await client.get(f"{API}/products/{shelf['shirt'].id}"))
    nowhere = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        async with serve(make_app(redis=nowhere)) as cut_off:
            page = await cut_off.get(f"{API}/products/{shelf['shirt'].id}")
    finally:
        await nowhere.aclose()
    assert page.status_code == 200
    assert page.json()["title"] == "Linen shirt"
    assert_personal(page)


async def test_media_are_immutable(client: httpx.AsyncClient, settings: Settings) -> None:
    key = f"products/{uuid.uuid4()}/{uuid.uuid4()}/small.webp"
    await build_storage(settings).put(key, b"RIFF\x00\x00\x00\x00WEBP", "image/webp")
    media = await client.get(f"/media/{key}")
    assert media.status_code == 200
    directives = {part.strip() for part in media.headers["cache-control"].split(",")}
    assert directives == {"public", "max-age=31536000", "immutable"}
    assert (await client.get(f"/media/products/{uuid.uuid4()}/missing.webp")).headers["cache-control"] == (
        "no-store"
    )


def test_the_page_cache_is_bounded_in_pages_and_bytes() -> None:
    def page(size: int, versions: tuple[int, ...] = (1,)) -> Page:
        body = b"x" * size
        return Page(versions, etag_of(body), body, b"application/json", 0.0)

    cache = PageCache(max_pages=3, max_bytes=8000)
    for index in range(5):
        cache.put(f"/p{index}", page(100))
    assert len(cache) == 3
    assert cache.size_bytes == 300
    cache.put("/big", page(900))
    cache.put("/too-big", page(1001))  # over an eighth of the budget: never stored
    assert len(cache) == 3
    assert cache.size_bytes == 1100
    assert cache._pages.keys() == {"/p3", "/p4", "/big"}
    small = PageCache(max_pages=100, max_bytes=4000)
    for index in range(10):
        small.put(f"/q{index}", page(500))
    assert small.size_bytes <= 4000
    assert len(small) == 8


def test_if_none_match_follows_rfc_9110() -> None:
    tag = etag_of(b"{}")
    assert none_match(tag, tag)
    assert none_match(b"W/" + tag, tag)
    assert none_match(b'"a", W/"b" ,' + tag, tag)
    assert none_match(b" * ", tag)
    assert not none_match(None, tag)
    assert not none_match(b'"a"', tag)
    assert not none_match(tag[:-1], tag)
    assert etag_of(b"{}") != etag_of(b"{ }")


async def test_a_review_and_its_authors_new_name_are_on_the_next_pages(
    client: httpx.AsyncClient, settings: Settings, shelf: dict[str, Any], session: AsyncSession
) -> None:
    shirt = shelf["shirt"]
    buyer = await make_user(session, full_name="Ada Obi")
    await make_order(session, buyer, [((await variants_of(session, shirt))[0], 1)], status="paid")
    page_path, reviews_path = f"{API}/products/{shirt.id}", f"{API}/products/{shirt.id}/reviews"
    page = await client.get(page_path)
    reviews = await client.get(reviews_path)
    assert reviews.json()["items"] == []
    headers = auth(settings, buyer)

    written = await client.post(
        reviews_path, json={"rating": 4, "title": "Good", "body": "Soft."}, headers=headers
    )
    assert written.status_code == 201, written.text
    rated = await revalidate(client, page_path, page.headers["etag"])
    assert rated.status_code == 200
    assert rated.json()["rating"]["count"] == 1
    listed = await revalidate(client, reviews_path, reviews.headers["etag"])
    assert listed.status_code == 200
    assert [r["author"]["name"] for r in listed.json()["items"]] == ["Ada O."]

    renamed = await client.patch(f"{API}/me", json={"full_name": "Ada Bello"}, headers=headers)
    assert renamed.status_code == 200, renamed.text
    again = await revalidate(client, reviews_path, listed.headers["etag"])
    assert again.status_code == 200
    assert [r["author"]["name"] for r in again.json()["items"]] == ["Ada B."]
    # The product page shows no names: it is still the page the client has.
    assert (await revalidate(client, page_path, rated.headers["etag"])).status_code == 304


@pytest.mark.worker
async def test_thumbnails_and_embeddings_made_by_a_worker_are_on_the_next_page(
    worker: WorkerProcess, make_app: Callable[..., Litestar], committed_db: Database
) -> None:
    """The worker's unit of work bumps the product's version after its commit: the page cached
    while the photo was pending is replaced on the first request after the worker is done."""
    async with serve(make_app(database=committed_db)) as client:
        async with committed_db.session_maker() as session:
            owner = await make_user(session, role="vendor")
            product = await make_product(session, await make_store(session, owner))
        photo = encode(product_picture("dresses", "purple", "florals", 5), "JPEG")
        uploaded = await client.post(
            f"{API}/vendor/products/{product.id}/images",
            headers=bearer(await login(client, owner.email)),
            files={"image": ("dress.jpg", photo, "image/jpeg")},
        )
        assert uploaded.status_code == 202, uploaded.text
        path = f"{API}/products/{product.id}"
        pending = await client.get(path)
        assert pending.json()["images"][0]["embedding_status"] == "pending"
        assert (await revalidate(client, path, pending.headers["etag"])).status_code == 304

        async def done() -> bool | None:
            async with committed_db.session_maker() as session:
                image = await session.get(ProductImage, uuid.UUID(uploaded.json()["id"]))
                assert image is not None
                return True if image.status == "ready" and image.embedding_status == "ready" else None

        await eventually(done, within=60)
        page = await revalidate(client, path, pending.headers["etag"])
        assert page.status_code == 200
        assert page.json()["images"][0]["embedding_status"] == "ready"
        assert page.json()["images"][0]["thumbnails"]
