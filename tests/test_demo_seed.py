"""The demo catalog generator queues the embeddings of the photos it writes."""

from __future__ import annotations

import pytest

from core.settings import Settings
from db.engine import Database
from devstack.demo.catalog import seed_catalog

pytestmark = pytest.mark.anyio


async def test_demo_photos_queue_their_embeddings(committed_db: Database, settings: Settings) -> None:
    from sqlalchemy import func, select

    from core.task_names import EMBED_IMAGE
    from db.models import OutboxMessage, ProductImage

    assert await seed_catalog(settings, products=12, pictures_for=5, only_if_empty=False) == 12
    async with committed_db.session_maker() as session:
        images = set(await session.scalars(select(ProductImage.id)))
        jobs = (
            await session.scalars(select(OutboxMessage).where(OutboxMessage.task_name == EMBED_IMAGE))
        ).all()
        pending = await session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.dispatched_at.is_(None))
        )
    assert len(images) == 5
    assert {job.args[0] for job in jobs} == {str(i) for i in images}
    assert pending == 5
