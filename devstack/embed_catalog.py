"""Backfill embeddings for every product image still pending (``just embed-catalog``).

Runs the model in this process (no worker needed), reads originals from media storage, writes
vectors in batches, and reports images per second and this process's memory.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from uuid import UUID

import anyio
import numpy as np
from sqlalchemy import func, select

from core.adapters.images import register_heic_decoder
from core.adapters.storage import MediaStorage, ObjectNotFound, build_storage
from core.logging import configure_logging, get_logger
from core.settings import get_settings
from db.engine import Database, create_database
from db.models import ProductImage
from db.services.catalog.embeddings import fail_embedding, pending_image_ids, store_embedding
from devstack.progress import progress
from inference.manifest import all_manifests
from inference.product_embedding import ProductEmbedder, UnreadableImage, preprocess

log = get_logger(__name__)


@dataclass
class _Backfill:
    """One backfill's machinery and counts."""

    database: Database
    storage: MediaStorage
    embedder: ProductEmbedder
    model_name: str
    decoders: ThreadPoolExecutor
    done: int = 0
    failed: int = 0

    async def embed(self, ids: list[UUID]) -> None:
        """Embed one batch of pending images in one transaction (rows another backfill or a worker
        holds are skipped); an image whose file is gone or unreadable is marked failed."""
        loop = asyncio.get_running_loop()
        async with self.database.session_maker() as session, session.begin():
            rows = list(
                await session.scalars(
                    select(ProductImage).where(ProductImage.id.in_(ids)).with_for_update(skip_locked=True)
                )
            )
            originals = await asyncio.gather(
                *(self.storage.get(r.original_key) for r in rows), return_exceptions=True
            )
            pixels, ready = [], []
            for row, data in zip(rows, originals, strict=True):
                if isinstance(data, BaseException):
                    if not isinstance(data, ObjectNotFound):
                        raise data
                    fail_embedding(row, f"ObjectNotFound: {data}")
                    self.failed += 1
                    continue
                try:
                    pixels.append(await loop.run_in_executor(self.decoders, preprocess, data))
                    ready.append(row)
                except UnreadableImage as exc:
                    fail_embedding(row, f"UnreadableImage: {exc}")
                    self.failed += 1
            if pixels:
                vectors = await anyio.to_thread.run_sync(self.embedder.embed_pixels, np.stack(pixels))
                for row, vector in zip(ready, vectors, strict=True):
                    store_embedding(row, vector.tolist(), self.model_name)
                self.done += len(ready)


async def _pending_count(database: Database) -> int:
    async with database.session_maker() as session:
        count = await session.scalar(
            select(func.count()).select_from(ProductImage).where(ProductImage.embedding_status == "pending")
        )
    return int(count or 0)


async def backfill(*, batch_size: int, threads: int, limit: int | None) -> dict[str, float]:
    register_heic_decoder()  # originals may be HEIC photos from phones
    settings = get_settings()
    database = create_database(settings, "cli")
    manifest = all_manifests()["product_embedding"]
    started = time.perf_counter()
    after: UUID | None = None
    try:
        total = await _pending_count(database)
        total = total if limit is None else min(total, limit)
        with (
            ThreadPoolExecutor(max_workers=2) as decoders,
            progress(f"embedding {total:,} images", total) as bar,
        ):
            work = _Backfill(
                database,
                build_storage(settings),
                ProductEmbedder(manifest, intra_op_threads=threads, max_batch=batch_size),
                f"{manifest.name}@{manifest.version}",
                decoders,
            )
            while limit is None or work.done + work.failed < limit:
                async with database.session_maker() as session:
                    ids = await pending_image_ids(session, after=after, limit=batch_size)
                if not ids:
                    break
                after = ids[-1]
                before = work.done + work.failed
                await work.embed(ids)
                bar.advance(work.done + work.failed - before)
    finally:
        await database.dispose()
    seconds = time.perf_counter() - started
    return {
        "embedded": work.done,
        "failed": work.failed,
        "seconds": round(seconds, 2),
        "images_per_second": round(work.done / seconds, 1) if seconds else 0.0,
        # Peak RSS of this process (Linux reports ru_maxrss in KiB).
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args(argv)
    settings = get_settings()
    configure_logging(level=settings.log_level, fmt=settings.log_format, process="backfill")
    report = asyncio.run(backfill(batch_size=args.batch, threads=args.threads, limit=args.limit))
    print(
        f"embedded {report['embedded']} images ({report['failed']} failed) in {report['seconds']} s: "
        f"{report['images_per_second']} images/s; peak RSS {report['peak_rss_mb']} MB"
    )


if __name__ == "__main__":
    main()
