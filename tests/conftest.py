"""Test harness: real PostgreSQL + pgvector, real Redis, real taskiq workers.

Without ``DATABASE_URL`` / ``REDIS_URL`` the session starts an embedded PostgreSQL 18 (data under
``.data/test/pg``, a fresh database per run) and a throw-away Redis on a free port. With them
set, those servers are used and MUST be disposable: the database is migrated and written to,
the Redis database is flushed.

Isolation: each test's database work runs inside an outer transaction that is rolled back
(the code under test commits to savepoints). Tests that need data visible to other processes
(workers) use ``committed_db`` and clean up after themselves.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import msgspec
import pytest
from litestar import Litestar
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker
from taskiq import AsyncBroker
from taskiq.kicker import AsyncKicker

import db.models
from api.app import create_app
from core.adapters.images import register_heic_decoder
from core.adapters.payments.paystack import PaystackProvider
from core.settings import Settings, load_settings
from db import migrate
from db.engine import Database, create_database
from devstack.embedded_redis import EmbeddedRedis
from devstack.paystack import PaystackStandIn
from devstack.services import EmbeddedPostgres, free_port
from tasks.runtime.dispatch import BrokerDispatcher
from tasks.runtime.factory import build_broker
from tasks.runtime.queues import queue_of, stream_name
from tests.support.http import serve
from tests.support.stack import ROOT, TEST_SECRETS, WORKER_TEST_ENV, WorkerProcess, worker_env

# Tests write HEIC photos with Pillow, which the product registers only once it reads one.
register_heic_decoder()

# Rows that migrations put in place (the category tree); tests never delete them.
REFERENCE_TABLES = frozenset({"categories"})


@dataclass(frozen=True)
class Services:
    database_url: str
    redis_url: str
    settings: Settings
    pg: EmbeddedPostgres | None


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    database_url = os.environ.get("DATABASE_URL")
    redis_url = os.environ.get("REDIS_URL")
    pg: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None
    started_pg = False
    if not database_url:
        pgdata = ROOT / ".data" / "test" / "pg"
        started_pg = not (pgdata / "postmaster.pid").exists()
        # Only throwaway databases live here: one made by an older PostgreSQL is started afresh.
        pg = EmbeddedPostgres(pgdata, disposable=True)
        pg.start()
        name = f"fashionistar_test_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
        pg.drop_database(name)
        pg.ensure_database(name)
        database_url = pg.url(name)
    if not redis_url:
        redis = EmbeddedRedis(tmp_path_factory.mktemp("redis"), free_port(), persistent=False)
        redis.start()
        redis_url = redis.url
    mail_dir = tmp_path_factory.mktemp("mail")
    media_dir = tmp_path_factory.mktemp("media")
    private_media_dir = tmp_path_factory.mktemp("private")
    settings = load_settings(
        {
            "APP_ENV": "test",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "MAIL_DIR": str(mail_dir),
            "MEDIA_DIR": str(media_dir),
            "PRIVATE_MEDIA_DIR": str(private_media_dir),
            **TEST_SECRETS,
            **WORKER_TEST_ENV,
        },
        dotenv=None,
    )
    migrate.upgrade(settings)
    try:
        yield Services(database_url=database_url, redis_url=redis_url, settings=settings, pg=pg)
    finally:
        if redis is not None:
            redis.stop()
        if pg is not None and started_pg:
            pg.stop()


@pytest.fixture(scope="session")
def settings(services: Services) -> Settings:
    return services.settings


@pytest.fixture(scope="session")
async def database(settings: Settings) -> AsyncIterator[Database]:
    db = create_database(settings, "test")
    yield db
    await db.dispose()


@pytest.fixture(scope="session")
async def broker(settings: Settings) -> AsyncIterator[AsyncBroker]:
    """A sending broker, as the API has."""
    flush = Redis.from_url(settings.redis_url or "")
    await flush.flushdb()
    await flush.aclose()
    b = build_broker(settings)
    yield b
    await b.shutdown()


@pytest.fixture
def dispatcher(broker: AsyncBroker) -> BrokerDispatcher:
    return BrokerDispatcher(broker)


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(settings.redis_url or "", decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def db_connection(database: Database) -> AsyncIterator[AsyncConnection]:
    """A connection inside an outer transaction that is rolled back after the test."""
    async with database.engine.connect() as conn:
        outer = await conn.begin()
        try:
            yield conn
        finally:
            if outer.is_active:
                await outer.rollback()


@pytest.fixture
def isolated_db(database: Database, db_connection: AsyncConnection) -> Database:
    """A Database whose sessions commit into savepoints of the test's outer transaction."""
    maker = async_sessionmaker(
        bind=db_connection,
        expire_on_commit=False,
        join_transaction_mode="create_savepoint",
    )
    return Database(engine=database.engine, session_maker=maker)


@pytest.fixture
async def session(isolated_db: Database) -> AsyncIterator[AsyncSession]:
    async with isolated_db.session_maker() as s:
        yield s


@pytest.fixture
async def committed_db(database: Database) -> AsyncIterator[Database]:
    """Really committed data (for tests where a worker must see it); app tables are emptied after."""
    yield database
    await empty_tables(database)


