"""The app through PgBouncer in transaction mode, as it runs in the cluster (k8s/base/pgbouncer.yaml):
Debian's pgbouncer binary with the shipped pool settings in front of the test PostgreSQL, the API
and a worker configured with DB_PGBOUNCER=true and DATABASE_URL pointing at it."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import msgspec
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from api.app import create_app
from core.settings import Settings
from db.engine import Database, create_database, engine_options
from devstack.embedded_redis import EmbeddedRedis
from devstack.services import free_port
from tests.conftest import Services
from tests.support import pgbouncer
from tests.support.catalog import make_product, make_store
from tests.support.http import serve
from tests.support.identity import PASSWORD, make_user
from tests.support.orders import variants_of
from tests.support.stack import WorkerProcess, worker_env
from tests.test_cart_orders import ADDRESS
from tests.test_order_messages_e2e import mail_to
from tests.test_tasks_e2e import eventually

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(
        pgbouncer.binary() is None,
        reason="no pgbouncer binary (apt-get install pgbouncer; .ci/run installs it where apt works)",
    ),
]

API = "/api/v1"


@pytest.fixture(scope="module")
def bouncer(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[pgbouncer.PgBouncer]:
    with pgbouncer.running(services.database_url, tmp_path_factory.mktemp("pgbouncer") / "log") as running:
        yield running


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis of this module's own, so no other test's worker takes the jobs sent here."""
    redis = EmbeddedRedis(tmp_path_factory.mktemp("redis"), free_port(), persistent=False)
    redis.start()
    yield redis.url
    redis.stop()


def through(settings: Settings, bouncer: pgbouncer.PgBouncer, **changes: object) -> Settings:
    return msgspec.structs.replace(settings, database_url=bouncer.url(), db_pgbouncer=True, **changes)


@pytest.fixture
async def bounced_db(
    settings: Settings, bouncer: pgbouncer.PgBouncer, committed_db: Database
) -> AsyncIterator[Database]:
    """A database through PgBouncer (committing; ``committed_db`` empties the tables after)."""
    db = create_database(through(settings, bouncer), "test")
    yield db
    await db.dispose()


def test_the_test_runs_the_shipped_pool_mode(bouncer: pgbouncer.PgBouncer) -> None:
    assert bouncer.settings["pool_mode"] == "transaction"
    assert pgbouncer.shipped_settings()["pool_mode"] == "transaction"


async def _switch_server_connections(db: Database) -> None:
    """Run a statement, let another client hold that server connection in a transaction, then run
    the statement again: PgBouncer must hand the first client another server connection."""
    async with db.engine.connect() as first, db.engine.connect() as second:
        assert await first.scalar(text("SELECT 1 + 1")) == 2
        await first.commit()
        assert await second.scalar(text("SELECT 2")) == 2  # its transaction stays open
        assert await first.scalar(text("SELECT 1 + 1")) == 2
        await first.commit()
        await second.commit()


async def test_without_db_pgbouncer_the_app_cannot_use_pgbouncer(
    settings: Settings, bouncer: pgbouncer.PgBouncer
) -> None:
    url = bouncer.url(bouncer.two_connection_database)
    # A per-connection statement_timeout is a startup parameter PgBouncer refuses.
    plain = create_database(msgspec.structs.replace(settings, database_url=url, db_pgbouncer=False), "test")
    try:
        with pytest.raises(DBAPIError, match="unsupported startup parameter: statement_timeout"):
            await _switch_server_connections(plain)
    finally:
        await plain.dispose()
    # Without it but with asyncpg's statement cache, a client's cached statement is missing on the
    # server connection its next transaction gets.
    options = engine_options(msgspec.structs.replace(settings, db_pgbouncer=True), "test")
    for name in ("statement_cache_size", "prepared_statement_name_func"):
        del options["connect_args"][name]
    cached = create_async_engine(url, **options)  # the URL without prepared_statement_cache_size=0
    try:
        with pytest.raises(DBAPIError, match=r"prepared statement .* (already exists|does not exist)"):
            await _switch_server_connections(Database(cached, async_sessionmaker(cached)))
    finally:
        await cached.dispose()
    # With DB_PGBOUNCER=true both work.
    configured = create_database(
        msgspec.structs.replace(settings, database_url=url, db_pgbouncer=True), "test"
    )
    try:
        await _switch_server_connections(configured)
    finally:
        await configured.dispose()


