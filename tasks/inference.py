"""Inference work (queue ``inference``): visual embeddings of product photos and of the photos
shoppers search with."""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

import anyio
import msgspec

from core.adapters.storage import ObjectNotFound
from core.logging import get_logger
from core.rules.photo_search import QueryEmbedding, decode_image
from db.services.catalog.embeddings import fail_embedding, image_for_embedding, store_embedding
from inference.product_embedding import UnreadableImage, preprocess
from tasks.runtime.broker import queue_task
from tasks.runtime.resources import Resources

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


@queue_task("inference", "catalog.embed_query")
async def embed_query(image: str, deadline: float, resources: Resources) -> dict[str, Any]:
    """The unit vector of a search-by-photo image (base64), as a ``QueryEmbedding``; nothing is
    stored. It shares the embedding batches of product photos.

    A query whose ``deadline`` (epoch seconds) has passed is not computed: the API that asked
    has already given up, and under a backlog skipping it is how the worker catches up.
    """
    if time.time() > deadline:
        return _answer(QueryEmbedding(error="expired"))
    models = resources.require_models()
    try:
        data = decode_image(image)
        pixels = await anyio.to_thread.run_sync(preprocess, data, limiter=models.decode_limiter)
    except (UnreadableImage, ValueError) as exc:
        log.info("query image unreadable", reason=str(exc))
        return _answer(QueryEmbedding(error="unreadable_image", detail=str(exc)))
    vector = await models.batcher.embed(pixels)
    return _answer(QueryEmbedding(vector=vector.tolist()))


def _answer(embedding: QueryEmbedding) -> dict[str, Any]:
    # Task results travel as JSON: plain builtins, not the Struct.
    answer: dict[str, Any] = msgspec.to_builtins(embedding)
    return answer
