"""What the load scenarios cannot show by latency: stock integrity after the order load, and the
two flows that go through the inference worker (search by photo, photo pair upload -> ready).

Stock integrity (``verify_stock``), after every order request of the run has been answered:
no variant has negative ``stock`` or ``reserved``; every variant's ``reserved`` equals the units
of the unpaid (``pending_payment``) orders holding it; for the order scenario's variants,
``stock + reserved`` is still the stock they were given (nothing was paid, so nothing left);
and the unpaid orders are exactly the orders created during the run. Then a contention burst
(``contention``): ``BURST_BUYERS`` concurrent orders of one unit each for a variant with
``BURST_STOCK`` units must give exactly ``BURST_STOCK`` orders (201) and refuse the rest (409),
leaving stock 0; and one retried request (same key and body) must answer the same order (200).
"""

from __future__ import annotations

import asyncio
import io
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import msgspec
import numpy as np
from PIL import Image

from benchmarks import measurement_flow
from benchmarks.search_quality.client import LoadClient
from benchmarks.search_quality.load import Request
from benchmarks.suite.scenarios import ADDRESS, API, HttpScenario

BURST_BUYERS = 200
BURST_STOCK = 25


async def verify_stock(conn: asyncpg.Connection, variants: list[UUID], stock: int) -> dict[str, Any]:
    negative = await conn.fetchval("SELECT count(*) FROM variants WHERE stock < 0 OR reserved < 0")
    mismatched = await conn.fetch(
        """
        WITH held AS (
            SELECT ol.variant_id, sum(ol.quantity) AS units FROM order_lines ol
            JOIN orders o ON o.id = ol.order_id WHERE o.status = 'pending_payment' GROUP BY ol.variant_id
        )
        SELECT v.id, v.reserved, COALESCE(h.units, 0) AS held FROM variants v
        LEFT JOIN held h ON h.variant_id = v.id WHERE v.reserved <> COALESCE(h.units, 0) LIMIT 5
        """
    )
    not_conserved = await conn.fetchval(
        "SELECT count(*) FROM variants WHERE id = ANY($1::uuid[]) AND stock + reserved <> $2", variants, stock
    )
    totals = await conn.fetchrow(
        "SELECT count(*) AS unpaid_orders, COALESCE(sum(item_count), 0) AS unpaid_units "
        "FROM orders WHERE status = 'pending_payment'"
    )
    reserved = await conn.fetchval("SELECT COALESCE(sum(reserved), 0) FROM variants")
    assert totals is not None
    return {
        "variants_with_negative_stock_or_reserved": negative,
        "variants_whose_reserved_differs_from_unpaid_orders": len(mismatched),
        "mismatch_samples": [dict(r) | {"id": str(r["id"])} for r in mismatched],
        "order_variants_not_conserved": not_conserved,
        "unpaid_orders": totals["unpaid_orders"],
        "unpaid_units": totals["unpaid_units"],
        "reserved_units": reserved,
        "ok": negative == 0 and not mismatched and not_conserved == 0 and reserved == totals["unpaid_units"],
    }


async def contention(
    conn: asyncpg.Connection, base_url: str, headers: list[dict[str, str]]
) -> dict[str, Any]:
    variant = await conn.fetchval(
        "SELECT v.id FROM variants v JOIN products p ON p.id = v.product_id"
        " WHERE p.is_listed AND v.reserved = 0 ORDER BY v.id DESC LIMIT 1"
    )
    await conn.execute("UPDATE variants SET stock = $2 WHERE id = $1", variant, BURST_STOCK)
    body = msgspec.json.encode(
        {"items": [{"variant_id": str(variant), "quantity": 1}], "shipping_address": ADDRESS}
    )
    run = secrets.token_hex(4)
    client = LoadClient(base_url, max_connections=BURST_BUYERS)
    try:

        async def buy(i: int, key: str) -> tuple[int, Any]:
            h = {**headers[i % len(headers)], "Content-Type": "application/json", "Idempotency-Key": key}
            response = await client.request("POST", f"{API}/orders", headers=h, body=body)
            return response.status_code, response.json().get("id") if response.status_code in (
                200,
                201,
            ) else None

        answers = await asyncio.gather(*(buy(i, f"{run}-burst-{i}") for i in range(BURST_BUYERS)))
        # A retry of the first successful request: same buyer, key and body.
        first = next((i for i, (status, _) in enumerate(answers) if status == 201), None)
        replay = await buy(first, f"{run}-burst-{first}") if first is not None else (None, None)
    finally:
        await client.aclose()
    row = await conn.fetchrow("SELECT stock, reserved FROM variants WHERE id = $1", variant)
    assert row is not None
    statuses = [status for status, _ in answers]
    created, refused = statuses.count(201), statuses.count(409)
    same_order = first is not None and replay == (200, answers[first][1])
    return {
        "buyers": BURST_BUYERS,
        "stock": BURST_STOCK,
        "created_201": created,
        "refused_409": refused,
        "other_statuses": sorted({s for s in statuses if s not in (201, 409)}),
        "stock_after": row["stock"],
        "reserved_after": row["reserved"],
        "retry_answered_same_order_200": same_order,
        "ok": created == BURST_STOCK
        and refused == BURST_BUYERS - BURST_STOCK
        and row["stock"] == 0
        and row["reserved"] == BURST_STOCK
        and same_order,
    }


