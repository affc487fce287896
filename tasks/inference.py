"""Inference work (queue ``inference``): visual embeddings of product photos."""

from __future__ import annotations

from uuid import UUID

import anyio

from core.logging import get_logger
from core.storage import ObjectNotFound
from db.services.catalog.embeddings import fail_embedding, image_for_embedding, store_embedding
from inference.product_embedding import UnreadableImage, preprocess
from tasks.broker import queue_task
from tasks.resources import Resources

log = get_logger(__name__)


@queue_task("inference", "catalog.embed_image")
async def embed_image(image_id: str, resources: Resources) -> str:
    """Compute and store the embedding of a product image (idempotent: done once).

    An image that cannot be read is marked ``failed`` with the reason; the task itself succeeds,
    so the worker moves on and nothing is retried in vain.
    """
    models = resources.require_models()
    async with resources.uow() as session:
        image = await image_for_embedding(session, UUID(image_id))
        if image is None:
            return "nothing_to_do"
        try:
            data = await resources.storage.get(image.original_key)
            pixels = await anyio.to_thread.run_sync(preprocess, data, limiter=models.decode_limiter)
        except (ObjectNotFound, UnreadableImage) as exc:
            fail_embedding(image, f"{type(exc).__name__}: {exc}")
            log.warning("embedding failed", image_id=image_id, reason=str(exc))
            return "failed"
        vector = await models.batcher.embed(pixels)
        store_embedding(image, vector.tolist(), models.embedding_model)
    return "done"
