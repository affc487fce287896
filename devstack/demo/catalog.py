"""A deterministic, realistic demo catalog, bulk-loaded with COPY.

Vendors with their owners, brands, products in every leaf category with titles and
descriptions built from their attributes, variants with realistic size runs and stock, size
charts from standard size tables, and generated product photos (garment silhouettes in
colours and patterns) with thumbnails. Each photo's embedding job goes into the outbox, so a
running stack's inference worker picks them up. The same seed always produces the same catalog.

    python -m devstack.demo.catalog --products 100000     (just seed --products 100000)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec
import uuid_utils.compat as uuid_compat
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from core.adapters.passwords import hash_password_sync
from core.adapters.storage import MediaStorage, build_storage
from core.logging import configure_logging, get_logger
from core.rules.fit import fit_profile_key, fit_row_vector
from core.settings import Settings, get_settings
from core.task_names import EMBED_IMAGE
from db import migrate
from db.engine import create_database
from db.models import FitProfile, Product
from db.services.catalog.listing_refresh import refresh_listing
from db.services.catalog.taxonomy import CategoryNode, load_category_tree
from db.services.catalog.text import slugify
from devstack.demo import pictures
from devstack.demo.size_tables import ONE_SIZE, SHOE_SIZES, chart_for
from devstack.services import EmbeddedPostgres

log = get_logger(__name__)

BRANDS = [
    "Lagos Loom", "Adire House", "Kente & Co", "Ife Atelier", "Orisun", "Eko Threads", "Sahel Linen", "Zuri",
    "Nkem Studio", "Abuja Tailoring", "Calabar Coast", "Jos Highlands", "Kano Indigo", "Enugu Denim",
    "Ibadan Weave", "Oyo Silk", "Delta Dye", "Benin Bronze Wear", "Ayo & Ada", "Tobi Tailors",
]  # fmt: skip
NOUNS: dict[str, list[str]] = {
    "t-shirts": ["T-Shirt", "Crew Tee", "V-Neck Tee"],
    "shirts-and-blouses": ["Blouse", "Shirt", "Wrap Blouse"],
    "shirts": ["Shirt", "Oxford Shirt", "Camp-Collar Shirt"],
    "knitwear": ["Jumper", "Cardigan", "Knit Top"],
    "polos": ["Polo Shirt"],
    "maxi-dresses": ["Maxi Dress"],
    "midi-dresses": ["Midi Dress", "Wrap Dress"],
    "mini-dresses": ["Mini Dress", "Shift Dress"],
    "jeans": ["Straight Jeans", "Skinny Jeans", "Wide-Leg Jeans"],
    "trousers": ["Trousers", "Chinos", "Wide-Leg Trousers"],
    "skirts": ["A-Line Skirt", "Pleated Skirt", "Pencil Skirt"],
    "shorts": ["Shorts", "Bermuda Shorts"],
    "jackets": ["Jacket", "Denim Jacket", "Bomber Jacket"],
    "coats": ["Coat", "Trench Coat"],
    "ankara": ["Ankara Dress", "Ankara Jumpsuit"],
    "kaftans": ["Kaftan"],
    "iro-and-buba": ["Iro and Buba Set"],
    "agbada": ["Agbada Set"],
    "senator-wear": ["Senator Suit"],
    "shoes": ["Sneakers", "Loafers", "Sandals", "Heeled Mules"],
    "bags-and-accessories": ["Tote Bag", "Clutch", "Shoulder Bag"],
    "accessories": ["Tote Bag", "Belt Bag", "Messenger Bag"],
}
MATERIALS: dict[str, list[str]] = {
    "tops": ["cotton", "linen", "silk", "jersey", "chiffon"],
    "bottoms": ["denim", "cotton twill", "linen", "wool blend"],
    "dresses": ["cotton", "silk", "chiffon", "wax-print cotton"],
    "outerwear": ["wool", "denim", "leather", "cotton canvas"],
    "shoes": ["leather", "suede", "canvas"],
    "accessories": ["leather", "woven raffia", "canvas"],
}
PRICE_NAIRA: dict[str, tuple[int, int]] = {
    "tops": (8_000, 35_000),
    "bottoms": (10_000, 60_000),
    "dresses": (15_000, 90_000),
    "outerwear": (25_000, 150_000),
    "shoes": (15_000, 120_000),
    "accessories": (5_000, 50_000),
}
PATTERN_WORDS = {
    "solid": "",
    "stripes": "Striped",
    "checks": "Checked",
    "dots": "Polka-Dot",
    "florals": "Floral",
}
PATTERN_SENTENCES = {
    "solid": "A clean, solid colour that pairs with anything.",
    "stripes": "Classic stripes for an easy, put-together look.",
    "checks": "A bold check that works from office to weekend.",
    "dots": "Playful polka dots with a timeless feel.",
    "florals": "A hand-drawn floral print in rich tones.",
}
VENDOR_WORDS = ["Boutique", "Atelier", "Closet", "Collective", "Studio", "House", "Wardrobe", "Market"]
VENDOR_NAMES = ["Bukky", "Chidi", "Amaka", "Tunde", "Zainab", "Kemi", "Ifeanyi", "Halima", "Seun", "Ngozi",
                "Yemi", "Efe", "Musa", "Adaeze", "Femi", "Hauwa", "Obinna", "Funke", "Kelechi", "Aisha"]  # fmt: skip
DEV_DATABASE = "fashionistar"
DEMO_VENDOR_PASSWORD = "fashionistar-demo-2026"  # noqa: S105  # published demo credential, dev only


@dataclass
class Leaf:
    node: CategoryNode
    garment: str
    department: str
    noun_key: str


def _leaves(roots: list[CategoryNode]) -> list[Leaf]:
    out: list[Leaf] = []

    def walk(node: CategoryNode, department: str, garment: str | None) -> None:
        kind = node.garment or garment
        if not node.children:
            if kind:
                key = (
                    node.slug.removeprefix(f"{department}-").split("-", 1)[-1]
                    if "-" in node.slug
                    else node.slug
                )
                key = next((k for k in NOUNS if node.slug.endswith(k)), key)
                out.append(Leaf(node=node, garment=kind, department=department, noun_key=key))
            return
        for child in node.children:
            walk(child, department, kind)

    for root in roots:
        walk(root, root.slug, None)
    return out


class Rows:
    def __init__(self) -> None:
        self.users: list[tuple[Any, ...]] = []
        self.vendors: list[tuple[Any, ...]] = []
        self.brands: list[tuple[Any, ...]] = []
        self.products: list[tuple[Any, ...]] = []
        self.variants: list[tuple[Any, ...]] = []
        self.charts: list[tuple[Any, ...]] = []
        self.images: list[tuple[Any, ...]] = []
        # One embedding job per photo, through the outbox: the sweeper hands them to the worker.
        self.jobs: list[tuple[Any, ...]] = []
        self.pictures: list[tuple[UUID, UUID, str, str, int]] = []
        self.fit_profiles: dict[str, tuple[Any, ...]] = {}

    def fit_profile(self, ranges: dict[str, list[float]], garment: str, now: datetime) -> UUID:
        """The id of the fit profile of a chart row, added the first time it is seen."""
        key = fit_profile_key(ranges, garment)
        if key not in self.fit_profiles:
            vector = json.dumps(fit_row_vector(ranges, garment))
            self.fit_profiles[key] = (uuid_compat.uuid7(), key, garment, json.dumps(ranges), vector, now, now)
        profile_id: UUID = self.fit_profiles[key][0]
        return profile_id


def plan_catalog(leaves: list[Leaf], *, products: int, seed: int, pictures_for: int, currency: str) -> Rows:
    """Every row of the demo catalog (nothing is written here)."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    rows = Rows()
    password_hash = hash_password_sync(DEMO_VENDOR_PASSWORD)
    vendor_count = max(5, min(400, products // 60))
    vendor_ids = []
    for n in range(vendor_count):
        owner_id, vendor_id = uuid_compat.uuid7(), uuid_compat.uuid7()
        first = VENDOR_NAMES[n % len(VENDOR_NAMES)]
        name = f"{first}'s {VENDOR_WORDS[(n // len(VENDOR_NAMES)) % len(VENDOR_WORDS)]} {n + 1}"
        rows.users.append((owner_id, f"vendor{n + 1:03d}@demo.fashionistar.dev", password_hash, f"{first} Vendor",
                           None, "vendor", True, now, now, now))  # fmt: skip
        rows.vendors.append((vendor_id, owner_id, name, slugify(name), f"{name}: curated Nigerian fashion.",
                             "active", now, now))  # fmt: skip
        vendor_ids.append(vendor_id)
    brand_ids = []
    for name in BRANDS:
        brand_id = uuid_compat.uuid7()
        rows.brands.append((brand_id, name, slugify(name), now, now))
        brand_ids.append(brand_id)
    colour_names = list(pictures.COLOURS)
    for index in range(products):
        leaf = leaves[index % len(leaves)] if index < len(leaves) else rng.choice(leaves)
        product_id = uuid_compat.uuid7()
        vendor_id = vendor_ids[rng.randrange(vendor_count)]
        brand_index = rng.randrange(len(BRANDS))
        pattern = rng.choice(pictures.PATTERNS)
        colour = rng.choice(colour_names)
        material = rng.choice(MATERIALS[leaf.garment])
        noun = rng.choice(NOUNS.get(leaf.noun_key, [leaf.node.name.rstrip("s")]))
        words = [
            PATTERN_WORDS[pattern],
            colour.capitalize(),
            material.title(),
            noun,
        ]
        title = " ".join(w for w in words if w)
        low, high = PRICE_NAIRA[leaf.garment]
        price = rng.randrange(low, high, 500) * 100
        status = "active" if rng.random() < 0.95 else rng.choice(["draft", "archived"])
        description = (
            f"{title} in {material} by {BRANDS[brand_index]}. {PATTERN_SENTENCES[pattern]} "
            f"{'Relaxed fit, true to size.' if rng.random() < 0.5 else 'Tailored fit; size up for room.'}"
        )
        chart = chart_for(leaf.garment, leaf.department)
        size_run = list(chart) if chart else (SHOE_SIZES if leaf.garment == "shoes" else ONE_SIZE)
        start = rng.randrange(0, max(1, len(size_run) - 2))
        sizes = size_run[start : start + rng.randint(3, 6)] if len(size_run) > 1 else size_run
        colours = [colour] + ([rng.choice(colour_names)] if rng.random() < 0.3 else [])
        attributes = {"material": material, "pattern": pattern, "colour": colour}
        picture_id = uuid_compat.uuid7() if index < pictures_for else None
        thumbnail = f"products/{product_id}/{picture_id}/small.webp" if picture_id else None
        rows.products.append((product_id, vendor_id, leaf.node.id, brand_ids[brand_index], title,
                              f"{slugify(title, max_length=200)}-{product_id.hex[-8:]}", description, status,
                              currency, price, json.dumps(attributes), price, False, [], [], False,
                              thumbnail, 0, 0, now, now))  # fmt: skip
        for c_index, variant_colour in enumerate(dict.fromkeys(colours)):
            for size in sizes:
                stock = 0 if rng.random() < 0.15 else rng.randint(1, 30)
                override = round(price * 1.05) if size in ("XXL", "40") and rng.random() < 0.5 else None
                rows.variants.append((uuid_compat.uuid7(), product_id, f"D{index:06d}-{c_index}-{slugify(size).upper()}",
                                      size, variant_colour, override, stock, now, now))  # fmt: skip
        if chart:
            for position, size in enumerate(chart):
                ranges = {k: [float(v[0]), float(v[1])] for k, v in chart[size].items()}
                profile = rows.fit_profile(ranges, leaf.garment, now)
                rows.charts.append(
                    (
                        uuid_compat.uuid7(),
                        product_id,
                        size,
                        position,
                        json.dumps(ranges),
                        profile,
                        leaf.node.id,
                        now,
                        now,
                    )
                )
        if picture_id is not None:
            rows.pictures.append(
                (
                    product_id,
                    picture_id,
                    leaf.garment,
                    f"{colour}|{pattern}",
                    seed * 1_000_003 + index,
                )
            )
    return rows


_COLUMNS = {
    "users": ["id", "email", "password_hash", "full_name", "phone", "role", "is_verified", "verified_at",
              "created_at", "updated_at"],
    "vendors": ["id", "owner_id", "name", "slug", "description", "status", "created_at", "updated_at"],
    "brands": ["id", "name", "slug", "created_at", "updated_at"],
    "products": ["id", "vendor_id", "category_id", "brand_id", "title", "slug", "description", "status", "currency",
                 "price_amount", "attributes", "min_price", "in_stock", "sizes", "colors", "is_listed",
                 "thumbnail_key", "rating_count", "rating_sum", "created_at", "updated_at"],
    "variants": ["id", "product_id", "sku", "size", "color", "price_amount", "stock", "created_at", "updated_at"],
    "fit_profiles": ["id", "key", "garment", "ranges", "fit_vector", "created_at", "updated_at"],
    "size_chart_rows": ["id", "product_id", "size", "position", "ranges", "fit_profile_id", "category_id",
                        "created_at", "updated_at"],
    "product_images": ["id", "product_id", "position", "original_key", "content_type", "width", "height",
                       "byte_size", "status", "thumbnails", "embedding_status", "error", "created_at", "updated_at"],
    "outbox_messages": ["id", "job_id", "task_name", "args", "kwargs", "labels", "attempts", "created_at",
                        "updated_at"],
}  # fmt: skip


async def _reuse_fit_profiles(session: AsyncSession, rows: Rows) -> None:
    """Chart rows whose fit profile is already stored point at it (profiles outlive products)."""
    keys = list(rows.fit_profiles)
    stored = dict(
        (await session.execute(select(FitProfile.key, FitProfile.id).where(FitProfile.key.in_(keys)))).all()
    )
    if not stored:
        return
    remap = {rows.fit_profiles.pop(key)[0]: profile_id for key, profile_id in stored.items()}
    rows.charts = [(*row[:5], remap.get(row[5], row[5]), *row[6:]) for row in rows.charts]


# pgvector columns, given as text ('[1,2,3]'): binary COPY has no codec for them, so these
# tables are copied into a staging table with text columns and cast on the way in.
_VECTOR_COLUMNS = {"fit_profiles": {"fit_vector"}}


async def _copy(session: AsyncSession, table: str, records: list[tuple[Any, ...]]) -> None:
    if not records:
        return
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    columns = _COLUMNS[table]
    vectors = _VECTOR_COLUMNS.get(table)
    if not vectors:
        await driver.copy_records_to_table(table, records=records, columns=columns)
        return
    stage = f"{table}_stage"
    await session.execute(text(f"CREATE TEMP TABLE {stage} (LIKE {table}) ON COMMIT DROP"))
    for column in vectors:
        await session.execute(text(f"ALTER TABLE {stage} ALTER COLUMN {column} TYPE text"))
    await driver.copy_records_to_table(stage, records=records, columns=columns)
    listed = ", ".join(columns)
    casts = ", ".join(f"{c}::vector" if c in vectors else c for c in columns)
    await session.execute(text(f"INSERT INTO {table} ({listed}) SELECT {casts} FROM {stage}"))  # noqa: S608


def _render(job: tuple[UUID, UUID, str, str, int]) -> tuple[UUID, UUID, bytes, bytes, bytes]:
    product_id, image_id, garment, look, picture_seed = job
    colour, pattern = look.split("|")
    picture = pictures.product_picture(garment, colour, pattern, picture_seed)
    return (
        product_id,
        image_id,
        pictures.encode(picture, "JPEG", quality=88),
        pictures.encode(picture, "WEBP", max_side=320, quality=80),
        pictures.encode(picture, "WEBP", max_side=800, quality=82),
    )


async def _write_pictures(storage: MediaStorage, rows: Rows) -> None:
    now = datetime.now(UTC)
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=2) as pool:
        for batch_start in range(0, len(rows.pictures), 64):
            batch = rows.pictures[batch_start : batch_start + 64]
            rendered = await asyncio.gather(*(loop.run_in_executor(pool, _render, job) for job in batch))
            for product_id, image_id, original, small, medium in rendered:
                folder = f"products/{product_id}/{image_id}"
                await storage.put(f"{folder}/original.jpg", original, "image/jpeg")
                await storage.put(f"{folder}/small.webp", small, "image/webp")
                await storage.put(f"{folder}/medium.webp", medium, "image/webp")
                keys = {"small": f"{folder}/small.webp", "medium": f"{folder}/medium.webp"}
                rows.images.append((image_id, product_id, 0, f"{folder}/original.jpg", "image/jpeg",
                                    pictures.SIZE, pictures.SIZE, len(original), "ready", json.dumps(keys),
                                    "pending", None, now, now))  # fmt: skip
                rows.jobs.append((uuid_compat.uuid7(), uuid_compat.uuid7(), EMBED_IMAGE,
                                  json.dumps([str(image_id)]), "{}", "{}", 0, now, now))  # fmt: skip


async def seed_catalog(
    settings: Settings,
    *,
    products: int,
    seed: int = 7,
    pictures_for: int | None = None,
    only_if_empty: bool = True,
) -> int:
    """Write the demo catalog; returns how many products were written (0 when the catalog
    already had products and ``only_if_empty``).

    Raises:
        RuntimeError: called with production settings.
    """
    if settings.is_production:
        raise RuntimeError("demo data is never written to a production database")
    database = create_database(settings, "cli")
    storage = build_storage(settings)
    started = time.perf_counter()
    try:
        async with database.session_maker() as session:
            if only_if_empty and await session.scalar(select(func.count()).select_from(Product)):
                return 0
            tree = await load_category_tree(session)
        leaves = _leaves(tree.roots)
        wanted_pictures = products if pictures_for is None else min(pictures_for, products)
        rows = plan_catalog(
            leaves, products=products, seed=seed, pictures_for=wanted_pictures, currency=settings.currency
        )
        await _write_pictures(storage, rows)
        async with database.session_maker() as session, session.begin():
            # Bulk loading a benchmark catalog takes longer than any request may.
            await session.execute(text("SET LOCAL statement_timeout = 0"))
            await _reuse_fit_profiles(session, rows)
            for table, records in (
                ("users", rows.users),
                ("vendors", rows.vendors),
                ("brands", rows.brands),
                ("products", rows.products),
                ("variants", rows.variants),
                ("fit_profiles", list(rows.fit_profiles.values())),
                ("size_chart_rows", rows.charts),
                ("product_images", rows.images),
                ("outbox_messages", rows.jobs),
            ):
                await _copy(session, table, records)
            await refresh_listing(session, vendor_ids=[v[0] for v in rows.vendors])
        async with database.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            for table in (
                "products",
                "variants",
                "fit_profiles",
                "size_chart_rows",
                "product_images",
                "users",
                "vendors",
                "brands",
            ):
                await conn.execute(text(f"ANALYZE {table}"))
        log.info(
            "demo catalog written",
            products=products,
            variants=len(rows.variants),
            pictures=len(rows.images),
            seconds=round(time.perf_counter() - started, 1),
        )
        return products
    finally:
        await database.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write the deterministic demo catalog.")
    parser.add_argument("--products", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--pictures", type=int, default=None, help="products that get a photo (default: all, at most 2000)"
    )
    args = parser.parse_args(argv)
    settings = get_settings()
    configure_logging(level=settings.log_level, fmt=settings.log_format, process="seed")
    pictures_for = args.pictures if args.pictures is not None else min(args.products, 2000)
    embedded: EmbeddedPostgres | None = None
    if not settings.database_url:
        # The dev stack's embedded database (started here if `up` is not running).
        embedded = EmbeddedPostgres(settings.data_dir / "pg")
        was_running = (embedded.pgdata / "postmaster.pid").exists()
        embedded.start()
        embedded.ensure_database(DEV_DATABASE)
        settings = msgspec.structs.replace(settings, database_url=embedded.url(DEV_DATABASE))
        migrate.upgrade(settings)
    try:
        written = asyncio.run(
            seed_catalog(
                settings,
                products=args.products,
                seed=args.seed,
                pictures_for=pictures_for,
                only_if_empty=True,
            )
        )
    finally:
        if embedded is not None and not was_running:
            embedded.stop()
    print(
        f"demo catalog: {written} products written"
        if written
        else "the catalog already has products; the demo catalog is only written into an empty one"
    )


if __name__ == "__main__":
    main()
