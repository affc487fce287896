"""Products that fit me on the pool's connection: the statements one request sends, the
transaction's settings (made by the first statement, gone after it), and the HNSW path."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession

from core.rules.fit import fit_profile_key, fit_query_vector, fit_row_vector
from db.engine import Database
from db.models import FitProfile
from db.services.fit.search import BODY_SQL, EF_SEARCH, NEAREST_SQL, PROFILE_CANDIDATES, WALK_SQL
from tests.support.catalog import make_store
from tests.support.http import serve
from tests.support.identity import bearer, login, make_user
from tests.test_fit import API, BODY, charted_product, profile

pytestmark = pytest.mark.anyio


@contextmanager
def _statements(database: Database) -> Iterator[list[str]]:
    """Every statement the database's pool connections send while inside (asyncpg's query log:
    one entry per round trip that runs SQL)."""
    seen: list[str] = []
    drivers: list[asyncpg.Connection] = []

    def log(query: Any) -> None:
        seen.append(query.query)

    def checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        driver = dbapi_connection.driver_connection
        if driver not in drivers:
            drivers.append(driver)
            driver.add_query_logger(log)

    event.listen(database.engine.sync_engine, "checkout", checkout)
    try:
        yield seen
    finally:
        event.remove(database.engine.sync_engine, "checkout", checkout)
        for driver in drivers:
            driver.remove_query_logger(log)


async def test_a_page_is_three_statements_in_one_read_only_transaction(
    committed_db: Database, api_database: Database, make_app: Callable[..., Litestar]
) -> None:
    async with committed_db.session_maker() as session:
        store = await make_store(session)
        first = await charted_product(session, store, title="Standard tee")
        second = await charted_product(session, store, title="Another tee")
        user = await make_user(session)
        await profile(session, user)
        nobody = await make_user(session)
    async with serve(make_app(database=api_database)) as client:
        auth = bearer(await login(client, user.email))
        assert (await client.get(f"{API}/fit/products", headers=auth)).status_code == 200  # warm
        with _statements(api_database) as seen:
            page = await client.get(f"{API}/fit/products", headers=auth, params={"limit": 1})
        assert page.status_code == 200, page.text
        assert page.json()["items"][0]["product"]["id"] in {str(first), str(second)}
        assert page.json()["next_cursor"]
        search = seen[seen.index(BODY_SQL) - 1 :]
        assert search == ["BEGIN READ ONLY;", BODY_SQL, NEAREST_SQL[True], WALK_SQL[False], "COMMIT;"]

        # The settings were the transaction's: the pool's connections are back to the defaults.
        async with api_database.engine.connect() as conn:
            settings = await conn.execute(text("SELECT current_setting('enable_bitmapscan')"))
            assert settings.scalar_one() == "on"

        # No measurement: the first statement answers it, and the transaction ends.
        other = bearer(await login(client, nobody.email))
        with _statements(api_database) as seen:
            refused = await client.get(f"{API}/fit/products", headers=other)
        assert refused.status_code == 409, refused.text
        assert seen[seen.index(BODY_SQL) - 1 :] == ["BEGIN READ ONLY;", BODY_SQL, "COMMIT;"]


async def test_the_hnsw_path_keeps_the_index_and_asks_for_every_candidate(session: AsyncSession) -> None:
    # More profiles than pgvector's default ef_search (40): an HNSW scan returns at most
    # ef_search rows, so more than 40 come back only when the first statement set it (not every
    # one of them: the graph of near-identical vectors is approximate).
    spread = random.Random(19)
    for _ in range(150):
        chest, waist, hips = spread.uniform(70, 130), spread.uniform(50, 110), spread.uniform(80, 140)
        ranges = {"chest_cm": [chest, chest + 4], "waist_cm": [waist, waist + 4], "hips_cm": [hips, hips + 4]}
        session.add(
            FitProfile(
                key=fit_profile_key(ranges, "top"),
                garment="top",
                ranges=ranges,
                fit_vector=fit_row_vector(ranges, "top"),
            )
        )
    await session.flush()
    user = await make_user(session)
    await profile(session, user)
    driver = (await (await session.connection()).get_raw_connection()).driver_connection
    assert driver is not None
    query = json.dumps(fit_query_vector(BODY, dict.fromkeys(BODY, 0.9)))
    await driver.execute("SET LOCAL enable_seqscan = off")  # a table this small would be scanned
    body = await driver.fetchrow(BODY_SQL, user.id, EF_SEARCH)
    assert body["measurement_id"] is not None
    assert await driver.fetchval("SELECT current_setting('hnsw.ef_search')") == str(PROFILE_CANDIDATES)
    assert await driver.fetchval("SELECT current_setting('enable_bitmapscan')") == "off"
    plan = "\n".join(
        r[0] for r in await driver.fetch("EXPLAIN " + NEAREST_SQL[False], query, PROFILE_CANDIDATES)
    )
    assert "ix_fit_profiles_fit_hnsw" in plan
    assert len(await driver.fetch(NEAREST_SQL[False], query, PROFILE_CANDIDATES)) > 40
    # Without the first statement's setting, the same scan stops at the default's 40.
    await driver.execute("SET LOCAL hnsw.ef_search = DEFAULT")
    assert len(await driver.fetch(NEAREST_SQL[False], query, PROFILE_CANDIDATES)) <= 40
