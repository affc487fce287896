"""Engine and session factory, one per process role.

Each role (``api``, ``worker``, ``scheduler``, ``cli``) gets its own pool size and shows up in
``pg_stat_activity`` under its ``application_name``. With ``DB_PGBOUNCER=true`` the asyncpg
statement cache is turned off and prepared statements get unique names, as PgBouncer in
transaction mode requires.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from core.settings import Settings

ProcessRole = Literal["api", "worker", "scheduler", "cli", "test"]


@dataclass(frozen=True, slots=True)
class Database:
    """The engine and session factories of one process."""

    engine: AsyncEngine
    session_maker: async_sessionmaker[AsyncSession]
    # Sessions for requests that only read: their statements run without BEGIN/COMMIT (two round
    # trips fewer), each seeing the latest committed data. Not for code that relies on
    # transaction-local settings (SET LOCAL) or on one snapshot across several queries.
    read_session_maker: async_sessionmaker[AsyncSession] | None = None

    def reader(self) -> async_sessionmaker[AsyncSession]:
        return self.read_session_maker or self.session_maker

    async def dispose(self) -> None:
        await self.engine.dispose()


def normalise_url(url: str) -> str:
    """Accept ``postgres://`` / ``postgresql://`` URLs and pin the asyncpg driver."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


def _unique_statement_name() -> str:
    return f"__asyncpg_{uuid.uuid4().hex}__"


def engine_options(settings: Settings, role: ProcessRole) -> dict[str, Any]:
    if role == "api":
        pool_size, overflow = settings.db_pool_size_api, settings.db_max_overflow_api
    elif role in ("worker", "test"):
        pool_size, overflow = settings.db_pool_size_worker, settings.db_max_overflow_worker
    else:
        pool_size, overflow = 2, 2

    server_settings = {"application_name": f"fashionistar-{role}"}
    connect_args: dict[str, Any] = {"server_settings": server_settings}
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


def engine_url(settings: Settings) -> str:
    """The asyncpg URL of ``DATABASE_URL``; behind PgBouncer with SQLAlchemy's statement cache off.

    Raises:
        RuntimeError: ``DATABASE_URL`` is not set.
    """
    url = make_url(normalise_url(settings.require_database_url()))
    if settings.db_pgbouncer:
        url = url.update_query_dict({"prepared_statement_cache_size": "0"})
    return url.render_as_string(hide_password=False)


def create_database(settings: Settings, role: ProcessRole) -> Database:
    """Build (without connecting) the engine and session factory for ``role``.

    Raises:
        RuntimeError: ``DATABASE_URL`` is not set.
    """
    engine = create_async_engine(engine_url(settings), **engine_options(settings, role))
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
