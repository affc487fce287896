"""The product page's read path: the query runs on the driver's connection taken straight from the
engine's pool (db.engine.Database.fetch_row), so the pool's duties are checked here: connections
go back, one the server dropped is discarded and the read retried on a fresh one, and a database
that cannot be reached is a 503 with Retry-After."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import msgspec
import pytest
from litestar import Litestar

from core.settings import Settings
from db.engine import Database, create_database
from devstack.services import free_port
from tests.support.catalog import make_product, make_store
from tests.support.http import serve
from tests.support.identity import make_user
from tests.support.pool import drop_api_connections

pytestmark = pytest.mark.anyio
API = "/api/v1"


async def test_pages_go_back_to_the_pool_and_a_dropped_connection_is_replaced(
    committed_db: Database, api_database: Database, make_app: Callable[..., Litestar]
) -> None:
    async with committed_db.session_maker() as session:
        store = await make_store(session, await make_user(session, role="vendor"))
        listed = await make_product(session, store, title="Linen shirt")
        draft = await make_product(session, store, title="Draft", status="draft")
    async with serve(make_app(database=api_database)) as client:
        for _ in range(3):
            page = await client.get(f"{API}/products/{listed.id}")
            assert page.status_code == 200, page.text
            assert page.json()["title"] == "Linen shirt"
            assert page.json()["variants"][0]["stock"] == 5
        assert (await client.get(f"{API}/products/{draft.id}")).status_code == 404
        pool = api_database.engine.pool
        assert pool.checkedout() == 0  # type: ignore[attr-defined]

        # The server drops the API's idle connections (a restart, a failover, an idle timeout).
        assert await drop_api_connections(committed_db) >= 1
        for _ in range(3):
            again = await client.get(f"{API}/products/{listed.id}")
            assert again.status_code == 200, again.text
        assert pool.checkedout() == 0  # type: ignore[attr-defined]
        assert pool.checkedin() == 1  # type: ignore[attr-defined]  # the new one; the dropped one is gone


async def test_a_database_that_cannot_be_reached_is_a_503_with_retry_after(
    settings: Settings, make_app: Callable[..., Litestar]
) -> None:
    nowhere = msgspec.structs.replace(
        settings, database_url=f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nothing"
    )
    database = create_database(nowhere, "api")
    try:
        async with serve(make_app(database=database)) as client:
            page = await client.get(f"{API}/products/{uuid.uuid4()}")
    finally:
        await database.dispose()
    assert page.status_code == 503, page.text
    assert page.headers["retry-after"]
    assert page.json()["type"].endswith("/service_unavailable")
