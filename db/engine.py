"""Engine and session factory, one per process role.

Each role (``api``, ``worker``, ``scheduler``, ``cli``) gets its own pool size and shows up in
``pg_stat_activity`` under its ``application_name``. With ``DB_PGBOUNCER=true`` the asyncpg
statement cache is turned off and prepared statements get unique names, as PgBouncer in
transaction mode requires.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal, TypeVar
from uuid import UUID

import asyncpg
import msgspec
from redis.exceptions import RedisError
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn

from core.logging import get_logger
from core.settings import Settings
from db.replica import REPLICA_READ_ERRORS, WRITTEN_SQL, Replica

log = get_logger(__name__)

ProcessRole = Literal["api", "worker", "scheduler", "cli", "test"]
_T = TypeVar("_T")

# asyncpg's own errors meaning the database (or the connection to it) is gone or going, as raised
# by queries on ``Database.raw_reader`` connections (SQLAlchemy wraps them for its own queries).
DRIVER_UNAVAILABLE: tuple[type[BaseException], ...] = (
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # shutdown, starting up, statement timeout
)


@dataclass(frozen=True, slots=True)
class Database:
    """The engine and session factories of one process."""

    engine: AsyncEngine
    session_maker: async_sessionmaker[AsyncSession]
    # Sessions for requests that only read: their statements run without BEGIN/COMMIT (two round
    # trips fewer), each seeing the latest committed data. Not for code that relies on
    # transaction-local settings (SET LOCAL) or on one snapshot across several queries.
    read_session_maker: async_sessionmaker[AsyncSession] | None = None
    # The streaming replica (``DATABASE_REPLICA_URL``) that reads asking for it may go to; None
    # without one, and then those reads are the primary's, as any other.
    replica: Replica | None = None

    def reader(self) -> async_sessionmaker[AsyncSession]:
        return self.read_session_maker or self.session_maker

    async def replica_reader(self) -> async_sessionmaker[AsyncSession]:
        """``reader()`` of the replica when it may serve the current request (see db/replica.py),
        else the primary's own."""
        if self.replica is not None and await self.replica.usable():
            return self.replica.database.reader()
        return self.reader()

    async def replica_session_maker(self) -> async_sessionmaker[AsyncSession]:
        """Sessions in a transaction (for reads that use SET LOCAL), on the replica when it may
        serve the current request, else on the primary. Never for writes."""
        if self.replica is not None and await self.replica.usable():
            return self.replica.database.session_maker
        return self.session_maker

    async def written_position(self) -> int | None:
        """The primary's WAL position now (after a commit: at or past it), for page versions
        (core.page_versions); None without a replica (no query), or when it cannot be read."""
        if self.replica is None:
            return None
        try:
            position: int = await self._read(lambda conn: conn.fetchval(WRITTEN_SQL))
        except _BROKEN_CONNECTION as exc:
            log.warning("write position not read for page versions", error=repr(exc))
            return None
        return position

    async def note_write(self, user_id: UUID) -> None:
        """After a commit by ``user_id``: their replica reads go to the primary until the replica
        has replayed this far. Nothing without a replica; a failure is logged, never raised (the
        write is committed; its author may then briefly read the replica's older data)."""
        if self.replica is None or self.replica.fences is None:
            return
        try:
            lsn = await self._read(lambda conn: conn.fetchval(WRITTEN_SQL))
            await self.replica.fences.remember(user_id, lsn)
        except _FENCE_ERRORS as exc:
            log.warning("write position not remembered for read-your-writes", error=repr(exc))

    @asynccontextmanager
    async def raw_reader(self) -> AsyncIterator[asyncpg.Connection]:
        """The asyncpg connection itself, for the hottest read-only queries (no ORM, no result
        objects: rows go straight into the response). It comes from the engine's pool (same
        limits, settings and JSON codecs) and goes back to it; a connection that broke is
        discarded instead. Statements run without BEGIN where reads may (see ``reader``); where
        they may not (PgBouncer) or where the sessions share a connection (tests), inside a
        transaction of their own (a savepoint when one is already open).
        """
        if self.read_session_maker is None:
            async with self.session_maker() as session:
                fairy = await (await session.connection()).get_raw_connection()
                driver = _driver(fairy)
                async with driver.transaction(readonly=not driver.is_in_transaction()):
                    yield driver
            return
        # The pool's own checkout and checkin, without a Connection object around them.
        fairy = await self.engine.raw_connection()
        try:
            yield _driver(fairy)
        except _BROKEN_CONNECTION:
            await greenlet_spawn(fairy.invalidate)
            raise
        finally:
            await greenlet_spawn(fairy.close)

    async def fetch_row(self, sql: str, *args: Any, replica: bool = False) -> asyncpg.Record | None:
        """One row of a read-only statement (``$n`` parameters), as :meth:`fetch` reads."""
        return await self._routed(lambda conn: conn.fetchrow(sql, *args), replica)

    async def fetch(self, sql: str, *args: Any, replica: bool = False) -> list[asyncpg.Record]:
        """Every row of a read-only statement (``$n`` parameters) on a ``raw_reader`` connection.
        A connection the server dropped while it sat in the pool (restart, failover, idle
        timeout) fails its first statement; the read is then tried once more on a fresh
        connection, so only an outage that lasts is an error (503).

        ``replica``: the read may be served by the replica (catalog reads, vector searches; see
        db/replica.py); when the replica fails it, the primary serves it.
        """
        return await self._routed(lambda conn: conn.fetch(sql, *args), replica)

    async def read(
        self, statements: Callable[[asyncpg.Connection], Awaitable[_T]], *, replica: bool = False
    ) -> _T:
        """Several read-only statements on one ``raw_reader`` connection (for reads that need a
        transaction of their own, e.g. for transaction-local settings), routed and retried as
        :meth:`fetch` is: ``statements`` may run twice, so it must only read."""
        return await self._routed(statements, replica)

    async def _routed(self, statement: Callable[[asyncpg.Connection], Awaitable[_T]], replica: bool) -> _T:
        if replica and self.replica is not None and await self.replica.usable():
            try:
                return await self.replica.database._read(statement)
            except REPLICA_READ_ERRORS as exc:
                self.replica.failed(exc)
        return await self._read(statement)

    async def _read(self, statement: Callable[[asyncpg.Connection], Awaitable[_T]]) -> _T:
        try:
            async with self.raw_reader() as conn:
                return await statement(conn)
        except _BROKEN_CONNECTION:
            log.info("read retried on a new connection after the old one broke")
        async with self.raw_reader() as conn:
            return await statement(conn)

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.replica is not None:
            await self.replica.database.dispose()


