"""Shoppers with ready body profiles and their order history, bulk-written with COPY.

Each shopper is a verified ``client`` (one Argon2 hash shared by all: hashing 10k passwords would
take minutes and measures nothing) with ONE ready measurement:

* a body drawn from ``training.body.anthropometry.sample_body`` (both sexes, correlated
  measurements), its 14 measurements, per-measurement confidences of 0.75-0.95;
* a 32-d body-shape embedding laid out as the pipeline lays it out (``inference.body_measure.
  embedding``: z-scores against the calibration's population, clipped, divided by sqrt(32)): the
  14 measurement z-scores are exact; the 18 width/depth profile levels, which only photos give,
  are the nearest girth's z-score (widths) or depth ratio's (depths) plus N(0, 0.5) noise.

Order history: each shopper has Poisson(``orders_per_user``) orders of 1-3 lines, placed over the
last 365 days, in closed statuses only (paid 10%, shipped 10%, delivered 62%, cancelled 8%,
refunded 5%, expired 5%), so no order holds a reservation (``variants.reserved`` stays 0). Each
order has one fulfilment per store of its lines, in the state its order is in (pending for a paid
order, shipped or delivered with a carrier and tracking number, cancelled for a closed one), at
the platform's default shipping method for free, as migration 0012 gave the orders it found. Products
follow a Zipf popularity (s = 1.1) over the listed products with a size chart, so popular products
have enough buyers for "shoppers like me"; the size bought is the one ``core.rules.fit.advise``
recommends for the shopper's body (else a random size of the product), in the colour of a variant
of that size. Each order has the audit events of its path (``order_events``).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import numpy as np
import uuid_utils.compat as uuid_compat

from core.adapters.passwords import hash_password_sync
from core.rules.fit import advise
from db.services.catalog.taxonomy import CategoryTree
from devstack.progress import Tracker
from inference.body_measure.calibration import CALIBRATION_PATH, MEASUREMENT_KEYS, PROFILE_LEVELS
from training.body.anthropometry import sample_body

SHOPPER_PASSWORD = "bench-suite-shopper-2026"  # noqa: S105  # benchmark-only accounts on a throwaway copy
EMAIL_DOMAIN = "bench-suite.fashionistar.dev"
STATUS_MIX = {
    "paid": 0.10,
    "shipped": 0.10,
    "delivered": 0.62,
    "cancelled": 0.08,
    "refunded": 0.05,
    "expired": 0.05,
}
# Status -> the transitions from pending_payment, with their actors (as core.rules.orders allows them).
PATHS: dict[str, list[tuple[str, str]]] = {
    "paid": [("paid", "payment")],
    "shipped": [("paid", "payment"), ("shipped", "vendor")],
    "delivered": [("paid", "payment"), ("shipped", "vendor"), ("delivered", "vendor")],
    "cancelled": [("cancelled", "buyer")],
    "refunded": [("paid", "payment"), ("refunded", "staff")],
    "expired": [("expired", "system")],
}
# The fulfilment of each status (a closed order's parts never left their stores).
FULFILMENT_STATUS = {"paid": "pending", "shipped": "shipped", "delivered": "delivered"}
# Migration 0012's snapshot of the platform's default method, for orders placed before profiles.
DEFAULT_METHOD = {"id": None, "name": "Standard delivery", "kind": "standard", "min_days": 3, "max_days": 7}
RETURN_WINDOW_DAYS = 14
ZIPF_S = 1.1
POPULAR_PRODUCTS = 5_000
ADDRESS = {"full_name": "", "line1": "1 Marina", "city": "Lagos", "country": "NG"}


def shopper_email(index: int) -> str:
    return f"shopper{index:05d}@{EMAIL_DOMAIN}"


@dataclass(frozen=True)
class ChartProduct:
    id: UUID
    vendor_id: UUID
    vendor_name: str
    title: str
    price: int
    currency: str
    garment: str | None
    chart: list[tuple[str, dict[str, list[float]]]]
    variants: list[tuple[UUID, str, str, str, int | None]]  # id, sku, size, colour, price override


def body_embedding(body: Any, population: dict[str, list[float]], rng: np.random.Generator) -> np.ndarray:
    """The 32-d body-shape vector of the module docstring, laid out as the pipeline's."""

    def z(name: str, value: float) -> float:
        mean, sd = population.get(name, [0.0, 1.0])
        return (value - mean) / (sd or 1.0)

    values = body.measurements
    girths = [
        z("chest_cm", values["chest_cm"]),
        z("waist_cm", values["waist_cm"]),
        z("hip_cm", values["hip_cm"]),
    ]
    depths = [
        (body.chest_depth_ratio - 0.72) / 0.04,
        (body.waist_depth_ratio - 0.74) / 0.03,
        (body.hip_depth_ratio - 0.76) / 0.04,
    ]
    vector = [z(key, values[key]) for key in MEASUREMENT_KEYS]
    for level in range(PROFILE_LEVELS):
        vector.append(girths[min(2, level * 3 // PROFILE_LEVELS)] + float(rng.normal(0, 0.5)))
    for level in range(PROFILE_LEVELS):
        vector.append(depths[min(2, level * 3 // PROFILE_LEVELS)] + float(rng.normal(0, 0.5)))
    clipped: np.ndarray = (np.clip(np.array(vector), -6, 6) / math.sqrt(len(vector))).astype(np.float32)
    return clipped


async def chart_products(conn: asyncpg.Connection, tree: CategoryTree, limit: int) -> list[ChartProduct]:
    """The first ``limit`` listed products with a size chart and variants (by id: uuid7, so by age)."""
    rows = await conn.fetch(
        """
        SELECT p.id, p.vendor_id, ve.name AS vendor_name, p.title, p.price_amount, p.currency, p.category_id,
               (SELECT json_agg(json_build_array(r.size, r.ranges) ORDER BY r.position)
                  FROM size_chart_rows r WHERE r.product_id = p.id)::text AS chart,
               (SELECT json_agg(json_build_array(v.id, v.sku, v.size, v.color, v.price_amount) ORDER BY v.id)
                  FROM variants v WHERE v.product_id = p.id)::text AS variants
        FROM products p JOIN vendors ve ON ve.id = p.vendor_id
        WHERE p.is_listed AND EXISTS (SELECT 1 FROM size_chart_rows r WHERE r.product_id = p.id)
          AND EXISTS (SELECT 1 FROM variants v WHERE v.product_id = p.id)
        ORDER BY p.id LIMIT $1
        """,
        limit,
    )
    out = []
    for r in rows:
        variants = [(UUID(v[0]), v[1], v[2], v[3], v[4]) for v in json.loads(r["variants"])]
        chart = [(size, ranges) for size, ranges in json.loads(r["chart"])]
        out.append(
            ChartProduct(
                r["id"],
                r["vendor_id"],
                r["vendor_name"],
                r["title"],
                r["price_amount"],
                r["currency"],
                tree.garment_of(r["category_id"]),
                chart,
                variants,
            )
        )
    return out


class PeopleRows:
    """Rows of users, measurements, orders, order_lines and order_events, ready for COPY."""

    def __init__(self) -> None:
        self.users: list[tuple[Any, ...]] = []
        self.measurements: list[tuple[Any, ...]] = []
        self.orders: list[tuple[Any, ...]] = []
        self.fulfilments: list[tuple[Any, ...]] = []
        self.lines: list[tuple[Any, ...]] = []
        self.events: list[tuple[Any, ...]] = []
        self.statuses: Counter[str] = Counter()
        self.advised_sizes = 0


def plan_people(
    users: int,
    orders_per_user: float,
    seed: int,
    products: list[ChartProduct],
    tracker: Tracker | None = None,
) -> PeopleRows:
    """Every row of the shoppers and their history (nothing is written here); ``tracker`` counts
    the shoppers done."""
    tracker = tracker or Tracker()
    population = json.loads(CALIBRATION_PATH.read_text())["population"]
    rng = np.random.default_rng([seed, 41])
    now = datetime.now(UTC)
    password_hash = hash_password_sync(SHOPPER_PASSWORD)
    weights = 1.0 / np.arange(1, len(products) + 1) ** ZIPF_S
    weights /= weights.sum()
    statuses, mix = list(STATUS_MIX), np.array(list(STATUS_MIX.values()))
    rows = PeopleRows()
    for index in range(users):
        user_id = uuid_compat.uuid7()
        name = f"Bench Shopper {index}"
        created = now - timedelta(days=400)
        rows.users.append(
            (
                user_id,
                shopper_email(index),
                password_hash,
                name,
                None,
                "client",
                True,
                created,
                created,
                created,
            )
        )
        body = sample_body(rng)
        measurements = {k: round(v, 1) for k, v in body.measurements.items()}
        confidence = {k: round(float(rng.uniform(0.75, 0.95)), 2) for k in measurements}
        rows.measurements.append(
            (
                uuid_compat.uuid7(),
                user_id,
                "ready",
                measurements["height_cm"],
                json.dumps(measurements),
                json.dumps(confidence),
                body_embedding(body, population, rng),
                "bench-suite",
                "sampled",
                1,
                created,
                created,
                created,
                created,
            )
        )
        for _ in range(int(rng.poisson(orders_per_user))):
            placed = now - timedelta(days=float(rng.uniform(1, 365)))
            status = statuses[int(rng.choice(len(statuses), p=mix))]
            _order(rows, rng, user_id, name, placed, status, products, weights, measurements, confidence)
        tracker.advance()
    return rows


def _order(
    rows: PeopleRows,
    rng: np.random.Generator,
    user_id: UUID,
    name: str,
    placed: datetime,
    status: str,
    products: list[ChartProduct],
    weights: np.ndarray,
    body: dict[str, float],
    confidence: dict[str, float],
) -> None:
    order_id = uuid_compat.uuid7()
    chosen = {int(i) for i in rng.choice(len(products), size=int(rng.integers(1, 4)), p=weights)}
    picked = []
    for i in sorted(chosen):
        product = products[i]
        size = advise(product.chart, body, confidence, product.garment).recommended_size
        fitting = [v for v in product.variants if v[2] == size]
        rows.advised_sizes += bool(fitting)
        variant = fitting[0] if fitting else product.variants[int(rng.integers(len(product.variants)))]
        picked.append((product, variant, 1 if rng.random() < 0.9 else 2))
    paid = placed + timedelta(minutes=5) if PATHS[status][0][0] == "paid" else None
    closed = None if status in ("paid", "shipped") else placed + timedelta(days=3)
    parts = {
        vendor_id: _fulfilment(rows, order_id, vendor_id, status, products[0].currency, placed, closed)
        for vendor_id in dict.fromkeys(product.vendor_id for product, _, _ in picked)
    }
    lines = []
    for product, variant, quantity in picked:
        unit = variant[4] or product.price
        lines.append(
            (
                uuid_compat.uuid7(),
                order_id,
                variant[0],
                product.id,
                product.vendor_id,
                parts[product.vendor_id],
                product.title[:200],
                product.vendor_name,
                variant[1],
                variant[2],
                variant[3],
                unit,
                quantity,
                unit * quantity,
                placed,
                placed,
            )
        )
    subtotal = sum(line[13] for line in lines)
    rows.orders.append(
        (
            order_id,
            user_id,
            status,
            products[0].currency,
            subtotal,
            0,
            subtotal,
            sum(line[12] for line in lines),
            json.dumps({**ADDRESS, "full_name": name}),
            placed + timedelta(minutes=30),
            paid,
            closed,
            placed,
            placed,
        )
    )
    rows.lines.extend(lines)
    previous, at = None, placed
    for target, actor in [("pending_payment", "buyer"), *PATHS[status]]:
        actor_id = user_id if actor == "buyer" else None
        rows.events.append(
            (uuid_compat.uuid7(), order_id, previous, target, actor, actor_id, None, None, at, at)
        )
        previous, at = target, at + timedelta(hours=1)
    rows.statuses[status] += 1


def _fulfilment(
    rows: PeopleRows,
    order_id: UUID,
    vendor_id: UUID,
    status: str,
    currency: str,
    placed: datetime,
    closed: datetime | None,
) -> UUID:
    """One store's part of a past order, in the state its order is in; its id."""
    fulfilment_id = uuid_compat.uuid7()
    state = FULFILMENT_STATUS.get(status, "cancelled")
    shipped = placed + timedelta(days=1) if state in ("shipped", "delivered") else None
    tracking = f"HIST-{fulfilment_id.hex[-12:].upper()}" if shipped is not None else None
    rows.fulfilments.append(
        (
            fulfilment_id,
            order_id,
            vendor_id,
            state,
            currency,
            json.dumps(DEFAULT_METHOD),
            0,
            RETURN_WINDOW_DAYS,
            "GIG Logistics" if shipped is not None else None,
            tracking,
            shipped,
            placed + timedelta(days=3) if state == "delivered" else None,
            closed if state == "cancelled" else None,
            placed,
            placed,
        )
    )
    return fulfilment_id


COLUMNS = {
    "users": [
        "id",
        "email",
        "password_hash",
        "full_name",
        "phone",
        "role",
        "is_verified",
        "verified_at",
        "created_at",
        "updated_at",
    ],
    "measurements": [
        "id",
        "user_id",
        "status",
        "height_cm",
        "measurements",
        "confidence",
        "embedding",
        "model_name",
        "model_version",
        "attempts",
        "started_at",
        "completed_at",
        "created_at",
        "updated_at",
    ],
    "orders": [
        "id",
        "user_id",
        "status",
        "currency",
        "subtotal_amount",
        "shipping_amount",
        "total_amount",
        "item_count",
        "shipping_address",
        "expires_at",
        "paid_at",
        "closed_at",
        "created_at",
        "updated_at",
    ],
    "fulfilments": [
        "id",
        "order_id",
        "vendor_id",
        "status",
        "currency",
        "shipping_method",
        "shipping_amount",
        "return_window_days",
        "carrier",
        "tracking_number",
        "shipped_at",
        "delivered_at",
        "cancelled_at",
        "created_at",
        "updated_at",
    ],
    "order_lines": [
        "id",
        "order_id",
        "variant_id",
        "product_id",
        "vendor_id",
        "fulfilment_id",
        "title",
        "vendor_name",
        "sku",
        "size",
        "color",
        "unit_price_amount",
        "quantity",
        "line_total_amount",
        "created_at",
        "updated_at",
    ],
    "order_events": [
        "id",
        "order_id",
        "from_status",
        "to_status",
        "actor",
        "actor_id",
        "reason",
        "request_id",
        "created_at",
        "updated_at",
    ],
}


async def write_people(
    conn: asyncpg.Connection, rows: PeopleRows, tracker: Tracker | None = None
) -> dict[str, int]:
    """COPY every row in one transaction (binary COPY: jsonb as JSON text, vectors as numpy arrays
    through the connection's pgvector codec, ``search_quality.stack.connect``); ``tracker`` counts
    the tables done."""
    tracker = tracker or Tracker()
    tables = {
        "users": rows.users,
        "measurements": rows.measurements,
        "orders": rows.orders,
        "fulfilments": rows.fulfilments,
        "order_lines": rows.lines,
        "order_events": rows.events,
    }
    async with conn.transaction():
        for table, records in tables.items():
            tracker.describe(f"COPY {table} ({len(records):,} rows)")
            await conn.copy_records_to_table(table, records=records, columns=COLUMNS[table])
            tracker.advance()
    return {table: len(records) for table, records in tables.items()}
