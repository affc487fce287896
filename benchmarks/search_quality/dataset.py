"""The benchmark's datasets, built once into the benchmark's PostgreSQL and reused.

Two kinds, one database each, named after their parameters:

* ``similarity`` (``sim_p<products>_b<base>_c<cosine>_s<seed>``): the demo catalog with
  ``products`` products (``devstack.demo.catalog.seed_catalog``); the first ``base`` products
  get generated photos embedded by the real ONNX model, every other product one image whose
  embedding is a look-alike base photo's embedding plus Gaussian noise (``vectors``); then the
  HNSW index is built over the loaded rows.
* ``demo`` (``demo_p<products>_s<seed>``): the demo catalog with every product photographed and
  embedded by the real model.

A JSON marker (``<data dir>/datasets/<name>.json``) is written when a build has finished, with
the parameters, the build's step durations and statistics. A later run reuses the database when
the marker matches (and migrates it to the current head); ``--rebuild`` drops and rebuilds it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import text

from benchmarks.search_quality.stack import SearchStack, Timer, connect
from benchmarks.search_quality.vectors import (
    add_noise_copies,
    build_hnsw_index,
    embed_stored_photos,
    model_label,
)
from core.adapters.storage import build_storage
from core.settings import Settings
from db import migrate
from db.config import VERSION_TABLE
from db.engine import create_database
from db.services.catalog.taxonomy import CategoryTree, load_category_tree
from devstack.demo.catalog import seed_catalog
from devstack.progress import progress
from inference.manifest import all_manifests
from inference.product_embedding import ProductEmbedder

# Bump when a build would produce a different dataset from the same parameters.
BUILDER_VERSION = 1

Kind = Literal["similarity", "demo"]


@dataclass(frozen=True)
class DatasetSpec:
    kind: Kind
    products: int
    seed: int = 7
    base_photos: int = 0  # similarity: products with real photos
    noise_cosine: float = 0.9  # similarity: target cosine of a copy to its base photo
    # similarity: the noise lies in a shared random subspace of this rank (0: isotropic, all 1280)
    noise_rank: int = 16

    @property
    def name(self) -> str:
        if self.kind == "demo":
            return f"demo_p{self.products}_s{self.seed}"
        cosine = round(self.noise_cosine * 1000)
        rank = "_iso" if self.noise_rank == 0 else f"_r{self.noise_rank}"
        return f"sim_p{self.products}_b{self.base_photos}_c{cosine:03d}{rank}_s{self.seed}"

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"kind": self.kind, "products": self.products, "seed": self.seed}
        if self.kind == "similarity":
            params |= {
                "base_photos": self.base_photos,
                "noise_cosine": self.noise_cosine,
                "noise_rank": self.noise_rank,
            }
        return params

    def construction(self) -> str:
        if self.kind == "demo":
            return (
                f"The demo catalog generator (devstack.demo.catalog, seed {self.seed}) with "
                f"{self.products:,} products, every one with a generated product photo (garment "
                "silhouette of its category's kind in its colour and pattern), embedded by the real "
                "product_embedding ONNX model (in this process)."
            )
        noise = (
            "isotropic Gaussian noise (every one of the 1280 dimensions)"
            if self.noise_rank == 0
            else f"Gaussian noise confined to one random {self.noise_rank}-dimensional subspace shared "
            "by all copies (photos of a product vary along a few shared directions: pose, light, background; "
            "isotropic noise would make all copies of a base mutually equidistant, a regular simplex "
            "no photo embedding has and on which HNSW's neighbour pruning strands many nodes)"
        )
        return (
            f"The demo catalog generator (devstack.demo.catalog, seed {self.seed}) with {self.products:,} "
            f"products. The first {self.base_photos:,} get generated product photos embedded by the real "
            "product_embedding ONNX model (in this process). Every other product gets ONE image row whose "
            "embedding is NOT from a photo of its own: it is the embedding of a base photo of the same "
            "garment kind, colour and pattern (falling back to kind + colour, then kind) plus "
            f"{noise}, renormalised to unit length, sized for a cosine of about {self.noise_cosine} to the "
            "base embedding; the row reuses the base photo's stored files (original_key, thumbnails). The "
            "HNSW index (m=16, ef_construction=64, vector_cosine_ops, as the model declares it) is built "
            "after loading."
        )


@dataclass
class Dataset:
    spec: DatasetSpec
    reused: bool
    marker: dict[str, Any]
    # This run's steps (the build, or the migration check of a reused dataset).
    steps: list[dict[str, Any]] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        return {
            "database": self.spec.name,
            "params": self.spec.params(),
            "construction": self.spec.construction(),
            "reused": self.reused,
            "built_at": self.marker.get("built_at"),
            "build_steps": self.marker.get("build_steps"),
            "build_seconds": self.marker.get("build_seconds"),
            "steps_this_run": self.steps,
            "stats": self.marker.get("stats"),
            "schema_revision": self.marker.get("schema_revision"),
        }


def _database_exists(stack: SearchStack, name: str) -> bool:
    return stack.postgres.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'") == "1"  # noqa: S608  # our own name


def ensure_dataset(stack: SearchStack, spec: DatasetSpec, *, rebuild: bool) -> Dataset:
    """The dataset of ``spec``: reused when a finished build of the same parameters exists, else
    built (dropping whatever half-built database had its name)."""
    marker_path = stack.root / "datasets" / f"{spec.name}.json"
    marker: dict[str, Any] | None = None
    if marker_path.exists():
        marker = json.loads(marker_path.read_text())
    settings = stack.dataset_settings(spec.name)
    timer = Timer([])
    usable = (
        marker is not None
        and marker.get("params") == spec.params()
        and marker.get("builder_version") == BUILDER_VERSION
        and _database_exists(stack, spec.name)
    )
    if usable and not rebuild and marker is not None:
        with timer.step("migrations (reused dataset)"):
            migrate.upgrade(settings)
        marker["schema_revision"] = asyncio.run(_revision(settings))
        return Dataset(spec, reused=True, marker=marker, steps=timer.steps)

    marker_path.unlink(missing_ok=True)
    with timer.step("drop and create the database"), progress("drop and create the database"):
        stack.postgres.drop_database(spec.name)
        stack.postgres.ensure_database(spec.name)
        shutil.rmtree(stack.media_dir(spec.name), ignore_errors=True)
    with timer.step("migrations"):
        migrate.upgrade(settings)
    stats = asyncio.run(_build(settings, spec, timer))
    marker = {
        "name": spec.name,
        "params": spec.params(),
        "builder_version": BUILDER_VERSION,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "build_steps": timer.steps,
        "build_seconds": round(sum(s["seconds"] for s in timer.steps), 1),
        "stats": stats,
        "schema_revision": asyncio.run(_revision(settings)),
    }
    marker_path.parent.mkdir(parents=True, exist_ok=True)
    marker_path.write_text(json.dumps(marker, indent=2) + "\n")
    return Dataset(spec, reused=False, marker=marker, steps=timer.steps)


async def _revision(settings: Settings) -> str | None:
    database = create_database(settings, "cli")
    try:
        async with database.session_maker() as session:
            value = await session.scalar(text(f"SELECT version_num FROM {VERSION_TABLE}"))  # noqa: S608
            return None if value is None else str(value)
    finally:
        await database.dispose()


async def category_tree(settings: Settings) -> CategoryTree:
    database = create_database(settings, "cli")
    try:
        async with database.session_maker() as session:
            return await load_category_tree(session)
    finally:
        await database.dispose()


async def _build(settings: Settings, spec: DatasetSpec, timer: Timer) -> dict[str, Any]:
    photos = spec.products if spec.kind == "demo" else min(spec.base_photos, spec.products)
    with timer.step("demo catalog: products, variants, size charts, photos rendered (seed_catalog)"):
        await seed_catalog(
            settings, products=spec.products, seed=spec.seed, pictures_for=photos, only_if_empty=True
        )
    manifest = all_manifests()["product_embedding"]
    stats: dict[str, Any] = {}
    url = settings.require_database_url()
    async with connect(url) as conn:
        if spec.kind == "similarity":
            await conn.execute("DROP INDEX IF EXISTS ix_product_images_embedding_hnsw")
        with timer.step(f"embed {photos:,} photos with the real model (in process)"):
            embedder = ProductEmbedder(manifest, intra_op_threads=os.cpu_count() or 1, max_batch=16)
            stats["photos_embedded"] = await embed_stored_photos(
                conn, build_storage(settings), embedder, model_label(manifest)
            )
        if spec.kind == "similarity":
            tree = await category_tree(settings)
            with timer.step("noise copies: COPY image rows (binary vectors) and thumbnails"):
                stats |= await add_noise_copies(
                    conn,
                    tree,
                    cosine=spec.noise_cosine,
                    seed=spec.seed,
                    model=model_label(manifest),
                    noise_rank=spec.noise_rank,
                )
            step = "HNSW index build (maintenance_work_mem 2GB, parallel)"
            with timer.step(step), progress(step):
                await build_hnsw_index(conn)
        tables = ("products", "product_images", "size_chart_rows", "fit_profiles", "variants")
        with timer.step("VACUUM ANALYZE"), progress("VACUUM ANALYZE", len(tables)) as bar:
            for table in tables:
                bar.describe(f"VACUUM ANALYZE {table}")
                await conn.execute(f"VACUUM ANALYZE {table}")
                bar.advance()
        counts = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM products) AS products,"
            " (SELECT count(*) FROM products WHERE is_listed) AS listed,"
            " (SELECT count(*) FROM product_images WHERE embedding IS NOT NULL) AS embedded,"
            " (SELECT count(DISTINCT product_id) FROM size_chart_rows) AS with_size_chart,"
            " (SELECT count(*) FROM fit_profiles) AS fit_profiles,"
            " pg_size_pretty(pg_relation_size('ix_product_images_embedding_hnsw')) AS hnsw_size,"
            " pg_size_pretty(pg_table_size('product_images')) AS images_size"
        )
        stats |= dict(counts) if counts is not None else {}
    stats["embedding_model"] = model_label(manifest)
    return stats