async def in_read_only_transaction(
    conn: asyncpg.Connection, statements: Callable[[], Awaitable[_T]], restore_sql: str
) -> _T:
    """``statements`` (reads that make transaction-local settings, ``set_config(..., true)``) in a
    read-only transaction of their own; on a connection already in a transaction (tests share
    one), ``restore_sql`` puts the settings back after them instead."""
    if not conn.is_in_transaction():
        async with conn.transaction(readonly=True):
            return await statements()
    result = await statements()
    await conn.execute(restore_sql)
    return result


# Errors after which a connection is not used again: the above, the socket's own, and asyncpg's
# protocol state error when the server's goodbye arrived while the connection sat idle.
_BROKEN_CONNECTION: tuple[type[BaseException], ...] = (
    *DRIVER_UNAVAILABLE,
    OSError,
    asyncpg.InternalClientError,
)
_FENCE_ERRORS: tuple[type[BaseException], ...] = (*_BROKEN_CONNECTION, RedisError)


def _driver(fairy: PoolProxiedConnection) -> asyncpg.Connection:
    driver = fairy.driver_connection
    if not isinstance(driver, asyncpg.Connection):
        raise TypeError(f"expected an asyncpg connection, got {type(driver).__name__}")
    return driver


def normalise_url(url: str) -> str:
    """Accept ``postgres://`` / ``postgresql://`` URLs and pin the asyncpg driver."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


def _unique_statement_name() -> str:
    return f"__asyncpg_{uuid.uuid4().hex}__"


def engine_options(settings: Settings, role: ProcessRole, *, replica: bool = False) -> dict[str, Any]:
    """Pool and connection options of ``role``'s engine (``replica``: of its replica engine,
    shown as ``fashionistar-<role>-replica`` in the replica's ``pg_stat_activity``)."""
    if role == "api":
        pool_size, overflow = settings.db_pool_size_api, settings.db_max_overflow_api
    elif role in ("worker", "test"):
        pool_size, overflow = settings.db_pool_size_worker, settings.db_max_overflow_worker
    else:
        pool_size, overflow = 2, 2

    server_settings = {"application_name": f"fashionistar-{role}{'-replica' if replica else ''}"}
    connect_args: dict[str, Any] = {"server_settings": server_settings}
    if replica:
        # A replica that does not answer is left for the primary after 2 s, not asyncpg's 60.
        connect_args["timeout"] = 2
    options: dict[str, Any] = {
        "pool_size": pool_size,
        "max_overflow": overflow,
        "pool_timeout": settings.db_pool_timeout_seconds,
        # A ping is a round trip on every checkout. The API skips it: a connection broken by a
        # database restart fails one request with 503 and SQLAlchemy then discards the whole
        # pool's older connections; workers keep it (a retried task costs more than a ping).
        "pool_pre_ping": role != "api",
        "pool_recycle": 1800,
        "echo": settings.db_echo,
        "connect_args": connect_args,
        # json/jsonb columns and aggregates decoded by msgspec (several times faster than the
        # standard library's decoder; same Python values).
        "json_deserializer": msgspec.json.decode,
    }
    if settings.db_pgbouncer:
        # PgBouncer (transaction mode) hands each transaction a different server connection:
        # server-side prepared statements must not be cached or reused by name, and startup
        # parameters other than application_name are rejected.
        # (SQLAlchemy's own statement cache is off too: engine_url adds
        # prepared_statement_cache_size=0, which the dialect reads only from the URL.)
        connect_args["statement_cache_size"] = 0
        connect_args["prepared_statement_name_func"] = _unique_statement_name
    else:
        server_settings["statement_timeout"] = str(settings.db_statement_timeout_ms)
    return options


