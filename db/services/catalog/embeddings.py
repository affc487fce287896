"""Visual embeddings of product images: stored once the inference worker has computed them."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.page_versions import touch_product
from db.models import ProductImage


async def image_for_embedding(session: AsyncSession, image_id: UUID) -> ProductImage | None:
    """The image row, locked, when it still needs an embedding (None: missing or already done)."""
    image = await session.get(ProductImage, image_id, with_for_update=True)
    if image is None or image.embedding_status == "ready":
        return None
    return image


def store_embedding(image: ProductImage, vector: list[float], model: str) -> None:
    image.embedding = vector
    image.embedding_model = model
    image.embedding_status = "ready"
    image.error = None
    # Similar items and search by photo now rank this product.
    touch_product(image.product_id)


def fail_embedding(image: ProductImage, reason: str) -> None:
    image.embedding_status = "failed"
    image.error = reason[:2000]
    touch_product(image.product_id, listing=False)


async def pending_image_ids(session: AsyncSession, *, after: UUID | None, limit: int) -> list[UUID]:
    """Ids of images still waiting for an embedding, in id order (for backfills)."""
    stmt = select(ProductImage.id).where(ProductImage.embedding_status == "pending").order_by(ProductImage.id)
    if after is not None:
        stmt = stmt.where(ProductImage.id > after)
    return list((await session.scalars(stmt.limit(limit))).all())
