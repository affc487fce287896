"""A database that cannot be reached or refuses connections answers 503 with Retry-After, however
deep in the libraries' wrapping the driver's error arrives (found by the PostgreSQL restart of
``benchmarks/chaos``: these were 500s)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import msgspec
import pytest
from litestar import Litestar
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from core.settings import Settings
from db.engine import Database, create_database
from tests.support.http import problem, serve
from tests.support.identity import make_user
from tests.test_cart_orders import auth

pytestmark = pytest.mark.anyio


async def _me_through(
    make_app: Callable[..., Litestar], settings: Settings, database_url: str, token: dict[str, str]
) -> None:
    """``GET /me`` on an app whose database is ``database_url``: a 503 problem with Retry-After."""
    broken = create_database(msgspec.structs.replace(settings, database_url=database_url), "api")
    try:
        async with serve(make_app(database=broken)) as client:
            response = await client.get("/api/v1/me", headers=token)
    finally:
        await broken.dispose()
    body = problem(response, 503)
    assert response.headers["retry-after"] == "5"
    assert body["type"].endswith("service_unavailable")


async def test_a_database_whose_socket_is_gone_is_503(
    make_app: Callable[..., Litestar], settings: Settings, session: AsyncSession
) -> None:
    token = auth(settings, await make_user(session))
    url = make_url(settings.require_database_url())
    if "host" not in url.query:
        pytest.skip("the test database is not reached over a Unix socket")
    # A stopped PostgreSQL leaves no socket file: connecting fails with FileNotFoundError.
    gone = url.update_query_dict({"host": f"/tmp/no-postgres-{uuid.uuid4().hex[:8]}"})
    await _me_through(make_app, settings, gone.render_as_string(hide_password=False), token)


@pytest.fixture
async def role_without_connections(database: Database) -> AsyncIterator[str]:
    """A login role PostgreSQL refuses every connection of (53300, as when it is full)."""
    role = f"no_connections_{uuid.uuid4().hex[:8]}"
    async with database.engine.begin() as conn:
        await conn.execute(text(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 0'))
    yield role
    async with database.engine.begin() as conn:
        await conn.execute(text(f'DROP ROLE "{role}"'))


async def test_a_database_refusing_connections_is_503(
    make_app: Callable[..., Litestar],
    settings: Settings,
    session: AsyncSession,
    role_without_connections: str,
) -> None:
    token = auth(settings, await make_user(session))
    refused = make_url(settings.require_database_url()).set(username=role_without_connections, password=None)
    # SQLAlchemy wraps the driver's error in a plain DBAPIError and the user repository wraps that
    # again; only the SQLSTATE at the bottom says what happened.
    await _me_through(make_app, settings, refused.render_as_string(hide_password=False), token)
