"""Catalog reads on a real streaming replica (DATABASE_REPLICA_URL), with read-your-writes.

The replica is a standby of the test server made by pg_basebackup (tests/support/replica.py).
Where a read was served is proven by the data itself: with the standby's replay paused, a change
committed on the primary is not on the replica, so an answer with the old value came from it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import msgspec
import pytest
from litestar import Litestar
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from core.page_versions import PageVersions, product_key
from core.settings import Settings, SettingsError, load_settings
from db.engine import Database, create_database
from db.replica import fence_key, reading_as
from tests.conftest import Services, clear_rate_limits
from tests.support.catalog import make_product, make_store
from tests.support.http import serve
from tests.support.identity import bearer, login, make_user
from tests.support.replica import StreamingReplica, streaming_replica
from tests.test_fit import charted_product, profile

pytestmark = pytest.mark.anyio
API = "/api/v1"


@pytest.fixture(scope="module")
def replica(services: Services) -> Iterator[StreamingReplica]:
    if services.pg is None:
        pytest.skip("needs the embedded PostgreSQL (DATABASE_URL is set)")
    name = make_url(services.database_url).database
    assert name is not None
    with streaming_replica(services.pg, name) as standby:
        yield standby


def with_replica(settings: Settings, replica: StreamingReplica, **changes: Any) -> Settings:
    # Lag is measured as the age of the last replayed transaction while replay is behind, so
    # a replica paused by a test may look old: the limit is tested on its own below.
    options: dict[str, Any] = {"database_replica_max_lag_ms": 600_000, "database_replica_check_ms": 0}
    return msgspec.structs.replace(settings, database_replica_url=replica.url(), **(options | changes))


@pytest.fixture
def replica_settings(settings: Settings, replica: StreamingReplica) -> Settings:
    return with_replica(settings, replica)


@pytest.fixture
async def replica_db(replica_settings: Settings) -> AsyncIterator[Database]:
    database = create_database(replica_settings, "api")
    yield database
    await database.dispose()


@pytest.fixture
async def shop(
    committed_db: Database,
    replica_db: Database,
    replica_settings: Settings,
    make_app: Callable[..., Litestar],
    redis: Redis,
) -> AsyncIterator[httpx.AsyncClient]:
    """The API with the replica, on committed data (a standby replays only what is committed)."""
    async with serve(make_app(database=replica_db, settings=replica_settings)) as client:
        yield client
    await clear_rate_limits(redis)
    fences = [key async for key in redis.scan_iter(match="fashionistar:replica-fence:*", count=500)]
    if fences:
        await redis.delete(*fences)


@pytest.fixture
def paused(replica: StreamingReplica) -> Iterator[StreamingReplica]:
    """The standby, its replay resumed after the test whatever the test did."""
    try:
        yield replica
    finally:
        replica.resume()


def served(served_by: str, reason: str) -> float:
    labels = {"served_by": served_by, "reason": reason}
    return REGISTRY.get_sample_value("fashionistar_replica_reads_total", labels) or 0.0


async def a_listed_product(database: Database, **product: Any) -> tuple[Any, Any, str]:
    """A vendor (and their email) with one listed product, committed."""
    async with database.session_maker() as session:
        owner = await make_user(session, role="vendor")
        store = await make_store(session, owner)
        listed = await make_product(session, store, **product)
    return owner, listed, owner.email


async def set_title_on_primary(database: Database, product_id: Any, title: str) -> None:
    """A change committed on the primary by no request: nobody's fence, and no page version moves
    (so nothing asks the replica to be past it)."""
    async with database.engine.begin() as conn:
        await conn.execute(
            text("UPDATE products SET title = :t WHERE id = :id"), {"t": title, "id": product_id}
        )


async def test_without_a_replica_there_is_no_second_pool(settings: Settings) -> None:
    assert settings.database_replica_url is None
    database = create_database(settings, "api")
    assert database.replica is None
    # Reads asking for the replica are the primary's, through the very same makers.
    assert await database.replica_reader() is database.reader()
    assert await database.replica_session_maker() is database.session_maker
    row = await database.fetch_row("SELECT pg_is_in_recovery() AS standby", replica=True)
    assert row is not None
    assert row["standby"] is False
    await database.dispose()


async def test_replica_reads_run_on_the_standby_under_their_own_name(replica_db: Database) -> None:
    row = await replica_db.fetch_row(
        "SELECT pg_is_in_recovery() AS standby, current_setting('application_name') AS app", replica=True
    )
    assert row is not None
    assert (row["standby"], row["app"]) == (True, "fashionistar-api-replica")
    primary = await replica_db.fetch_row("SELECT pg_is_in_recovery() AS standby")
    assert primary is not None
    assert primary["standby"] is False
    # Sessions for replica reads too, the plain and the transactional one.
    for maker in (await replica_db.replica_reader(), await replica_db.replica_session_maker()):
        async with maker() as session:
            assert (await session.execute(text("SELECT pg_is_in_recovery()"))).scalar_one() is True


async def test_anonymous_catalog_reads_are_served_by_the_replica(
    committed_db: Database, shop: httpx.AsyncClient, paused: StreamingReplica, redis: Redis
) -> None:
    replica = paused
    _, product, _ = await a_listed_product(committed_db, title="Ankara wrap dress", brand="Zaria Looms")
    replica.pause_after_replay()
    try:
        await set_title_on_primary(committed_db, product.id, "Renamed on the primary")
        async with committed_db.engine.begin() as conn:
            await conn.execute(text("UPDATE brands SET name = 'Renamed brand' WHERE name = 'Zaria Looms'"))
        # The product page, the listing and the brands are the replica's older data.
        page = await shop.get(f"{API}/products/{product.id}")
        assert page.status_code == 200, page.text
        assert page.json()["title"] == "Ankara wrap dress"
        found = await shop.get(f"{API}/products", params={"q": "ankara wrap"})
        assert found.status_code == 200, found.text
        assert [item["title"] for item in found.json()["items"]] == ["Ankara wrap dress"]
        brands = await shop.get(f"{API}/brands", params={"limit": 100})
        assert brands.status_code == 200, brands.text
        names = [b["name"] for b in brands.json()["items"]]
        assert "Zaria Looms" in names
        assert "Renamed brand" not in names
        # Similar products and reviews (sessions in a transaction) are routed there too.
        before = served("replica", "ok")
        for path in (f"products/{product.id}/similar", f"products/{product.id}/reviews"):
            response = await shop.get(f"{API}/{path}")
            assert response.status_code == 200, response.text
        assert served("replica", "ok") == before + 2
    finally:
        replica.resume()
    replica.wait_for_replay()
    # The change's page version moves (as a real write's would): the page is built again.
    await PageVersions(redis).bump([product_key(product.id)])
    again = await shop.get(f"{API}/products/{product.id}")
    assert again.json()["title"] == "Renamed on the primary"


async def test_a_vendor_reads_their_own_price_change_while_the_replica_is_paused(
    committed_db: Database, shop: httpx.AsyncClient, paused: StreamingReplica, redis: Redis
) -> None:
    owner, product, email = await a_listed_product(committed_db, title="Adire kaftan", price=2_000_000)
    paused.pause_after_replay()
    vendor = bearer(await login(shop, email))
    change = await shop.patch(
        f"{API}/vendor/products/{product.id}",
        json={"price": {"amount": 2_500_000, "currency": "NGN"}},
        headers=vendor,
    )
    assert change.status_code == 200, change.text
    assert await redis.get(fence_key(owner.id)) is not None

    # The vendor's very next reads see the change (served by the primary: the replica is behind
    # their write)... A search not searched before is two reads: its ranking, then its page's rows
    # (db/services/catalog/ranked_search.py).
    before = served("primary", "fence")
    listed = await shop.get(f"{API}/products", params={"q": "adire kaftan"}, headers=vendor)
    assert [item["price"]["amount"] for item in listed.json()["items"]] == [2_500_000]
    mine = await shop.get(f"{API}/products/{product.id}", headers=vendor)
    assert mine.json()["price"]["amount"] == 2_500_000
    assert served("primary", "fence") == before + 3
    # ...and so does everyone's: a public page is cached under the page version the write moved,
    # so it is never built from a replica that has not replayed that write.
    before = served("primary", "fence")
    anonymous = await shop.get(f"{API}/products", params={"q": "adire"})
    assert [item["price"]["amount"] for item in anonymous.json()["items"]] == [2_500_000]
    assert served("primary", "fence") == before + 2

    # Once the replica has replayed past the write, the vendor reads it there again.
    paused.resume()
    paused.wait_for_replay()
    before = served("replica", "ok")
    mine = await shop.get(f"{API}/products", params={"q": "kaftan"}, headers=vendor)
    assert [item["price"]["amount"] for item in mine.json()["items"]] == [2_500_000]
    assert served("replica", "ok") == before + 2


async def test_one_users_write_fences_only_their_own_reads(
    committed_db: Database, shop: httpx.AsyncClient, replica_db: Database, paused: StreamingReplica
) -> None:
    owner, product, email = await a_listed_product(committed_db, title="Aso oke cap")
    async with committed_db.session_maker() as session:
        shopper = await make_user(session)
    paused.pause_after_replay()
    vendor = bearer(await login(shop, email))
    change = await shop.patch(
        f"{API}/vendor/products/{product.id}", json={"title": "Aso oke fila"}, headers=vendor
    )
    assert change.status_code == 200, change.text
    title = "SELECT title FROM products WHERE id = $1"
    with reading_as(shopper.id):
        theirs = await replica_db.fetch_row(title, product.id, replica=True)
    with reading_as(owner.id):
        mine = await replica_db.fetch_row(title, product.id, replica=True)
    assert theirs is not None
    assert mine is not None
    assert (theirs["title"], mine["title"]) == ("Aso oke cap", "Aso oke fila")


async def test_a_replica_that_is_down_leaves_reads_to_the_primary(
    committed_db: Database, shop: httpx.AsyncClient, replica: StreamingReplica
) -> None:
    _, product, _ = await a_listed_product(committed_db, title="Beaded clutch")
    replica.wait_for_replay()
    assert (await shop.get(f"{API}/products", params={"q": "beaded"})).status_code == 200
    replica.stop_server()
    try:
        await set_title_on_primary(committed_db, product.id, "Beaded evening clutch")
        before = served("primary", "down") + served("primary", "error")
        page = await shop.get(f"{API}/products/{product.id}")
        assert page.status_code == 200, page.text
        assert page.json()["title"] == "Beaded evening clutch"
        for limit in (1, 2, 3):  # pages not cached yet: each is read
            found = await shop.get(f"{API}/products", params={"q": "beaded", "limit": limit})
            assert found.status_code == 200, found.text
            assert [item["title"] for item in found.json()["items"]] == ["Beaded evening clutch"]
        similar = await shop.get(f"{API}/products/{product.id}/similar")
        assert similar.status_code == 200, similar.text
        assert served("primary", "down") + served("primary", "error") >= before + 5
    finally:
        replica.start_server()
    # It is asked again after a second and used once it answers.
    deadline = time.monotonic() + 30
    before = served("replica", "ok")
    attempt = 0
    while served("replica", "ok") == before:
        assert time.monotonic() < deadline, "the replica was not used again after it came back"
        await asyncio.sleep(0.2)
        attempt += 1
        found = await shop.get(f"{API}/products", params={"q": "beaded", "limit": 10 + attempt})
        assert found.status_code == 200, found.text


async def test_a_replica_behind_by_more_than_the_limit_is_not_read(
    committed_db: Database,
    settings: Settings,
    replica: StreamingReplica,
    paused: StreamingReplica,
    make_app: Callable[..., Litestar],
) -> None:
    _, product, _ = await a_listed_product(committed_db, title="Kente stole")
    paused.pause_after_replay()
    await set_title_on_primary(committed_db, product.id, "Kente shawl")
    # The change has reached the standby but is not replayed: it is behind.
    deadline = time.monotonic() + 30
    while paused.psql("SELECT pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn()") != "t":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.05)
    strict = with_replica(settings, replica, database_replica_max_lag_ms=20)
    database = create_database(strict, "api")
    try:
        async with serve(make_app(database=database, settings=strict)) as client:
            before = served("primary", "lag")
            page = await client.get(f"{API}/products/{product.id}")
            assert page.json()["title"] == "Kente shawl"
            assert served("primary", "lag") == before + 1
    finally:
        await database.dispose()


async def test_size_advice_and_fitting_products_read_the_replica(
    committed_db: Database, shop: httpx.AsyncClient, paused: StreamingReplica
) -> None:
    async with committed_db.session_maker() as session:
        store = await make_store(session)
        product_id = await charted_product(session, store)
        user = await make_user(session)
    paused.pause_after_replay()
    # A measurement becomes ready in a worker: no request of the user's, so no fence. The
    # replica has not replayed it; size advice confirms the replica's refusal on the primary.
    async with committed_db.session_maker() as session:
        await profile(session, user)
    auth = bearer(await login(shop, user.email))
    before = served("replica", "ok")
    advice = await shop.get(f"{API}/products/{product_id}/fit", headers=auth)
    assert advice.status_code == 200, advice.text
    assert advice.json()["recommended_size"] == "M"
    # the product and profile (refused there, then read on the primary), then shoppers like me
    assert served("replica", "ok") == before + 2

    paused.resume()
    paused.wait_for_replay()
    before = served("replica", "ok")
    fitting = await shop.get(f"{API}/fit/products", headers=auth)
    assert fitting.status_code == 200, fitting.text
    assert [item["product"]["id"] for item in fitting.json()["items"]] == [str(product_id)]
    advice = await shop.get(f"{API}/products/{product_id}/fit", headers=auth)
    assert advice.json()["recommended_size"] == "M"
    # fit products; size advice's product and profile, and its shoppers-like-me counts
    assert served("replica", "ok") == before + 3


async def test_fitting_products_confirm_a_missing_measurement_on_the_primary(
    committed_db: Database, shop: httpx.AsyncClient, paused: StreamingReplica
) -> None:
    async with committed_db.session_maker() as session:
        store = await make_store(session)
        product_id = await charted_product(session, store)
        user = await make_user(session)
        nobody = await make_user(session)
    paused.pause_after_replay()
    # A measurement made ready by a worker (no fence) that the replica has not replayed.
    async with committed_db.session_maker() as session:
        await profile(session, user)
    auth = bearer(await login(shop, user.email))
    before = served("replica", "ok")
    fitting = await shop.get(f"{API}/fit/products", headers=auth)
    assert fitting.status_code == 200, fitting.text
    assert [item["product"]["id"] for item in fitting.json()["items"]] == [str(product_id)]
    assert served("replica", "ok") == before + 1  # refused there, then read on the primary
    # Nobody's refusal holds on the primary too: 409.
    other = bearer(await login(shop, nobody.email))
    refused = await shop.get(f"{API}/fit/products", headers=other)
    assert refused.status_code == 409, refused.text
    paused.resume()
    paused.wait_for_replay()


async def test_the_replicas_state_is_asked_once_per_check_interval(
    settings: Settings, replica: StreamingReplica
) -> None:
    database = create_database(with_replica(settings, replica, database_replica_check_ms=60_000), "api")
    try:
        assert database.replica is not None
        first = await database.replica.state()
        assert first.up
        for _ in range(5):
            assert await database.fetch_row("SELECT 1", replica=True) is not None
        assert await database.replica.state() is first
    finally:
        await database.dispose()


async def test_without_a_replica_a_write_leaves_no_fence(
    client: httpx.AsyncClient, session: AsyncSession, redis: Redis
) -> None:
    owner = await make_user(session, role="vendor")
    store = await make_store(session, owner)
    product = await make_product(session, store)
    vendor = bearer(await login(client, owner.email))
    change = await client.patch(
        f"{API}/vendor/products/{product.id}", json={"title": "Renamed"}, headers=vendor
    )
    assert change.status_code == 200, change.text
    assert await redis.get(fence_key(owner.id)) is None


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_REPLICA_MAX_LAG_MS", "0"),
        ("DATABASE_REPLICA_CHECK_MS", "-1"),
        ("DATABASE_REPLICA_FENCE_SECONDS", "0"),
    ],
)
def test_replica_timings_must_be_usable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        load_settings({"APP_ENV": "test", variable: value}, dotenv=None)