# --- search by photo ------------------------------------------------------------------------------
# A phone's photo: 12 megapixels, JPEG quality 90, with sensor-like noise (a smooth upscale alone
# would compress to a fraction of a real photo's bytes, and decoding cost follows the bytes).
PHONE_SIZE = (4032, 3024)
PHONE_PHOTOS = 10


def photo_search_scenario(media_dir: Path, photos: list[str], limit: int) -> HttpScenario:
    """``POST /search/image?limit=`` with the catalog's real product photos as multipart uploads."""
    images = [(media_dir / key).read_bytes() for key in photos]
    return HttpScenario("photo_search", "POST /search/image", _uploads(images, limit), [])


def phone_photo_search_scenario(media_dir: Path, photos: list[str], limit: int) -> HttpScenario:
    """``photo_search`` with ``PHONE_PHOTOS`` of those photos as a phone would upload them."""
    images = [
        as_phone_photo((media_dir / key).read_bytes(), i) for i, key in enumerate(photos[:PHONE_PHOTOS])
    ]
    endpoint = "POST /search/image (12-megapixel JPEGs)"
    return HttpScenario("photo_search_phone", endpoint, _uploads(images, limit), [])


def as_phone_photo(data: bytes, seed: int) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        large = image.convert("RGB").resize(PHONE_SIZE, Image.Resampling.BICUBIC)
    noise = np.random.default_rng(seed).integers(-4, 5, (PHONE_SIZE[1], PHONE_SIZE[0], 3), dtype=np.int16)
    pixels = np.clip(np.asarray(large, dtype=np.int16) + noise, 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=90)
    return out.getvalue()


def _uploads(images: list[bytes], limit: int) -> list[Request]:
    boundary = "bench-suite-" + secrets.token_hex(8)
    requests = []
    for data in images:
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="query.jpg"\r\n'
                "Content-Type: image/jpeg\r\n\r\n"
            ).encode()
            + data
            + f"\r\n--{boundary}--\r\n".encode()
        )
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        requests.append(Request(f"{API}/search/image", {"limit": limit}, headers, "POST", body))
    return requests


async def photo_keys(conn: asyncpg.Connection, count: int) -> list[str]:
    """Originals of real product photos (the products rendered and embedded by the real model)."""
    rows = await conn.fetch(
        "SELECT DISTINCT original_key FROM product_images WHERE original_key LIKE '%original.jpg' "
        "ORDER BY original_key LIMIT $1",
        count,
    )
    return [r[0] for r in rows]


# --- photo pair upload -> ready ----------------------------------------------------------------------
async def measurement_run(
    base_url: str,
    email: str,
    password: str,
    pairs: int,
    rate: float,
    seed: int,
    worker_pid: int | None,
    worker_log: Callable[[], str],
) -> dict[str, Any]:
    """``benchmarks.measurement_flow``'s open-loop run against this stack (its own report)."""
    photos = await asyncio.to_thread(measurement_flow.render_pairs, seed, range(pairs + 2))
    config = measurement_flow.RunConfig(
        base_url, photos[:pairs], photos[pairs:], rate, "sse", 120.0, email, password
    )
    memory = {"inference_worker": measurement_flow.RssSeries(worker_pid)} if worker_pid else {}
    outcome = await measurement_flow.run(config, memory, measurement_flow.CpuMeter([]))
    measurement_flow.attach_worker_timings(outcome.results, worker_log())
    report = measurement_flow.build_report(config, outcome, None, seed)
    report.pop("pairs", None)
    report.pop("targets", None)
    return report
