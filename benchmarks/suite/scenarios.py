"""The HTTP scenarios: which requests each one sends, built from the working copy's own rows.

Every scenario has one list of requests that both load generators take in turn (the open loop as
``load.Request``, wrk as ``WrkRequest`` lines): a few thousand distinct products, shoppers and
queries, so caches see a realistic spread rather than one hot row.

* ``product_detail``: ``GET /products/{id}`` over 2,000 random listed products.
* ``listing``: ``GET /products`` with the filters shoppers combine (category with subcategories,
  brand, colour, size + in stock, price range; each sort), half of them a second page through the
  first page's ``next_cursor`` (keyset).
* ``search``: ``GET /products?q=`` with 2- and 3-word queries made of product title words
  (pattern, colour, material, garment), sorted by relevance, some with a category.
* ``similar``: ``GET /products/{id}/similar?limit=10`` over 2,000 products with an embedding;
  an answer with fewer than 10 items is an error.
* ``fit_products`` / ``product_fit``: ``GET /fit/products`` and ``GET /products/{id}/fit``
  as logged-in shoppers with ready body profiles; ``product_fit`` over the 2,000 most-bought
  products (their buyers' history feeds "shoppers like me").
* ``login``: ``POST /auth/login`` as up to 2,000 shoppers (email and password; 200 is success),
  each shopper's hash first set to one made with today's Argon2 parameters, so a dataset built
  before a parameter change measures today's logins and not the one rehash each would cost.
* ``orders``: ``POST /orders`` with ``{items: [{variant_id, quantity: 1}], shipping_address}``
  for one of ``ORDER_VARIANTS`` variants whose stock is raised to ``ORDER_STOCK`` for the run, a
  fresh ``Idempotency-Key`` per request; 201 is success.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import asyncpg
import msgspec
import numpy as np

from benchmarks.search_quality.client import Response
from benchmarks.search_quality.load import Check, Request
from benchmarks.suite import people
from benchmarks.suite.wrk import UNIQUE, WrkRequest
from core.adapters.passwords import hash_password_sync

API = "/api/v1"
DISTINCT = 2_000
ORDER_VARIANTS = 1_000
ORDER_STOCK = 1_000_000
ADDRESS = {"full_name": "Bench Shopper", "line1": "1 Marina", "city": "Lagos", "country": "NG"}
SORTS = ("newest", "price_asc", "price_desc")


@dataclass
class HttpScenario:
    name: str
    endpoint: str
    requests: list[Request]
    wrk_requests: list[WrkRequest]
    ok_statuses: tuple[int, ...] = (200,)
    check: Check | None = None
    notes: list[str] = field(default_factory=list)


def as_wrk(request: Request) -> WrkRequest:
    path = f"{request.path}?{urlencode(request.params)}" if request.params else request.path
    body = request.body.decode() if request.body is not None else ""
    return WrkRequest(path=path, method=request.method, headers=dict(request.headers or {}), body=body)


def scenario(name: str, endpoint: str, requests: list[Request], **kw: Any) -> HttpScenario:
    return HttpScenario(name, endpoint, requests, [as_wrk(r) for r in requests], **kw)


def full_page(k: int) -> Check:
    def check(response: Response) -> str | None:
        items = len(response.json()["items"])
        return None if items >= k else f"short: {items} of {k} items"

    return check


async def _ids(
    conn: asyncpg.Connection, sql: str, rng: np.random.Generator, count: int = DISTINCT
) -> list[UUID]:
    ids = [r[0] for r in await conn.fetch(sql)]
    return [ids[i] for i in rng.permutation(len(ids))[:count]]


async def product_detail(
    conn: asyncpg.Connection, rng: np.random.Generator
) -> tuple[HttpScenario, list[UUID]]:
    ids = await _ids(conn, "SELECT id FROM products WHERE is_listed ORDER BY id", rng)
    requests = [Request(f"{API}/products/{p}") for p in ids]
    return scenario("product_detail", "GET /products/{id}", requests), ids


async def listing(conn: asyncpg.Connection, rng: np.random.Generator, client: Any) -> HttpScenario:
    categories = [r[0] for r in await conn.fetch("SELECT slug FROM categories ORDER BY slug")]
    brands = [r[0] for r in await conn.fetch("SELECT slug FROM brands ORDER BY slug")]
    colours = [r[0] for r in await conn.fetch("SELECT DISTINCT color FROM variants ORDER BY 1 LIMIT 40")]
    sizes = ["S", "M", "L", "XL", "28", "32", "40", "42"]
    first: list[dict[str, Any]] = []
    for i in range(120):
        params: dict[str, Any] = {"sort": SORTS[i % len(SORTS)], "limit": 20}
        kind = i % 5
        if kind == 0:
            params["category"] = categories[int(rng.integers(len(categories)))]
        elif kind == 1:
            params["brand"] = brands[int(rng.integers(len(brands)))]
        elif kind == 2:
            params["color"] = colours[int(rng.integers(len(colours)))]
        elif kind == 3:
            params |= {
                "category": categories[int(rng.integers(len(categories)))],
                "size": sizes[int(rng.integers(len(sizes)))],
                "in_stock": "true",
            }
        else:
            low = int(rng.integers(5, 60)) * 100_000
            params |= {"min_price": low, "max_price": low + 2_000_000}
        first.append(params)
    requests = [Request(f"{API}/products", p) for p in first]
    # Second pages: the cursor each first page hands out (fetched before any timing).
    for params in first:
        response = await client.get(f"{API}/products", params=params)
        cursor = response.json().get("next_cursor") if response.status_code == 200 else None
        if cursor:
            requests.append(Request(f"{API}/products", {**params, "cursor": cursor}))
    order = rng.permutation(len(requests))
    return scenario("listing", "GET /products (filters, keyset pages)", [requests[i] for i in order])


async def search(conn: asyncpg.Connection, rng: np.random.Generator) -> HttpScenario:
    titles = [
        r[0] for r in await conn.fetch("SELECT title FROM products WHERE is_listed ORDER BY id LIMIT 5000")
    ]
    categories = [r[0] for r in await conn.fetch("SELECT slug FROM categories ORDER BY slug")]
    requests = []
    for i in range(300):
        words = titles[int(rng.integers(len(titles)))].lower().split()
        take = 2 if i % 2 else 3
        start = int(rng.integers(0, max(1, len(words) - take + 1)))
        params: dict[str, Any] = {"q": " ".join(words[start : start + take]), "limit": 20}
        if i % 4 == 0:
            params["category"] = categories[int(rng.integers(len(categories)))]
        requests.append(Request(f"{API}/products", params))
    return scenario("search", "GET /products?q= (full-text, relevance)", requests)


async def similar(conn: asyncpg.Connection, rng: np.random.Generator, k: int) -> HttpScenario:
    ids = await _ids(
        conn,
        "SELECT p.id FROM products p WHERE p.is_listed AND EXISTS (SELECT 1 FROM product_images i "
        "WHERE i.product_id = p.id AND i.embedding IS NOT NULL) ORDER BY p.id",
        rng,
    )
    requests = [Request(f"{API}/products/{p}/similar", {"limit": k}) for p in ids]
    return scenario("similar", "GET /products/{id}/similar", requests, check=full_page(k))


async def fit(
    conn: asyncpg.Connection, rng: np.random.Generator, headers: list[dict[str, str]]
) -> list[HttpScenario]:
    bought = [
        r[0]
        for r in await conn.fetch(
            "SELECT ol.product_id FROM order_lines ol JOIN products p ON p.id = ol.product_id"
            " WHERE p.is_listed GROUP BY ol.product_id ORDER BY count(*) DESC, ol.product_id LIMIT $1",
            DISTINCT,
        )
    ]
    fit_products = [Request(f"{API}/fit/products", None, h) for h in headers]
    product_fit = [
        Request(f"{API}/products/{p}/fit", None, headers[i % len(headers)])
        for i, p in enumerate(bought[i] for i in rng.permutation(len(bought)))
    ]
    return [
        scenario("fit_products", "GET /fit/products", fit_products),
        scenario("product_fit", "GET /products/{id}/fit (size advice)", product_fit),
    ]


async def login(conn: asyncpg.Connection, rng: np.random.Generator, skip: int) -> HttpScenario:
    """Logins of shoppers past the first ``skip`` (the ones other scenarios hold tokens of)."""
    emails = [
        r[0]
        for r in await conn.fetch(
            "SELECT email FROM users WHERE email LIKE $1 ORDER BY email OFFSET $2 LIMIT $3",
            f"%@{people.EMAIL_DOMAIN}",
            skip,
            DISTINCT,
        )
    ]
    await conn.execute(
        "UPDATE users SET password_hash = $2 WHERE email = ANY($1::text[])",
        emails,
        hash_password_sync(people.SHOPPER_PASSWORD),
    )
    json_type = {"Content-Type": "application/json"}
    requests = [
        Request(
            f"{API}/auth/login",
            None,
            json_type,
            "POST",
            msgspec.json.encode({"email": emails[i], "password": people.SHOPPER_PASSWORD}),
        )
        for i in rng.permutation(len(emails))
    ]
    return scenario("login", "POST /auth/login (Argon2id verify)", requests)


async def order_variants(conn: asyncpg.Connection, rng: np.random.Generator) -> list[UUID]:
    """``ORDER_VARIANTS`` variants of listed products, their stock raised to ``ORDER_STOCK``."""
    ids = await _ids(
        conn,
        "SELECT v.id FROM variants v JOIN products p ON p.id = v.product_id WHERE p.is_listed ORDER BY v.id",
        rng,
        ORDER_VARIANTS,
    )
    await conn.execute("UPDATE variants SET stock = $2 WHERE id = ANY($1::uuid[])", ids, ORDER_STOCK)
    return ids


def orders(variants: list[UUID], headers: list[dict[str, str]], count: int, run: str) -> HttpScenario:
    """``count`` distinct open-loop requests (a unique key each); wrk makes its own keys."""
    bodies = [
        msgspec.json.encode({"items": [{"variant_id": str(v), "quantity": 1}], "shipping_address": ADDRESS})
        for v in variants
    ]
    json_type = {"Content-Type": "application/json"}
    requests = [
        Request(
            f"{API}/orders",
            None,
            {**headers[i % len(headers)], **json_type, "Idempotency-Key": f"{run}-open-{i}"},
            "POST",
            bodies[i % len(bodies)],
        )
        for i in range(count)
    ]
    wrk_requests = [
        WrkRequest(
            f"{API}/orders",
            "POST",
            {**headers[i % len(headers)], **json_type, "Idempotency-Key": UNIQUE},
            bodies[i % len(bodies)].decode(),
        )
        for i in range(len(bodies))
    ]
    return HttpScenario(
        "orders", "POST /orders (reserve stock, Idempotency-Key)", requests, wrk_requests, ok_statuses=(201,)
    )
