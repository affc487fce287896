"""Product image embeddings computed by a real inference worker."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from litestar import Litestar
from sqlalchemy import select

from core.adapters.storage import build_storage
from core.ids import new_id
from core.jobs import Job
from core.settings import Settings
from db.engine import Database
from db.models import ProductImage
from devstack.demo.pictures import encode, product_picture
from tasks.runtime.dispatch import BrokerDispatcher
from tests.support.catalog import make_product, make_store
from tests.support.http import serve
from tests.support.identity import bearer, login, make_user
from tests.support.stack import WorkerProcess
from tests.test_tasks_e2e import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.worker]

API = "/api/v1"


async def test_uploaded_image_gets_an_embedding(
    worker: WorkerProcess, make_app: Callable[..., Litestar], committed_db: Database
) -> None:
    async with serve(make_app(database=committed_db)) as client:
        async with committed_db.session_maker() as session:
            owner = await make_user(session, role="vendor")
            store = await make_store(session, owner)
            product = await make_product(session, store)
        auth = bearer(await login(client, owner.email))
        photo = encode(product_picture("dresses", "purple", "florals", 5), "JPEG")
        response = await client.post(
            f"{API}/vendor/products/{product.id}/images",
            headers=auth,
            files={"image": ("dress.jpg", photo, "image/jpeg")},
        )
        assert response.status_code == 202, response.text
        image_id = response.json()["id"]

        async def embedded() -> dict[str, Any] | None:
            detail = (await client.get(f"{API}/products/{product.id}")).json()
            image = detail["images"][0]
            settled = image["embedding_status"] != "pending" and image["status"] != "processing"
            return image if settled else None

        image = await eventually(embedded, within=60)
        assert image["embedding_status"] == "ready"
    async with committed_db.session_maker() as session:
        row = await session.get(ProductImage, image_id)
        assert row is not None
        vector = np.asarray(row.embedding)
        assert vector.shape == (1280,)
        assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-3
        assert row.embedding_model == "product_embedding@1.0.0"


async def test_an_unreadable_image_fails_with_a_reason_and_the_worker_keeps_going(
    worker: WorkerProcess, committed_db: Database, settings: Settings, dispatcher: BrokerDispatcher
) -> None:
    storage = build_storage(settings)
    async with committed_db.session_maker() as session:
        store = await make_store(session)
        product = await make_product(session, store)
        broken_id, good_id = new_id(), new_id()
        for image_id, data in (
            (broken_id, b"\xff\xd8\xff\xe0 this JPEG was cut short"),
            (good_id, encode(product_picture("tops", "green", "stripes", 9), "JPEG")),
        ):
            key = f"products/{product.id}/{image_id}/original.jpg"
            await storage.put(key, data, "image/jpeg")
            session.add(
                ProductImage(
                    id=image_id, product_id=product.id, original_key=key, content_type="image/jpeg",
                    width=512, height=512, byte_size=len(data), status="ready", embedding_status="pending",
                )
            )  # fmt: skip
        await session.commit()
    for image_id in (broken_id, good_id):
        await dispatcher.send(Job(task_name="inference.catalog.embed_image", args=(str(image_id),)))

    async def settled() -> bool:
        async with committed_db.session_maker() as session:
            statuses = set(
                await session.scalars(
                    select(ProductImage.embedding_status).where(ProductImage.id.in_([broken_id, good_id]))
                )
            )
        return "pending" not in statuses

    await eventually(settled, within=60)
    async with committed_db.session_maker() as session:
        broken = await session.get(ProductImage, broken_id)
        good = await session.get(ProductImage, good_id)
    assert broken is not None
    assert good is not None
    assert broken.embedding_status == "failed"
    assert broken.error
    assert "UnreadableImage" in broken.error
    assert good.embedding_status == "ready"
