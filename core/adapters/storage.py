"""Object storage: public media (product images) and private files (body photos).

A local directory in dev, S3-compatible in production; both go through obstore, so the code path
that runs in development and tests is the one that runs against S3. Keys are relative paths
(``products/<id>/<image>/original.jpg``). Public media have URLs (``MEDIA_BASE_URL`` + key);
private files have none: they live in a directory that is never served (``PRIVATE_MEDIA_DIR``)
or a bucket of their own (``S3_PRIVATE_BUCKET``), and only our processes read them.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import obstore
from obstore.store import LocalStore, S3Store

from core.settings import Settings


class ObjectNotFound(Exception):
    pass


class ObjectStorage:
    """Put, get and delete objects by key."""

    def __init__(self, store: Any, *, keeps_content_type: bool) -> None:
        self._store = store
        # Object stores keep a Content-Type per object; a local directory cannot (the static
        # file server derives it from the extension, which our keys always carry).
        self._keeps_content_type = keeps_content_type

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        if self._keeps_content_type:
            await obstore.put_async(self._store, key, data, attributes={"Content-Type": content_type})
        else:
            await obstore.put_async(self._store, key, data)

    async def get(self, key: str) -> bytes:
        """Raises ObjectNotFound."""
        try:
            result = await obstore.get_async(self._store, key)
            return bytes(await result.bytes_async())
        except FileNotFoundError as exc:
            raise ObjectNotFound(key) from exc

    async def delete(self, key: str) -> None:
        """Delete ``key``; deleting a missing object is not an error (as on S3)."""
        with contextlib.suppress(FileNotFoundError):
            await obstore.delete_async(self._store, key)


# How long a public media URL may be cached: its key names one upload and is never rewritten
# with other bytes (a new photo is a new image id), so for a year and without revalidation.
MEDIA_MAX_AGE_SECONDS = 31_536_000
MEDIA_CACHE_CONTROL = f"public, max-age={MEDIA_MAX_AGE_SECONDS}, immutable"


class MediaStorage(ObjectStorage):
    """Public media: every object has a URL."""

    def __init__(self, store: Any, base_url: str, *, keeps_content_type: bool) -> None:
        super().__init__(store, keeps_content_type=keeps_content_type)
        self.base_url = base_url.rstrip("/")

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        if self._keeps_content_type:
            # An object store (and the CDN in front of it) serves these headers with the object.
            attributes = {"Content-Type": content_type, "Cache-Control": MEDIA_CACHE_CONTROL}
            await obstore.put_async(self._store, key, data, attributes=attributes)
        else:
            await obstore.put_async(self._store, key, data)

    def url(self, key: str | None) -> str | None:
        return f"{self.base_url}/{key}" if key else None


def _s3_store(settings: Settings, bucket: str) -> Any:
    endpoint = settings.s3_endpoint_url
    secret = settings.s3_secret_access_key
    return S3Store(
        bucket,
        region=settings.s3_region,
        endpoint=endpoint,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=secret.reveal() if secret else None,
        # Plain HTTP only for an explicitly configured http:// endpoint (a local S3 stand-in).
        client_options={"allow_http": bool(endpoint and endpoint.startswith("http://"))},
    )


def _local_store(directory: Path, *, remove_empty_folders: bool = False) -> LocalStore:
    root = Path(directory).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return LocalStore(root, mkdir=True, automatic_cleanup=remove_empty_folders)


def build_storage(settings: Settings) -> MediaStorage:
    """The public media store."""
    if settings.media_backend == "s3":
        return MediaStorage(
            _s3_store(settings, settings.s3_bucket), settings.media_base_url, keeps_content_type=True
        )
    return MediaStorage(_local_store(settings.media_dir), settings.media_base_url, keeps_content_type=False)


def build_private_storage(settings: Settings) -> ObjectStorage:
    """The store of personal files (body photos): no URLs, never served."""
    if settings.media_backend == "s3":
        return ObjectStorage(_s3_store(settings, settings.s3_private_bucket), keeps_content_type=True)
    # Empty folders go with their last file, so deleted photos leave no trace behind.
    store = _local_store(settings.private_media_dir, remove_empty_folders=True)
    return ObjectStorage(store, keeps_content_type=False)
