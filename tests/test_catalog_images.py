"""Product image upload: what is accepted, what is refused (quickly), and the thumbnail task."""

from __future__ import annotations

import io
import os
import struct
import time
import uuid
import zlib
from collections.abc import Callable
from typing import Any

import httpx
import msgspec
import pytest
from litestar import Litestar
from PIL import Image
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.settings import Settings
from db.engine import Database
from db.models import ProductImage
from tests.support.catalog import image_bytes, make_product, make_store
from tests.support.http import serve
from tests.support.identity import bearer, login, make_user
from tests.support.images import SRGB, metadata_of, phone_photo
from tests.support.stack import WorkerProcess
from tests.test_tasks_e2e import eventually

pytestmark = pytest.mark.anyio

API = "/api/v1"


async def upload(
    client: httpx.AsyncClient, auth: dict[str, str], product_id: Any, data: bytes, name: str = "photo.jpg"
) -> httpx.Response:
    return await client.post(
        f"{API}/vendor/products/{product_id}/images",
        headers=auth,
        files={"image": (name, data, "image/jpeg")},
    )


async def vendor_with_product(client: httpx.AsyncClient, session: AsyncSession) -> tuple[Any, dict[str, str]]:
    owner = await make_user(session, role="vendor")
    store = await make_store(session, owner)
    product = await make_product(session, store)
    return product, bearer(await login(client, owner.email))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares huge dimensions but carries almost no data (a decompression bomb's shape)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def rotated_jpeg() -> bytes:
    image = Image.new("RGB", (400, 600), (10, 120, 200))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees when displayed
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif.tobytes())
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "width", "height"),
    [
        (image_bytes("JPEG"), 400, 600),
        (image_bytes("PNG"), 400, 600),
        (image_bytes("WEBP"), 400, 600),
        (image_bytes("HEIF"), 400, 600),
        (rotated_jpeg(), 600, 400),
    ],
    ids=["jpeg", "png", "webp", "heic", "exif-rotated"],
)
async def test_accepted_images(
    client: httpx.AsyncClient, session: AsyncSession, data: bytes, width: int, height: int
) -> None:
    product, auth = await vendor_with_product(client, session)
    response = await upload(client, auth, product.id, data)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "processing"
    assert body["embedding_status"] == "pending"
    assert (body["width"], body["height"]) == (width, height)
    assert body["url"].startswith("/media/products/")
    detail = (await client.get(f"{API}/products/{product.id}")).json()
    assert [image["id"] for image in detail["images"]] == [body["id"]]


async def test_stored_originals_carry_no_exif_gps_or_camera(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    product, auth = await vendor_with_product(client, session)
    response = await upload(client, auth, product.id, phone_photo((600, 400), orientation=6))
    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["width"], body["height"]) == (400, 600)  # the orientation is applied
    row = await session.get(ProductImage, uuid.UUID(body["id"]))
    assert row is not None
    stored = (settings.media_dir / row.original_key).read_bytes()
    assert metadata_of(stored) == {}
    assert row.byte_size == len(stored)
    with Image.open(io.BytesIO(stored)) as image:
        assert image.size == (400, 600)
        assert image.info.get("icc_profile") == SRGB  # the colour profile stays
    served = await client.get(body["url"])
    assert served.status_code == 200
    assert metadata_of(served.content) == {}


def _truncated() -> bytes:
    data = image_bytes("JPEG", (800, 800), quality=95)
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"this is not an image, whatever the file name says", 415),
        (b"", 415),
        (image_bytes("GIF"), 415),
        (image_bytes("BMP"), 415),
        (_truncated(), 422),
        (png_header_only(30_000, 30_000), 422),
        (image_bytes("PNG", (100, 100)), 422),
    ],
    ids=["text", "empty", "gif", "bmp", "truncated", "bomb", "too-small"],
)
async def test_refused_images(
    client: httpx.AsyncClient, session: AsyncSession, data: bytes, status: int
) -> None:
    product, auth = await vendor_with_product(client, session)
    started = time.perf_counter()
    response = await upload(client, auth, product.id, data)
    elapsed = time.perf_counter() - started
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert elapsed < 2.0  # refused without decoding gigapixels
    assert await session.scalar(select(ProductImage).where(ProductImage.product_id == product.id)) is None


async def test_oversized_upload_is_413(
    make_app: Callable[..., Litestar], session: AsyncSession, settings: Settings
) -> None:
    small = msgspec.structs.replace(settings, max_image_bytes=20_000)
    async with serve(make_app(settings=small)) as client:
        product, auth = await vendor_with_product(client, session)
        noise = io.BytesIO()
        Image.frombytes("RGB", (300, 300), os.urandom(300 * 300 * 3)).save(noise, format="PNG")
        assert len(noise.getvalue()) > 20_000
        response = await upload(client, auth, product.id, noise.getvalue())
        assert response.status_code == 413, response.text


async def test_thumbnails_are_made_by_the_worker(
    worker: WorkerProcess,
    make_app: Callable[..., Litestar],
    committed_db: Database,
    settings: Settings,
) -> None:
    async with serve(make_app(database=committed_db)) as client:
        async with committed_db.session_maker() as session:
            product, auth = await vendor_with_product(client, session)
        response = await upload(client, auth, product.id, image_bytes("JPEG", (1200, 1600)))
        assert response.status_code == 202
        image_id = response.json()["id"]

        async def ready() -> dict[str, Any] | None:
            detail = (await client.get(f"{API}/products/{product.id}")).json()
            image = detail["images"][0]
            return detail if image["status"] == "ready" else None

        detail = await eventually(ready, within=30)
        image = detail["images"][0]
        assert image["id"] == image_id
        assert set(image["thumbnails"]) == {"small", "medium"}
        assert detail["thumbnail_url"] == image["thumbnails"]["small"]
        served = await client.get(image["thumbnails"]["small"])
        assert served.status_code == 200
        thumb = Image.open(io.BytesIO(served.content))
        assert thumb.format == "WEBP"
        assert max(thumb.size) == 320
        assert image["embedding_status"] in ("pending", "ready")
