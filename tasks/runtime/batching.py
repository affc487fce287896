"""Micro-batching for the embedding model: concurrent tasks share one model run.

Each task hands over its preprocessed pixels and awaits its vector; the batcher waits at most
``max_wait`` seconds for company, runs up to ``max_batch`` images at once in a worker thread
(off the event loop) and hands each task its row.
"""

from __future__ import annotations

import asyncio
import contextlib

import anyio
import numpy as np

from inference.memory import release_freed_memory
from inference.product_embedding import ProductEmbedder


class EmbeddingBatcher:
    def __init__(self, embedder: ProductEmbedder, *, max_batch: int = 16, max_wait: float = 0.01) -> None:
        self.embedder = embedder
        self.max_batch = max_batch
        self.max_wait = max_wait
        self._queue: asyncio.Queue[tuple[np.ndarray, asyncio.Future[np.ndarray]]] = asyncio.Queue()
        self._runner: asyncio.Task[None] | None = None
        self.batches = 0

    async def embed(self, pixels: np.ndarray) -> np.ndarray:
        """One (3, 224, 224) preprocessed image -> its unit vector."""
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run())
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        await self._queue.put((pixels, future))
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            deadline = asyncio.get_running_loop().time() + self.max_wait
            while len(batch) < self.max_batch:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except TimeoutError:
                    break
            pixels = np.stack([item[0] for item in batch])
            try:
                vectors = await anyio.to_thread.run_sync(self._embed, pixels)
            except Exception as exc:  # every waiting task gets the failure
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.batches += 1
            for (_, future), vector in zip(batch, vectors, strict=True):
                if not future.done():
                    future.set_result(vector)

    def _embed(self, pixels: np.ndarray) -> np.ndarray:
        try:
            return self.embedder.embed_pixels(pixels)
        finally:
            release_freed_memory()  # a batch's activations are tens of MB

    async def close(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
