"""Hostile input: uploads and JSON that try to break, smuggle or exhaust, on the real endpoints.

The image cases here are the ones the endpoint tests (test_catalog_images, test_measurements,
test_photo_search) do not already cover: polyglots, other formats behind an image name, animated
images, a JPEG that declares gigapixels, truncated PNG and WebP, hostile file names, and the odd but
valid modes (CMYK, 16-bit, palette, grey, alpha) that must come out of the thumbnailer as RGB.
Each refusal is a 4xx problem+json, fast, and stores nothing; each acceptance is normalised.
"""

from __future__ import annotations

import io
import json
import struct
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.adapters.images import make_thumbnail, shrink_checked
from core.settings import Settings
from db.models import Measurement, Product, ProductImage
from tasks.runtime.queues import stream_name
from tests.support.catalog import category, image_bytes, make_product, make_store
from tests.support.http import problem
from tests.support.identity import bearer, login, make_user

pytestmark = pytest.mark.anyio

API = "/api/v1"


def _image(mode: str, size: tuple[int, int] = (400, 600), fmt: str = "PNG", **save: Any) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size).save(out, format=fmt, **save)
    return out.getvalue()


def _animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (300, 300), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    out = io.BytesIO()
    frames[0].save(out, format=fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


def _jpeg_declaring(width: int, height: int) -> bytes:
    """A small real JPEG whose frame header claims ``width`` x ``height``."""
    data = bytearray(image_bytes("JPEG", (300, 300)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _cut(data: bytes) -> bytes:
    return data[: len(data) * 2 // 3]


SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(1)</script></svg>'
HTML = b"<!doctype html><html><body><script>fetch('/api/v1/me')</script></body></html>"
REFUSED: list[tuple[str, bytes, int]] = [
    ("html-named-jpg", HTML, 415),
    ("svg-with-script", SVG, 415),
    ("pdf", b"%PDF-1.7\n1 0 obj <<>> endobj\n%%EOF", 415),
    ("gif-php-polyglot", b"GIF89a<?php system($_GET['c']); ?>", 415),
    ("png-signature-then-garbage", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, 415),
    ("animated-png", _animated("PNG"), 415),
    ("animated-webp", _animated("WEBP"), 415),
    ("jpeg-gigapixel-header", _jpeg_declaring(60_000, 60_000), 422),
    ("truncated-png", _cut(_image("RGB", fmt="PNG", bits=8)), 422),
    ("truncated-webp", _cut(image_bytes("WEBP", (600, 600))), 422),
]
# Valid photos in modes a phone or an editor may produce.
ODD_BUT_VALID: list[tuple[str, bytes]] = [
    ("cmyk-jpeg", _image("CMYK", fmt="JPEG")),
    ("png-16-bit", _image("I;16")),
    ("palette-png-transparent", _image("P", fmt="PNG", transparency=0)),
    ("grey-jpeg", _image("L", fmt="JPEG")),
    ("grey-alpha-png", _image("LA")),
    ("rgba-webp", _image("RGBA", fmt="WEBP")),
]


async def _vendor_product(client: httpx.AsyncClient, session: AsyncSession) -> tuple[Product, dict[str, str]]:
    owner = await make_user(session, role="vendor")
    product = await make_product(session, await make_store(session, owner))
    return product, bearer(await login(client, owner.email))


async def _upload(
    client: httpx.AsyncClient, auth: dict[str, str], product: Product, data: bytes, name: str = "photo.jpg"
) -> httpx.Response:
    return await client.post(
        f"{API}/vendor/products/{product.id}/images",
        headers=auth,
        files={"image": (name, data, "image/jpeg")},
    )


def _files(root: Path) -> set[Path]:
    return {path for path in root.rglob("*") if path.is_file()} if root.exists() else set()


async def test_hostile_uploads_are_refused_everywhere_and_nothing_is_kept(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings, redis: Redis
) -> None:
    product, vendor = await _vendor_product(client, session)
    media, private = _files(settings.media_dir), _files(settings.private_media_dir)
    inference = stream_name("inference")
    queued = await redis.xlen(inference) if await redis.exists(inference) else 0
    photo = image_bytes("JPEG", (480, 720))
    # Refused uploads count against the shopper's hourly measurement limit (20): one shopper will do.
    shopper = bearer(await login(client, (await make_user(session)).email))
    wrong = []
    for name, data, status in REFUSED:
        started = time.perf_counter()
        responses = {
            "product image": await _upload(client, vendor, product, data),
            "search by photo": await client.post(
                f"{API}/search/image", files={"image": ("photo.jpg", data, "image/jpeg")}
            ),
            "measurement": await client.post(
                f"{API}/measurements",
                headers=shopper,
                files={"front": ("front.jpg", data, "image/jpeg"), "side": ("side.jpg", photo, "image/jpeg")},
                data={"height_cm": "170"},
            ),
        }
        elapsed = time.perf_counter() - started
        for where, response in responses.items():
            if response.status_code != status or not response.headers["content-type"].startswith(
                "application/problem+json"
            ):
                wrong.append(f"{name} at {where}: {response.status_code} {response.text[:160]}")
        if elapsed > 3.0:  # three refusals, none of them decoding what a header claims
            wrong.append(f"{name}: {elapsed:.1f} s")
    assert wrong == [], "\n".join(wrong)
    assert await session.scalar(select(func.count()).select_from(ProductImage)) == 0
    assert await session.scalar(select(func.count()).select_from(Measurement)) == 0
    assert (_files(settings.media_dir), _files(settings.private_media_dir)) == (media, private)
    assert (await redis.xlen(inference) if await redis.exists(inference) else 0) == queued


async def test_odd_but_valid_photos_are_accepted_and_thumbnailed_as_rgb(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    product, vendor = await _vendor_product(client, session)
    for name, data in ODD_BUT_VALID:
        response = await _upload(client, vendor, product, data)
        assert response.status_code == 202, f"{name}: {response.text}"
        assert (response.json()["width"], response.json()["height"]) == (400, 600), name
        # What the worker serves: an RGB WebP of the right size, whatever the original's mode.
        with Image.open(io.BytesIO(make_thumbnail(data, 320))) as thumb:
            assert (thumb.format, thumb.mode, thumb.size) == ("WEBP", "RGB", (213, 320)), name
        # What search by photo sends the inference worker.
        limits = {"max_bytes": 10_000_000, "max_pixels": 10_000_000, "min_side": 200}
        with Image.open(io.BytesIO(shrink_checked(data, 300, **limits))) as query:
            assert (query.format, query.mode, query.size) == ("WEBP", "RGB", (200, 300)), name


async def test_a_polyglot_is_kept_and_served_only_as_the_image_it_decodes_as(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """A JPEG with an HTML page appended is a valid JPEG: it is stored under a name of the server's
    choosing (never the uploaded one) and served as image/jpeg that browsers may not sniff."""
    product, vendor = await _vendor_product(client, session)
    polyglot = image_bytes("JPEG", (400, 600)) + HTML
    for name in ("../../../../etc/passwd.html", "x" * 200 + ".jpg", "evil\u202egpj.html", "a\x00b.jpg"):
        response = await _upload(client, vendor, product, polyglot, name=name)
        assert response.status_code == 202, response.text
        url = response.json()["url"]
        assert url.endswith(".jpg")
        assert "passwd" not in url
        assert "evil" not in url
        assert ".." not in url
        served = await client.get(url)
        assert served.status_code == 200
        assert served.headers["content-type"] == "image/jpeg"
        assert served.headers["x-content-type-options"] == "nosniff"
        assert served.headers["content-security-policy"].startswith("default-src 'none'")


# --- JSON ------------------------------------------------------------------------------------------


def _deep(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


async def test_hostile_json_gets_a_problem_and_changes_nothing(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await make_user(session, role="vendor")
    await make_store(session, user)
    auth = bearer(await login(client, user.email))
    tee = await category(session, "women-tops-t-shirts")

    def product(attributes: str) -> str:
        head = f'{{"title":"Hostile tee","category_id":"{tee.id}","price":{{"amount":100,"currency":"NGN"}}'
        return f'{head},"attributes":{attributes}}}'

    def cart(variant: str, quantity: str) -> str:
        return f'{{"variant_id": "{variant}", "quantity": {quantity}}}'

    nul_email = '"a\\u0000b@example.com"'
    register = f'{{"email": {nul_email}, "password": "velvet-Runway-2026!", "full_name": "Nul"}}'
    many_lines = json.dumps({"items": [{"variant_id": str(uuid.uuid4()), "quantity": 1}] * 100_000})
    cases: list[tuple[str, str, str | bytes, int]] = [
        ("POST", "/vendor/products", product(_deep(5_000)), 400),
        ("POST", "/vendor/products", product(_deep(100_000)), 400),
        ("POST", "/vendor/products", product('{"k\\u0000": "v"}'), 422),
        ("POST", "/vendor/products", product('{"k": "v\\u0000"}'), 422),
        ("PATCH", "/me", '{"full_name": "Ada\\u0000Obi"}', 422),
        ("PATCH", "/me", '{"full_name": "\\ud800"}', 400),  # a lone surrogate is not text
        ("PATCH", "/me", b'\xef\xbb\xbf{"full_name": "Bom"}', 400),
        ("PATCH", "/me", b'{"full_name": "\xff\xfe"}', 400),
        ("PATCH", "/me", json.dumps({"full_name": "A" * 2_000_000}), 422),
        ("PATCH", "/me", '{"phone": 1e400}', 400),
        ("PATCH", "/me", "[" * 100_000, 400),
        ("POST", "/auth/login", f'{{"email": {nul_email}, "password": "x"}}', 422),
        ("POST", "/auth/register", register, 422),
        ("POST", "/cart/items", cart(str(uuid.uuid4()), '"1"'), 422),
        ("POST", "/cart/items", cart(str(uuid.uuid4()), "1.5"), 422),
        ("POST", "/cart/items", cart(str(uuid.uuid4()), "true"), 422),
        ("POST", "/cart/items", cart(str(uuid.uuid4()), "18446744073709551617"), 422),
        ("POST", "/cart/items", cart("' OR 1=1 --", "1"), 422),
        ("POST", "/orders", many_lines, 422),
    ]
    wrong = []
    for method, path, body, status in cases:
        headers = {**auth, "Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex}
        started = time.perf_counter()
        response = await client.request(method, API + path, headers=headers, content=body)
        elapsed = time.perf_counter() - started
        kind = response.headers["content-type"]
        if response.status_code != status or not kind.startswith("application/problem+json") or elapsed > 2:
            sent = str(body)[:60]
            wrong.append(
                f"{method} {path} {sent!r}: {response.status_code} in {elapsed:.1f}s {response.text[:150]}"
            )
    assert wrong == [], "\n".join(wrong)
    me = (await client.get(f"{API}/me", headers=auth)).json()
    assert me["full_name"] == "Ada Obi"
    hostile = select(func.count()).select_from(Product).where(Product.title == "Hostile tee")
    assert await session.scalar(hostile) == 0


async def test_hostile_query_strings_get_a_problem_or_an_empty_page(client: httpx.AsyncClient) -> None:
    for params in (
        {"q": "' OR 1=1 --"},
        {"q": "\x00"},
        {"brand": "x'; DROP TABLE products; --"},
        {"color": "\x00"},
        {"size": "\x00"},
        {"category": "\x00"},
        {"cursor": "\x00"},
        {"q": "a" * 201},
        {"min_price": "1e400"},
        {"limit": "18446744073709551617"},
    ):
        response = await client.get(f"{API}/products", params=params)
        if response.status_code == 200:
            assert response.json() == {"items": [], "next_cursor": None}, params
        else:
            assert response.status_code == 422, (params, response.text)
            problem(response, 422)


async def test_markup_and_sql_in_text_are_stored_and_returned_verbatim_as_json(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await make_user(session)
    auth = bearer(await login(client, user.email))
    for name in ("<script>alert(1)</script>", "Robert'); DROP TABLE users;--", "\u202eevil", "Zoë 😀 \u200b"):
        response = await client.patch(f"{API}/me", headers=auth, json={"full_name": name})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        assert (await client.get(f"{API}/me", headers=auth)).json()["full_name"] == name
