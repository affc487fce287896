"""Search by photo (``POST /search/image``): upload checks, the answer of a real inference worker,
and 503 when no worker answers."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import msgspec
import numpy as np
import pytest
from litestar import Litestar
from PIL import Image
from redis.asyncio import Redis
from taskiq import AsyncBroker

from core.adapters.images import UnusableImage, draft_box, shrink_checked
from core.errors import ServiceUnavailable
from core.rules.photo_search import vector_of
from core.settings import Settings
from core.task_names import EMBED_QUERY
from db.engine import Database
from db.models import Product
from db.services.catalog.similar import QUERY_IMAGE_SIDE
from devstack.demo.pictures import encode, product_picture
from devstack.services import free_port
from inference.manifest import all_manifests
from inference.product_embedding import ProductEmbedder
from tasks.runtime.factory import build_broker
from tasks.runtime.queues import stream_name
from tests.conftest import clear_rate_limits, run_task
from tests.support.catalog import image_bytes, make_product, make_store
from tests.support.http import problem, serve
from tests.support.identity import bearer, login, make_user
from tests.support.stack import WorkerProcess
from tests.test_tasks_e2e import eventually

pytestmark = pytest.mark.anyio

API = "/api/v1"
# A Redis database no worker reads from: what the API sees when no inference worker is running.
NO_WORKER_REDIS_DB = 13


async def search(client: httpx.AsyncClient, data: bytes, **params: Any) -> httpx.Response:
    return await client.post(
        f"{API}/search/image", params=params, files={"image": ("photo.jpg", data, "image/jpeg")}
    )


# --- the upload is checked before anyone is asked ----------------------------------------------


async def test_uploads_are_checked_like_every_image_upload(
    make_app: Callable[..., Litestar], settings: Settings
) -> None:
    small_limit = msgspec.structs.replace(settings, max_image_bytes=50_000)
    async with serve(make_app(settings=small_limit)) as client:
        noise = np.random.default_rng(1).integers(0, 255, (400, 400, 3), dtype=np.uint8)
        large = encode_png(noise)
        assert len(large) > 50_000
        assert problem(await search(client, large), 413)["status"] == 413
        problem(await search(client, b"%PDF-1.7 definitely not a photo"), 415)
        problem(await search(client, b""), 415)
        tiny = problem(await search(client, image_bytes(size=(120, 120))), 422)
        assert "too small" in tiny["detail"]
        whole = image_bytes(size=(400, 400))
        for cut_short in (whole[:400], whole[: len(whole) * 2 // 3]):  # in the header, in the pixels
            problem(await search(client, cut_short), 422)
        unknown = problem(await search(client, image_bytes(), category="no-such-category"), 422)
        assert unknown["errors"] == [{"field": "category", "message": "unknown category"}]
        problem(await search(client, image_bytes(), limit=0), 422)
        missing = await client.post(
            f"{API}/search/image", files={"other": ("x.jpg", image_bytes(), "image/jpeg")}
        )
        assert missing.status_code in (400, 422), missing.text


def encode_png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


# --- a large JPEG is decoded at reduced scale ----------------------------------------------------


def _phone_photo(garment: str, colour: str, pattern: str, seed: int) -> bytes:
    """A 12-megapixel JPEG as a phone stores it: sideways with EXIF orientation 6, some noise."""
    size = (4032, 3024)
    picture = product_picture(garment, colour, pattern, seed).resize(size, Image.Resampling.BICUBIC)
    noise = np.random.default_rng(seed).integers(-5, 6, (size[1], size[0], 3), dtype=np.int16)
    pixels = np.clip(np.asarray(picture) + noise, 0, 255).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to show
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=90, exif=exif)
    return out.getvalue()


def _fully_decoded(jpeg: bytes) -> bytes:
    """The same pixels and orientation as a PNG, which is decoded in full."""
    with Image.open(io.BytesIO(jpeg)) as image:
        out = io.BytesIO()
        image.convert("RGB").save(out, format="PNG", compress_level=1, exif=image.getexif())
        return out.getvalue()


def test_a_large_jpeg_is_decoded_at_reduced_scale_and_embeds_as_a_full_decode_does(
    settings: Settings,
) -> None:
    limits = {
        "max_bytes": settings.max_image_bytes,
        "max_pixels": settings.max_image_pixels,
        "min_side": settings.min_image_side,
    }
    # Draft mode is asked for twice the query's side on the longer side: 1/4 scale here.
    assert draft_box((4032, 3024), 2 * QUERY_IMAGE_SIDE) == (896, 672)
    assert draft_box((800, 600), 2 * QUERY_IMAGE_SIDE) == (800, 600)
    embedder = ProductEmbedder(all_manifests()["product_embedding"])
    for spec in (("dresses", "purple", "florals", 5), ("accessories", "black", "solid", 4)):
        photo = _phone_photo(*spec)
        with Image.open(io.BytesIO(photo)) as opened:
            opened.draft("RGB", draft_box(opened.size, 2 * QUERY_IMAGE_SIDE))
            assert opened.size == (1008, 756)
        drafted = shrink_checked(photo, QUERY_IMAGE_SIDE, **limits)
        full = shrink_checked(_fully_decoded(photo), QUERY_IMAGE_SIDE, **limits)
        assert drafted != full  # two different decodes
        with Image.open(io.BytesIO(drafted)) as query:
            assert (query.format, query.size) == ("WEBP", (336, 448))  # upright, longer side 448
        vectors = embedder.embed([drafted, full])
        assert float(vectors[0] @ vectors[1]) >= 0.99, spec
        # A reduced-scale decode still reads every byte: a photo cut short is refused.
        for cut_short in (photo[: len(photo) * 2 // 3], photo[:-100]):
            with pytest.raises(UnusableImage, match="damaged or incomplete"):
                shrink_checked(cut_short, QUERY_IMAGE_SIDE, **limits)


# --- no worker, no broker: 503 with Retry-After --------------------------------------------------


def workerless_url(settings: Settings) -> str:
    return (settings.redis_url or "").rsplit("/", 1)[0] + f"/{NO_WORKER_REDIS_DB}"


@pytest.fixture
async def workerless_broker(settings: Settings) -> AsyncIterator[AsyncBroker]:
    """A broker on a Redis database that no worker serves."""
    url = workerless_url(settings)
    broker = build_broker(msgspec.structs.replace(settings, redis_url=url))
    yield broker
    await broker.shutdown()
    redis = Redis.from_url(url)
    await redis.flushdb()
    await redis.aclose()


async def test_no_worker_answering_in_time_is_503_with_retry_after(
    make_app: Callable[..., Litestar], settings: Settings, workerless_broker: AsyncBroker
) -> None:
    impatient = msgspec.structs.replace(settings, search_image_timeout_seconds=0.5)
    async with serve(make_app(settings=impatient, broker=workerless_broker)) as client:
        started = time.monotonic()
        response = await search(client, image_bytes())
        elapsed = time.monotonic() - started
    body = problem(response, 503)
    assert response.headers["retry-after"].isdigit()
    assert "answer" in body["detail"]
    assert 0.5 <= elapsed < 3
    # The request was queued for an inference worker; none took it.
    redis = Redis.from_url(workerless_url(settings))
    try:
        assert await redis.xlen(stream_name("inference")) == 1
    finally:
        await redis.aclose()


async def test_an_unreachable_broker_is_503(make_app: Callable[..., Litestar], settings: Settings) -> None:
    nowhere = msgspec.structs.replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    broker = build_broker(nowhere)
    try:
        async with serve(make_app(broker=broker)) as client:
            response = await search(client, image_bytes())
    finally:
        await broker.shutdown()
    problem(response, 503)
    assert response.headers["retry-after"].isdigit()


def test_worker_answers_map_to_errors() -> None:
    assert vector_of({"vector": [0.6, 0.8]}) == [0.6, 0.8]
    with pytest.raises(UnusableImage):
        vector_of({"error": "unreadable_image", "detail": "cannot decode the image (OSError)"})
    with pytest.raises(ServiceUnavailable):
        vector_of({"error": "expired"})
    with pytest.raises(msgspec.ValidationError):
        vector_of({"vectors": []})


# --- a real inference worker ----------------------------------------------------------------------


PHOTOS = {
    "dress": ("dresses", "purple", "florals", 5, "women-dresses-maxi-dresses"),
    "trousers": ("bottoms", "blue", "stripes", 7, "women-bottoms-trousers"),
    "tee": ("tops", "green", "solid", 9, "women-tops-t-shirts"),
    "sneakers": ("shoes", "black", "dots", 11, "women-shoes"),
}


@pytest.mark.worker
async def test_a_products_own_photo_finds_that_product_first(
    worker: WorkerProcess, make_app: Callable[..., Litestar], committed_db: Database
) -> None:
    photos = {name: encode(product_picture(*spec[:4]), "JPEG") for name, spec in PHOTOS.items()}
    async with serve(make_app(database=committed_db)) as client:
        async with committed_db.session_maker() as session:
            owner = await make_user(session, role="vendor")
            store = await make_store(session, owner)
            products = {
                name: await make_product(session, store, title=name.title(), category_slug=spec[4])
                for name, spec in PHOTOS.items()
            }
        auth = bearer(await login(client, owner.email))
        for name, product in products.items():
            uploaded = await client.post(
                f"{API}/vendor/products/{product.id}/images",
                headers=auth,
                files={"image": (f"{name}.jpg", photos[name], "image/jpeg")},
            )
            assert uploaded.status_code == 202, uploaded.text
        await eventually(lambda: all_embedded(client, list(products.values())), within=90)

        response = await search(client, photos["dress"])
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        assert [i["product"]["id"] for i in items][:1] == [str(products["dress"].id)]
        assert items[0]["score"] > 0.95
        assert len(items) == len(products)
        assert [i["score"] for i in items] == sorted((i["score"] for i in items), reverse=True)

        # The same filters as "more like this".
        trousers = await search(client, photos["dress"], category="women-bottoms")
        assert [i["product"]["id"] for i in trousers.json()["items"]] == [str(products["trousers"].id)]
        first_two = await search(client, photos["sneakers"], limit=2)
        assert first_two.json()["items"][0]["product"]["id"] == str(products["sneakers"].id)
        assert len(first_two.json()["items"]) == 2

        # A stored photo and the same photo searched with rank the same product first.
        like_the_dress = await client.get(f"{API}/products/{products['dress'].id}/similar")
        assert like_the_dress.status_code == 200, like_the_dress.text
        assert str(products["dress"].id) not in {i["product"]["id"] for i in like_the_dress.json()["items"]}


async def all_embedded(client: httpx.AsyncClient, products: list[Product]) -> bool:
    for product in products:
        detail = (await client.get(f"{API}/products/{product.id}")).json()
        if not detail["images"] or detail["images"][0]["embedding_status"] != "ready":
            return False
    return True


@pytest.mark.worker
async def test_the_query_task_answers_vectors_unreadable_images_and_expired_requests(
    worker: WorkerProcess, broker: AsyncBroker
) -> None:
    photo = base64.b64encode(encode(product_picture("tops", "red", "checks", 3), "WEBP")).decode()
    later = time.time() + 30
    answer = await run_task(broker, EMBED_QUERY, photo, later)
    vector = np.asarray(answer["vector"])
    assert vector.shape == (1280,)
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-3

    garbage = base64.b64encode(b"\xff\xd8\xff\xe0 this JPEG was cut short").decode()
    unreadable = await run_task(broker, EMBED_QUERY, garbage, later)
    assert unreadable["error"] == "unreadable_image"
    assert "vector" not in unreadable
    assert (await run_task(broker, EMBED_QUERY, "%%% not base64", later))["error"] == "unreadable_image"
    assert await run_task(broker, EMBED_QUERY, photo, time.time() - 1) == {"error": "expired"}


async def test_searches_by_photo_are_rate_limited_per_address(
    make_app: Callable[..., Litestar], settings: Settings, redis: Redis
) -> None:
    await clear_rate_limits(redis)  # every test client comes from the same address
    sparing = msgspec.structs.replace(settings, search_image_per_minute=2)
    async with serve(make_app(settings=sparing)) as client:
        # Refused uploads count too: each attempt costs the server the upload and a check.
        for _ in range(2):
            problem(await search(client, b"not a photo"), 415)
        limited = await search(client, image_bytes())
        body = problem(limited, 429)
    assert int(limited.headers["retry-after"]) >= 1
    assert body["status"] == 429
    await clear_rate_limits(redis)
