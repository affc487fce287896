"""A deterministic, realistic demo catalog, bulk-loaded with COPY.

Vendors with their owners, brands, products in every leaf category with titles and
descriptions built from their attributes, variants with realistic size runs and stock, size
charts from standard size tables (all planned by ``devstack.demo.catalog_plan``), and generated
product photos (garment silhouettes in colours and patterns) with thumbnails. Each photo's
embedding job goes into the outbox, so a running stack's inference worker picks them up. The
same seed always produces the same catalog.

    python -m devstack.demo.catalog --products 100000     (just seed --products 100000)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec
import uuid_utils.compat as uuid_compat
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from core.adapters.storage import MediaStorage, build_storage
from core.logging import configure_logging, get_logger
from core.settings import Settings, get_settings
from core.task_names import EMBED_IMAGE
from db import migrate
from db.engine import Database, create_database
from db.models import FitProfile, Product
from db.services.catalog.listing_refresh import refresh_listing
from db.services.catalog.taxonomy import load_category_tree
from devstack.demo import pictures
from devstack.demo.catalog_plan import Rows, catalog_leaves, plan_catalog
from devstack.progress import progress
from devstack.services import EmbeddedPostgres

log = get_logger(__name__)

DEV_DATABASE = "fashionistar"


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
    count = len(rows.pictures)
    with ThreadPoolExecutor(max_workers=2) as pool, progress(f"product photos ({count:,})", count) as bar:
        for batch_start in range(0, count, 64):
            batch = rows.pictures[batch_start : batch_start + 64]
            rendered = await asyncio.gather(*(loop.run_in_executor(pool, _render, job) for job in batch))
            bar.advance(len(batch))
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


async def _load(session: AsyncSession, rows: Rows) -> None:
    """Copy every planned row in, parents before children, then bring the products' listing
    columns (price, stock, sizes, colours, search text) up to date."""
    # Bulk loading a benchmark catalog takes longer than any request may.
    await session.execute(text("SET LOCAL statement_timeout = 0"))
    await _reuse_fit_profiles(session, rows)
    tables = {
        "users": rows.users,
        "vendors": rows.vendors,
        "brands": rows.brands,
        "products": rows.products,
        "variants": rows.variants,
        "fit_profiles": list(rows.fit_profiles.values()),
        "size_chart_rows": rows.charts,
        "product_images": rows.images,
        "outbox_messages": rows.jobs,
    }
    with progress("loading the catalog", len(tables) + 1) as bar:
        for table, records in tables.items():
            bar.describe(f"COPY {table} ({len(records):,} rows)")
            await _copy(session, table, records)
            bar.advance()
        bar.describe("listing columns: prices, stock, sizes, colours, search text")
        await refresh_listing(session, vendor_ids=[v[0] for v in rows.vendors])
        bar.advance()


async def _analyze(database: Database) -> None:
    """Fresh planner statistics, so the first requests after a bulk load are planned for its size."""
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
        leaves = catalog_leaves(tree.roots)
        wanted_pictures = products if pictures_for is None else min(pictures_for, products)
        with progress(f"planning {products:,} products"):
            rows = plan_catalog(
                leaves, products=products, seed=seed, pictures_for=wanted_pictures, currency=settings.currency
            )
        await _write_pictures(storage, rows)
        async with database.session_maker() as session, session.begin():
            await _load(session, rows)
        with progress("ANALYZE (planner statistics)"):
            await _analyze(database)
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
