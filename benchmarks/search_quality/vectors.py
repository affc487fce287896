"""Image embeddings of a benchmark dataset: real ones for stored photos, noisy copies for the rest.

Vectors travel to PostgreSQL in pgvector's binary wire format (``stack.connect``), copied with
COPY into a staging table or straight into ``product_images``: writing 100k x 1280 floats as
decimal text would mean formatting and parsing ~1.3 GB of text.
"""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast
from uuid import UUID

import asyncpg
import numpy as np
import uuid_utils.compat as uuid_compat
from sqlalchemy import Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex

from core.adapters.storage import MediaStorage
from core.task_names import EMBED_IMAGE
from db.models import ProductImage
from db.models.catalog import EMBEDDING_DIMENSIONS
from db.services.catalog.taxonomy import CategoryTree
from devstack.progress import progress
from inference.manifest import Manifest
from inference.product_embedding import ProductEmbedder, preprocess

HNSW_INDEX = "ix_product_images_embedding_hnsw"
EMBED_BATCH = 64
COPY_CHUNK = 5_000
_IMAGE_COLUMNS = [
    "id", "product_id", "position", "original_key", "content_type", "width", "height", "byte_size", "status",
    "thumbnails", "embedding_status", "error", "embedding", "embedding_model", "created_at", "updated_at",
]  # fmt: skip


def model_label(manifest: Manifest) -> str:
    """What the inference worker stores in ``embedding_model``."""
    return f"{manifest.name}@{manifest.version}"


def hnsw_index_ddl() -> str:
    """CREATE INDEX of the product image HNSW index, exactly as the model declares it."""
    table = cast(Table, ProductImage.__table__)
    index = next(i for i in table.indexes if i.name == HNSW_INDEX)
    # The dialect's constructor is untyped in SQLAlchemy's annotations.
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    return str(CreateIndex(index).compile(dialect=dialect))


async def embed_stored_photos(
    conn: asyncpg.Connection, storage: MediaStorage, embedder: ProductEmbedder, model: str
) -> int:
    """Embed every stored photo without an embedding (what the inference worker's
    ``catalog.embed_image`` does, in this process) and drop their now-done outbox jobs."""
    rows = await conn.fetch("SELECT id, original_key FROM product_images WHERE embedding IS NULL ORDER BY id")
    ids: list[UUID] = []
    vectors: list[np.ndarray] = []
    with progress(f"embedding {len(rows):,} photos", len(rows)) as bar:
        for start in range(0, len(rows), EMBED_BATCH):
            batch = rows[start : start + EMBED_BATCH]
            photos = await asyncio.gather(*(storage.get(row["original_key"]) for row in batch))
            pixels = await asyncio.to_thread(_pixels, list(photos))
            vectors.extend(await asyncio.to_thread(embedder.embed_pixels, pixels))
            ids.extend(row["id"] for row in batch)
            bar.advance(len(batch))
    await conn.execute(
        f"CREATE TEMP TABLE bench_embeddings (id uuid PRIMARY KEY, embedding vector({EMBEDDING_DIMENSIONS}))"
    )
    await conn.copy_records_to_table(
        "bench_embeddings", records=list(zip(ids, vectors, strict=True)), columns=["id", "embedding"]
    )
    await conn.execute(
        "UPDATE product_images i SET embedding = s.embedding, embedding_status = 'ready', "
        "embedding_model = $1, error = NULL, updated_at = now() FROM bench_embeddings s WHERE i.id = s.id",
        model,
    )
    await conn.execute("DROP TABLE bench_embeddings")
    await conn.execute("DELETE FROM outbox_messages WHERE task_name = $1", EMBED_IMAGE)
    return len(ids)


def _pixels(photos: list[bytes]) -> np.ndarray:
    return np.stack([preprocess(photo) for photo in photos])