def engine_url(settings: Settings, database_url: str | None = None) -> str:
    """The asyncpg URL of ``database_url`` (default ``DATABASE_URL``); behind PgBouncer with
    SQLAlchemy's statement cache off.

    Raises:
        RuntimeError: ``DATABASE_URL`` is not set.
    """
    url = make_url(normalise_url(database_url or settings.require_database_url()))
    if settings.db_pgbouncer:
        url = url.update_query_dict({"prepared_statement_cache_size": "0"})
    return url.render_as_string(hide_password=False)


def create_database(settings: Settings, role: ProcessRole) -> Database:
    """Build (without connecting) the engine and session factory for ``role``.

    With ``DATABASE_REPLICA_URL`` the Database also has a ``replica`` with an engine of its own
    (same options and pool size); without, nothing more is built.

    Raises:
        RuntimeError: ``DATABASE_URL`` is not set.
    """
    database = _database(settings, role, settings.require_database_url(), replica=False)
    if not settings.database_replica_url:
        return database
    standby = _database(settings, role, settings.database_replica_url, replica=True)
    return dataclasses.replace(database, replica=Replica(standby, settings))


def _database(settings: Settings, role: ProcessRole, url: str, *, replica: bool) -> Database:
    engine = create_async_engine(engine_url(settings, url), **engine_options(settings, role, replica=replica))
    # expire_on_commit=False: objects stay readable after the commit that ends a request.
    session_maker = async_sessionmaker(engine, expire_on_commit=False, autoflush=True)
    if settings.db_pgbouncer:
        # Outside a transaction PgBouncer may run a statement's prepare and its execution on two
        # different server connections ("prepared statement ... does not exist"): reads stay in
        # transactions there (reader() falls back to session_maker).
        return Database(engine=engine, session_maker=session_maker)
    read_session_maker = async_sessionmaker(
        engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False, autoflush=False
    )
    return Database(engine=engine, session_maker=session_maker, read_session_maker=read_session_maker)
