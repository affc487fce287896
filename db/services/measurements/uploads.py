"""Taking a measurement: both photos checked, stored privately, the worker's job queued."""

from __future__ import annotations

from functools import partial
from typing import Protocol
from uuid import UUID

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from core.adapters.images import (
    ImageInfo,
    ImageTooLarge,
    UnsupportedImage,
    UnusableImage,
    clean_extension,
    inspect_image,
    strip_metadata,
)
from core.adapters.storage import ObjectStorage
from core.ids import new_id
from core.jobs import defer
from core.settings import Settings
from core.task_names import MEASURE_BODY
from db.models import Measurement
from db.services.measurements.errors import UnusablePhoto, field_error

HEIGHT_RANGE_CM = (100.0, 230.0)
WEIGHT_RANGE_KG = (30.0, 300.0)
PHOTO_FIELDS = ("front", "side")


class PhotoFile(Protocol):
    """An uploaded photo that can be read more than once (Litestar's ``UploadFile`` is one)."""

    async def read(self, size: int = -1) -> bytes: ...

    async def seek(self, offset: int) -> int: ...


async def _read(photo: PhotoFile, limit: int) -> bytes:
    await photo.seek(0)
    return await photo.read(limit)


def _inspect(field: str, data: bytes, settings: Settings) -> ImageInfo:
    try:
        return inspect_image(
            data,
            max_bytes=settings.max_image_bytes,
            max_pixels=settings.max_image_pixels,
            min_side=settings.min_body_photo_side,
        )
    except UnusableImage as exc:
        raise UnusablePhoto(field, exc.detail) from None
    except (UnsupportedImage, ImageTooLarge) as exc:
        raise type(exc)(f"The {field} photo: {exc.detail}") from None


def _check_range(field: str, value: float | None, bounds: tuple[float, float], unit: str) -> None:
    low, high = bounds
    if value is not None and not low <= value <= high:
        raise field_error(field, f"must be between {low:g} and {high:g} {unit}")


async def _store_photos(
    storage: ObjectStorage, photos: dict[str, PhotoFile], keys: dict[str, str], limit: int
) -> None:
    """Store each photo re-encoded without its metadata; all or none (a failure deletes the rest).

    Raises:
        whatever the storage raises, after removing what was stored.
    """
    stored: list[str] = []
    try:
        for field, photo in photos.items():
            # Stored without EXIF (GPS position, camera, times) or any other metadata; the
            # orientation is applied to the pixels, so the worker sees the photo upright.
            clean, info = await anyio.to_thread.run_sync(strip_metadata, await _read(photo, limit))
            await storage.put(keys[field], clean, info.content_type)
            del clean
            stored.append(keys[field])
    except BaseException:
        # Personal data that no row points at would never be cleaned up.
        with anyio.CancelScope(shield=True):
            for key in stored:
                await storage.delete(key)
        raise


async def create_measurement(
    session: AsyncSession,
    storage: ObjectStorage,
    settings: Settings,
    user_id: UUID,
    *,
    front: PhotoFile,
    side: PhotoFile,
    height_cm: float,
    weight_kg: float | None = None,
) -> Measurement:
    """Check both photos, store them in private storage and queue the measurement
    (``pending`` until the inference worker is done).

    Each photo is read, checked and dropped in turn, then read again to be stripped of its
    metadata and stored, so at most one photo is held in memory. Nothing is stored or queued
    unless both photos pass.

    Raises:
        InvalidInput: height or weight out of range (422).
        ImageTooLarge (413), UnsupportedImage (415), UnusablePhoto (422): a photo is refused;
            the message names which one.
    """
    _check_range("height_cm", height_cm, HEIGHT_RANGE_CM, "cm")
    _check_range("weight_kg", weight_kg, WEIGHT_RANGE_KG, "kg")
    photos: dict[str, PhotoFile] = {"front": front, "side": side}
    # One byte over the limit is enough to know a photo is too large.
    limit = settings.max_image_bytes + 1
    infos: dict[str, ImageInfo] = {}
    for field, photo in photos.items():
        data = await _read(photo, limit)
        infos[field] = await anyio.to_thread.run_sync(partial(_inspect, field, data, settings))
        del data
    measurement_id = new_id()
    keys = {
        field: f"measurements/{measurement_id}/{field}.{clean_extension(infos[field])}" for field in photos
    }
    measurement = Measurement(
        id=measurement_id,
        user_id=user_id,
        status="pending",
        height_cm=height_cm,
        weight_kg=weight_kg,
        front_key=keys["front"],
        side_key=keys["side"],
        attempts=0,
    )
    session.add(measurement)
    await session.flush()
    await _store_photos(storage, photos, keys, limit)
    defer(MEASURE_BODY, str(measurement.id), durable=True)
    return measurement
