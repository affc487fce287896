"""Catalog background work: thumbnails of uploaded product images (queue ``critical``)."""

from __future__ import annotations

from uuid import UUID

from db.services.catalog.images import process_image
from tasks.runtime.broker import queue_task
from tasks.runtime.resources import Resources


@queue_task("critical", "catalog.process_image")
async def process_image_task(image_id: str, resources: Resources) -> str:
    async with resources.uow() as session:
        return await process_image(session, resources.storage, UUID(image_id))