@dataclass(frozen=True)
class _Photo:
    product_id: UUID
    original_key: str
    byte_size: int
    thumbnails: str  # JSON
    look: tuple[str | None, str, str]  # garment kind, colour, pattern


def noise_sigma(cosine: float, dimensions: int = EMBEDDING_DIMENSIONS) -> float:
    """Standard deviation per noise dimension that leaves a unit vector at about ``cosine`` to its
    noisy, renormalised copy: |noise|² ≈ d·σ² (d: the noise's dimensions), so
    cos ≈ 1/sqrt(1 + d·σ²)."""
    return math.sqrt((1 / cosine**2 - 1) / dimensions)


def noise_basis(rank: int, rng: np.random.Generator) -> np.ndarray | None:
    """Orthonormal rows spanning the noise (None for rank 0: isotropic, every dimension)."""
    if rank == 0:
        return None
    q, _ = np.linalg.qr(rng.standard_normal((EMBEDDING_DIMENSIONS, rank)))
    basis: np.ndarray = q.T.astype(np.float32)
    return basis


def _fallbacks(look: tuple[str | None, str, str]) -> list[tuple[str | None, ...]]:
    garment, colour, pattern = look
    return [(garment, colour, pattern), (garment, colour), (garment,), ()]


def _pick_bases(
    looks: list[tuple[str | None, str, str]], bases: list[_Photo], rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, int]]:
    """For each product look, a base photo of the same garment kind, colour and pattern; failing
    that the same kind and colour, then the same kind, then any."""
    by_key: dict[tuple[str | None, ...], list[int]] = {}
    for index, base in enumerate(bases):
        for key in _fallbacks(base.look):
            by_key.setdefault(key, []).append(index)
    levels = {"garment+colour+pattern": 0, "garment+colour": 0, "garment": 0, "any": 0}
    chosen = np.empty(len(looks), dtype=np.int64)
    for i, look in enumerate(looks):
        for wanted, level in zip(_fallbacks(look), list(levels), strict=True):
            candidates = by_key.get(wanted)
            if candidates:
                chosen[i] = candidates[int(rng.integers(len(candidates)))]
                levels[level] += 1
                break
    return chosen, levels


