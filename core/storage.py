"""Object storage for media (product images): a local directory in dev, S3-compatible in production.

Both go through obstore, so the code path that runs in development and tests is the one that
runs against S3. Keys are relative paths (``products/<id>/<image>/original.jpg``); public
URLs are ``MEDIA_BASE_URL`` + key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import obstore
from obstore.store import LocalStore, S3Store

from core.settings import Settings


class ObjectNotFound(Exception):
    pass


class MediaStorage:
    def __init__(self, store: Any, base_url: str, *, keeps_content_type: bool) -> None:
        self._store = store
        self.base_url = base_url.rstrip("/")
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
        await obstore.delete_async(self._store, key)

    def url(self, key: str | None) -> str | None:
        return f"{self.base_url}/{key}" if key else None


def build_storage(settings: Settings) -> MediaStorage:
    if settings.media_backend == "s3":
        endpoint = settings.s3_endpoint_url
        secret = settings.s3_secret_access_key
        store: Any = S3Store(
            settings.s3_bucket,
            region=settings.s3_region,
            endpoint=endpoint,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=secret.reveal() if secret else None,
            # Plain HTTP only for an explicitly configured http:// endpoint (a local S3 stand-in).
            client_options={"allow_http": bool(endpoint and endpoint.startswith("http://"))},
        )
        return MediaStorage(store, settings.media_base_url, keeps_content_type=True)
    root = Path(settings.media_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return MediaStorage(LocalStore(root, mkdir=True), settings.media_base_url, keeps_content_type=False)