async def test_the_app_and_a_worker_work_through_pgbouncer(
    settings: Settings,
    bouncer: pgbouncer.PgBouncer,
    bounced_db: Database,
    private_redis: str,
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    mail_dir = tmp_path / "mail"
    async with bounced_db.session_maker() as session:
        store = await make_store(session)
        product = await make_product(session, store, variants=[("M", "black", 3)])
        variant = (await variants_of(session, product))[0]
        buyers = [await make_user(session) for _ in range(6)]
    worker = WorkerProcess(
        worker_env(bouncer.url(), private_redis, DB_PGBOUNCER="true", MAIL_DIR=str(mail_dir)),
        tmp_path / "worker.log",
        "emails",
    ).start()
    try:
        app = create_app(through(settings, bouncer, redis_url=private_redis))
        async with serve(app) as client:
            ready = await client.get("/health/ready")
            assert ready.status_code == 200, ready.text
            listing = await client.get(f"{API}/products", params={"limit": 50})
            assert listing.status_code == 200
            assert str(product.id) in {item["id"] for item in listing.json()["items"]}
            # Concurrent reads share PgBouncer's server connections between statements.
            reads = await asyncio.gather(
                *(client.get(f"{API}/products/{product.id}") for _ in range(20)),
                *(client.get(f"{API}/products", params={"limit": 20}) for _ in range(20)),
            )
            assert {r.status_code for r in reads} == {200}, [r.text for r in reads if r.status_code != 200][
                :2
            ]
            tokens = []
            for buyer in buyers:
                login = await client.post(
                    f"{API}/auth/login", json={"email": buyer.email, "password": PASSWORD}
                )
                assert login.status_code == 200, login.text
                tokens.append({"Authorization": f"Bearer {login.json()['access_token']}"})
            body = {"shipping_address": ADDRESS, "items": [{"variant_id": str(variant.id), "quantity": 1}]}
            # Six buyers race for three units: the conditional UPDATE and the transaction-scoped
            # advisory lock of each Idempotency-Key hold across pooled server connections.
            raced = await asyncio.gather(
                *(
                    client.post(
                        f"{API}/orders", json=body, headers={**t, "Idempotency-Key": str(uuid.uuid4())}
                    )
                    for t in tokens
                )
            )
            assert Counter(r.status_code for r in raced) == {201: 3, 409: 3}, [r.text for r in raced]
            winner = next(i for i, r in enumerate(raced) if r.status_code == 201)
            cancel = await client.post(
                f"{API}/orders/{raced[winner].json()['id']}/cancel", headers=tokens[winner]
            )
            assert cancel.status_code == 200, cancel.text
            # Concurrent retries of one key make one order (the others replay it or are told to wait).
            headers = {**tokens[winner], "Idempotency-Key": str(uuid.uuid4())}
            retries = await asyncio.gather(
                *(client.post(f"{API}/orders", json=body, headers=headers) for _ in range(4))
            )
            assert Counter(r.status_code for r in retries)[201] == 1, [r.text for r in retries]
            assert {r.status_code for r in retries} <= {200, 201, 409}
            assert len({r.json()["id"] for r in retries if r.status_code in (200, 201)}) == 1
        # The worker (emails queue) reads each order through PgBouncer and writes its confirmation.
        confirmed = {buyers[i].email for i, r in enumerate(raced) if r.status_code == 201}

        async def all_mailed() -> bool:
            return all(mail_to(mail_dir, e) for e in confirmed)

        try:
            await eventually(all_mailed, within=20, step=0.2)
        except TimeoutError:
            pytest.fail(f"confirmations not written:\n{worker.log_text()[-3000:]}")
    finally:
        worker.stop()
    assert time.monotonic() - started < 30