async def add_noise_copies(
    conn: asyncpg.Connection,
    tree: CategoryTree,
    *,
    cosine: float,
    seed: int,
    model: str,
    noise_rank: int = 0,
) -> dict[str, Any]:
    """One image for every product without one: a look-alike base photo's embedding plus Gaussian
    noise, renormalised, reusing that photo's stored files; the product's thumbnail is the
    photo's too. Drops the HNSW index first (build it afterwards). Returns statistics."""
    base_rows = await conn.fetch(
        "SELECT i.product_id, i.original_key, i.byte_size, i.thumbnails::text AS thumbnails, i.embedding,"
        " p.category_id, p.attributes->>'colour' AS colour, p.attributes->>'pattern' AS pattern"
        " FROM product_images i JOIN products p ON p.id = i.product_id"
        " WHERE i.embedding IS NOT NULL ORDER BY i.id"
    )
    bases = [
        _Photo(r["product_id"], r["original_key"], r["byte_size"], r["thumbnails"],
               (tree.garment_of(r["category_id"]), r["colour"], r["pattern"]))
        for r in base_rows
    ]  # fmt: skip
    matrix = np.stack([r["embedding"] for r in base_rows]).astype(np.float32)
    targets = await conn.fetch(
        "SELECT p.id, p.category_id, p.attributes->>'colour' AS colour, p.attributes->>'pattern' AS pattern"
        " FROM products p WHERE NOT EXISTS (SELECT 1 FROM product_images i WHERE i.product_id = p.id)"
        " ORDER BY p.id"
    )
    rng = np.random.default_rng([seed, 2])
    looks = [(tree.garment_of(r["category_id"]), r["colour"], r["pattern"]) for r in targets]
    chosen, levels = _pick_bases(looks, bases, rng)
    basis = noise_basis(noise_rank, rng)
    sigma = noise_sigma(cosine, EMBEDDING_DIMENSIONS if basis is None else len(basis))
    await conn.execute(f"DROP INDEX IF EXISTS {HNSW_INDEX}")
    now = datetime.now(UTC)
    to_base: list[np.ndarray] = []
    with progress(f"look-alike image rows ({len(targets):,})", len(targets)) as bar:
        for start in range(0, len(targets), COPY_CHUNK):
            picks = chosen[start : start + COPY_CHUNK]
            if basis is None:
                noise = rng.standard_normal((len(picks), matrix.shape[1]), dtype=np.float32) * sigma
            else:
                noise = (rng.standard_normal((len(picks), len(basis)), dtype=np.float32) * sigma) @ basis
            noisy = matrix[picks] + noise
            noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
            to_base.append(np.einsum("ij,ij->i", noisy, matrix[picks]))
            records = []
            for row, pick, vector in zip(targets[start : start + COPY_CHUNK], picks, noisy, strict=True):
                base = bases[pick]
                records.append((uuid_compat.uuid7(), row["id"], 0, base.original_key, "image/jpeg", 512, 512,
                                base.byte_size, "ready", base.thumbnails, "ready", None, vector, model, now,
                                now))  # fmt: skip
            await conn.copy_records_to_table("product_images", records=records, columns=_IMAGE_COLUMNS)
            bar.advance(len(picks))
    await _copy_thumbnails(conn, [(r["id"], bases[pick]) for r, pick in zip(targets, chosen, strict=True)])
    cosines = np.concatenate(to_base) if to_base else np.zeros(0, np.float32)
    pairs = rng.integers(len(bases), size=(4000, 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    between = np.einsum("ij,ij->i", matrix[pairs[:, 0]], matrix[pairs[:, 1]])
    return {
        "copies": len(targets),
        "noise": "isotropic" if basis is None else f"in a shared random {len(basis)}-dimensional subspace",
        "noise_sigma_per_dimension": round(sigma, 6),
        "base_chosen_by": levels,
        "cosine_copy_to_base": _summary(cosines),
        "cosine_between_base_photos": _summary(between),
    }


async def _copy_thumbnails(conn: asyncpg.Connection, pairs: list[tuple[UUID, _Photo]]) -> None:
    await conn.execute("CREATE TEMP TABLE bench_thumbnails (id uuid PRIMARY KEY, thumbnail_key text)")
    records = [(product_id, json.loads(photo.thumbnails).get("small")) for product_id, photo in pairs]
    await conn.copy_records_to_table("bench_thumbnails", records=records, columns=["id", "thumbnail_key"])
    await conn.execute(
        "UPDATE products p SET thumbnail_key = t.thumbnail_key FROM bench_thumbnails t WHERE p.id = t.id"
    )
    await conn.execute("DROP TABLE bench_thumbnails")


async def build_hnsw_index(conn: asyncpg.Connection) -> None:
    """The model's HNSW index over the loaded rows, built in memory by parallel workers (the graph
    of 100k x 1280-d vectors is ~800 MB; spilling to disk would take many times longer)."""
    await conn.execute("SET maintenance_work_mem = '2GB'")
    await conn.execute("SET max_parallel_maintenance_workers = 2")
    await conn.execute(f"DROP INDEX IF EXISTS {HNSW_INDEX}")
    await conn.execute(hnsw_index_ddl())
    await conn.execute("RESET maintenance_work_mem")
    await conn.execute("RESET max_parallel_maintenance_workers")


def _summary(values: np.ndarray) -> dict[str, float | None]:
    if values.size == 0:
        return {"mean": None, "p5": None, "p95": None}
    return {
        "mean": round(float(values.mean()), 4),
        "p5": round(float(np.percentile(values, 5)), 4),
        "p95": round(float(np.percentile(values, 95)), 4),
    }
