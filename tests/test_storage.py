"""Media storage through both backends: a local directory and an S3-compatible server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import msgspec
import pytest
from moto.server import ThreadedMotoServer

from core.adapters.storage import MediaStorage, ObjectNotFound, build_storage
from core.secret import Secret
from core.settings import Settings
from devstack.services import free_port

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A local S3-compatible server (moto) with a bucket, standing in for the production store."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    ).create_bucket(Bucket="media")
    yield endpoint
    server.stop()


def _s3(settings: Settings, endpoint: str) -> MediaStorage:
    return build_storage(
        msgspec.structs.replace(
            settings,
            media_backend="s3",
            s3_bucket="media",
            s3_region="us-east-1",
            s3_endpoint_url=endpoint,
            s3_access_key_id="test",
            s3_secret_access_key=Secret("test"),
            media_base_url="https://media.example/",
        )
    )


@pytest.mark.parametrize("backend", ["local", "s3"])
async def test_put_get_delete(backend: str, settings: Settings, s3_endpoint: str, tmp_path: Path) -> None:
    if backend == "s3":
        storage = _s3(settings, s3_endpoint)
    else:
        storage = build_storage(
            msgspec.structs.replace(settings, media_dir=tmp_path, media_base_url="/media")
        )
    key = "products/p1/i1/original.jpg"
    await storage.put(key, b"\xff\xd8 jpeg bytes", "image/jpeg")
    assert await storage.get(key) == b"\xff\xd8 jpeg bytes"
    await storage.put(key, b"replaced", "image/jpeg")
    assert await storage.get(key) == b"replaced"
    await storage.delete(key)
    with pytest.raises(ObjectNotFound):
        await storage.get(key)
    assert storage.url(key) == (
        "https://media.example/products/p1/i1/original.jpg"
        if backend == "s3"
        else "/media/products/p1/i1/original.jpg"
    )
    assert storage.url(None) is None


async def test_s3_keeps_the_content_type(settings: Settings, s3_endpoint: str) -> None:
    storage = _s3(settings, s3_endpoint)
    await storage.put("thumbs/a.webp", b"RIFF....WEBP", "image/webp")
    head = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    ).head_object(Bucket="media", Key="thumbs/a.webp")
    assert head["ContentType"] == "image/webp"
