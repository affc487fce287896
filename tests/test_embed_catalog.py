"""``just embed-catalog``: the in-process backfill of pending product image embeddings."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from core.adapters.storage import build_storage
from core.ids import new_id
from core.settings import Settings
from db.engine import Database
from db.models import ProductImage
from devstack import embed_catalog
from devstack.demo.pictures import encode, product_picture
from tests.support.catalog import make_product, make_store

pytestmark = pytest.mark.anyio


async def test_the_backfill_embeds_pending_images_and_marks_the_unusable_ones(
    committed_db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embed_catalog, "get_settings", lambda: settings)
    storage = build_storage(settings)
    picture = product_picture("tops", "green", "stripes", 9)
    files: dict[str, bytes | None] = {
        "jpeg": encode(picture, "JPEG"),
        "heic": encode(picture, "HEIF"),  # a phone's photo
        "broken": b"\xff\xd8\xff\xe0 this JPEG was cut short",
        "missing": None,  # its file is gone
    }
    ids = {}
    async with committed_db.session_maker() as session:
        product = await make_product(session, await make_store(session))
        for name, data in files.items():
            image_id = ids[name] = new_id()
            key = f"products/{product.id}/{image_id}/original"
            if data is not None:
                await storage.put(key, data, "application/octet-stream")
            session.add(
                ProductImage(
                    id=image_id, product_id=product.id, original_key=key, content_type="image/jpeg",
                    width=512, height=512, byte_size=len(data or b""), status="ready",
                    embedding_status="pending",
                )
            )  # fmt: skip
        await session.commit()

    report = await embed_catalog.backfill(batch_size=3, threads=1, limit=None)

    assert (report["embedded"], report["failed"]) == (2, 2)
    async with committed_db.session_maker() as session:
        rows = {
            r.id: r
            for r in await session.scalars(select(ProductImage).where(ProductImage.id.in_(ids.values())))
        }
    for name in ("jpeg", "heic"):
        image = rows[ids[name]]
        assert image.embedding_status == "ready", name
        assert abs(float(np.linalg.norm(np.asarray(image.embedding))) - 1.0) < 1e-3
    assert rows[ids["broken"]].embedding_status == "failed"
    assert "UnreadableImage" in (rows[ids["broken"]].error or "")
    assert "ObjectNotFound" in (rows[ids["missing"]].error or "")