async def empty_tables(database: Database) -> None:
    """Empty every table but the reference data. A worker may still be finishing a task on these
    rows, so a deadlock with it is retried."""
    tables = ", ".join(t.name for t in db.models.metadata.sorted_tables if t.name not in REFERENCE_TABLES)
    for attempt in range(10):
        try:
            async with database.engine.begin() as conn:
                await conn.execute(text(f"TRUNCATE {tables} CASCADE"))
        except DBAPIError:
            if attempt == 9:
                raise
            await anyio.sleep(0.3)
        else:
            return


@pytest.fixture
async def api_database(settings: Settings) -> AsyncIterator[Database]:
    """The API's own engine and pool (application_name fashionistar-api), as in production: the
    fast read paths run on it (tests' ``isolated_db`` shares one connection instead)."""
    database = create_database(settings, "api")
    assert database.read_session_maker is not None
    yield database
    await database.dispose()


@pytest.fixture
def make_app(settings: Settings, isolated_db: Database, broker: AsyncBroker) -> Callable[..., Litestar]:
    def factory(**overrides: Any) -> Litestar:
        app_settings = overrides.pop("settings", settings)
        kwargs: dict[str, Any] = {"database": isolated_db, "broker": broker}
        kwargs.update(overrides)
        return create_app(app_settings, **kwargs)

    return factory


@pytest.fixture
async def live_client(
    make_app: Callable[..., Litestar], committed_db: Database, redis: Redis
) -> AsyncIterator[httpx.AsyncClient]:
    """The app on the real (committing) database, so the worker sees what requests commit."""
    async with serve(make_app(database=committed_db)) as client:
        yield client
    await clear_rate_limits(redis)


@pytest.fixture
async def client(make_app: Callable[..., Litestar], redis: Redis) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(make_app()) as c:
        yield c
    await clear_rate_limits(redis)


async def clear_rate_limits(redis: Redis) -> None:
    """Every test client comes from the same address: start each test with fresh windows."""
    keys = [key async for key in redis.scan_iter(match="fashionistar:rl:*", count=500)]
    if keys:
        await redis.delete(*keys)


# --- workers ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def worker_log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("worker-logs")


@pytest.fixture(scope="session")
def start_worker(services: Services, worker_log_dir: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start real worker processes; all are stopped at the end of the session."""
    started: list[WorkerProcess] = []

    def start(
        queues: str = "inference,critical,emails", *, scheduler: bool = False, processes: int = 1, **env: str
    ) -> WorkerProcess:
        log_path = worker_log_dir / f"{'scheduler' if scheduler else 'worker'}-{len(started) + 1}.log"
        env = {
            "MAIL_DIR": str(services.settings.mail_dir),
            "MEDIA_DIR": str(services.settings.media_dir),
            "PRIVATE_MEDIA_DIR": str(services.settings.private_media_dir),
            **env,
        }
        worker = WorkerProcess(
            worker_env(services.database_url, services.redis_url, **env),
            log_path,
            queues,
            scheduler=scheduler,
            processes=processes,
        ).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


async def run_task(
    broker: AsyncBroker, task_name: str, *args: Any, wait_seconds: float = 30, **kwargs: Any
) -> Any:
    """Send a task by name and wait for its result from the result backend."""
    kicker: AsyncKicker[Any, Any] = AsyncKicker(
        task_name=task_name, broker=broker, labels={"queue_name": stream_name(queue_of(task_name))}
    )
    task = await kicker.with_task_id(uuid.uuid4().hex).kiq(*args, **kwargs)
    result = await task.wait_result(timeout=wait_seconds)
    if result.is_err:
        raise AssertionError(f"{task_name} failed: {result.error!r}")
    return result.return_value


@pytest.fixture(scope="session")
async def worker(start_worker: Callable[..., WorkerProcess], broker: AsyncBroker) -> WorkerProcess:
    """One worker serving the critical and emails queues, shared by the session."""
    proc = start_worker()
    try:
        assert await run_task(broker, "critical.test.ping", wait_seconds=60) == "pong"
    except Exception as exc:
        raise AssertionError(f"worker did not start:\n{proc.log_text()[-4000:]}") from exc
    return proc


# --- the Paystack stand-in (a module that uses these defines its own `paystack` fixture) ----------


@pytest.fixture
def paystack_settings(settings: Settings, paystack: PaystackStandIn) -> Settings:
    """The test settings, taking payments and paying out through the module's Paystack stand-in."""
    return msgspec.structs.replace(settings, payment_provider="paystack", paystack_base_url=paystack.base_url)


@pytest.fixture
async def provider(paystack_settings: Settings) -> AsyncIterator[PaystackProvider]:
    adapter = PaystackProvider(
        secret_key=paystack_settings.paystack_secret_key.reveal(),
        base_url=paystack_settings.paystack_base_url,
        timeout=5,
    )
    yield adapter
    await adapter.close()


@pytest.fixture
async def live_shop(
    make_app: Callable[..., Litestar], paystack_settings: Settings, committed_db: Database, redis: Redis
) -> AsyncIterator[httpx.AsyncClient]:
    """The same on the committing database, so workers see what it commits."""
    async with serve(make_app(settings=paystack_settings, database=committed_db)) as client:
        yield client
    await clear_rate_limits(redis)
