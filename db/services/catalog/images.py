"""Product images: checked and stored at upload, thumbnails made by a task off the request path."""

from __future__ import annotations

from uuid import UUID

import anyio
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.adapters.images import inspect_image, make_thumbnail, strip_metadata
from core.adapters.storage import MediaStorage
from core.ids import new_id
from core.jobs import defer
from core.page_versions import touch_product
from core.settings import Settings
from core.task_names import EMBED_IMAGE, PROCESS_IMAGE
from db.models import Product, ProductImage, Vendor
from db.services.catalog.errors import field_error
from db.services.catalog.products import own_product

MAX_IMAGES_PER_PRODUCT = 12
THUMBNAILS = {"small": 320, "medium": 800}


async def upload_image(
    session: AsyncSession,
    storage: MediaStorage,
    settings: Settings,
    vendor: Vendor,
    product_id: UUID,
    data: bytes,
) -> ProductImage:
    """Check the upload, store the original (re-encoded without its metadata) and queue its
    thumbnails and its embedding (``embedding_status`` is ``pending`` until the inference worker is done).

    Raises:
        ProductNotFound (404), ImageTooLarge (413), UnsupportedImage (415), UnusableImage or
        too many images (422).
    """
    product = await own_product(session, vendor, product_id, for_update=True)
    await anyio.to_thread.run_sync(
        lambda: inspect_image(
            data,
            max_bytes=settings.max_image_bytes,
            max_pixels=settings.max_image_pixels,
            min_side=settings.min_image_side,
        )
    )
    # Originals are public: a phone photo's EXIF would tell everyone where and with what it was
    # taken. Only the re-encoded pixels (orientation applied) and the colour profile are kept.
    data, info = await anyio.to_thread.run_sync(strip_metadata, data)
    count = await session.scalar(select(func.count()).where(ProductImage.product_id == product.id)) or 0
    if count >= MAX_IMAGES_PER_PRODUCT:
        raise field_error("image", f"a product has at most {MAX_IMAGES_PER_PRODUCT} images")
    image_id = new_id()
    key = f"products/{product.id}/{image_id}/original.{info.extension}"
    await storage.put(key, data, info.content_type)
    image = ProductImage(
        id=image_id,
        product_id=product.id,
        position=count,
        original_key=key,
        content_type=info.content_type,
        width=info.width,
        height=info.height,
        byte_size=len(data),
        status="processing",
        embedding_status="pending",
    )
    session.add(image)
    await session.flush()
    touch_product(product.id, listing=False)
    defer(PROCESS_IMAGE, str(image.id), durable=True)
    defer(EMBED_IMAGE, str(image.id), durable=True)
    return image


async def process_image(session: AsyncSession, storage: MediaStorage, image_id: UUID) -> str:
    """Make the thumbnails of an image (idempotent: fixed keys, done once)."""
    image = await session.get(ProductImage, image_id, with_for_update=True)
    if image is None:
        return "missing"
    if image.status == "ready":
        return "already_done"
    original = await storage.get(image.original_key)
    folder = image.original_key.rsplit("/", 1)[0]
    thumbnails: dict[str, str] = {}
    for name, side in THUMBNAILS.items():
        webp = await anyio.to_thread.run_sync(make_thumbnail, original, side)
        key = f"{folder}/{name}.webp"
        await storage.put(key, webp, "image/webp")
        thumbnails[name] = key
    image.thumbnails = thumbnails
    image.status = "ready"
    product = await session.get(Product, image.product_id, with_for_update=True)
    if product is not None and (product.thumbnail_key is None or image.position == 0):
        product.thumbnail_key = thumbnails["small"]
    await session.flush()
    touch_product(image.product_id)
    return "done"
