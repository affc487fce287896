"""The embedded development servers: PostgreSQL 18 with pgvector and pg_stat_statements, a Redis
7-compatible server, data directories they cannot open, and ``just versions``."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy import text

from core.settings import Settings
from db.engine import Database
from devstack.embedded_redis import EmbeddedRedis
from devstack.services import DataDirectoryError, EmbeddedPostgres, free_port
from devstack.versions import bundled_postgres_lines, collect
from tests.conftest import Services
from tests.support.stack import ROOT

pytestmark = pytest.mark.anyio


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".")[:2])


async def test_embedded_postgres_is_18_with_pgvector_and_statement_statistics(
    services: Services, database: Database
) -> None:
    if services.pg is None:
        pytest.skip("DATABASE_URL names another server")
    async with database.engine.connect() as conn:
        server = int(await conn.scalar(text("SHOW server_version_num")))
        vector = await conn.scalar(text("SELECT extversion FROM pg_extension WHERE extname = 'vector'"))
        preloaded = await conn.scalar(text("SHOW shared_preload_libraries"))
        statements = await conn.scalar(
            text("SELECT extversion FROM pg_extension WHERE extname = 'pg_stat_statements'")
        )
        # A full suite runs more distinct statements than the view keeps (pg_stat_statements.max):
        # start from an empty view so the probe cannot be evicted before it is read.
        await conn.execute(text("SELECT pg_stat_statements_reset()"))
        await conn.execute(text("SELECT 42 AS fashionistar_probe"))
        seen = await conn.scalar(
            text("SELECT sum(calls) FROM pg_stat_statements WHERE query LIKE '%fashionistar_probe%'")
        )
    assert server >= 180000
    assert version_tuple(vector) >= (0, 8)
    assert "pg_stat_statements" in preloaded.split(",")
    assert statements is not None
    assert seen >= 1


async def test_pg_stat_statements_is_created_where_the_server_allows(database: Database) -> None:
    async with database.engine.connect() as conn:
        available = await conn.scalar(
            text("SELECT count(*) FROM pg_available_extensions WHERE name = 'pg_stat_statements'")
        )
        superuser = await conn.scalar(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"))
        installed = await conn.scalar(
            text("SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'")
        )
    if not (available and superuser):
        pytest.skip("the server has no pg_stat_statements, or the test role may not create it")
    assert installed == 1


def test_a_data_directory_of_an_older_postgresql_is_refused_with_the_one_time_step(tmp_path: Path) -> None:
    pgdata = tmp_path / "pg"
    pgdata.mkdir()
    (pgdata / "PG_VERSION").write_text("16\n")
    with pytest.raises(DataDirectoryError) as refused:
        EmbeddedPostgres(pgdata).start()
    message = str(refused.value)
    assert "PostgreSQL 16" in message
    assert f"mv {pgdata} {tmp_path / 'pg-pg16'}" in message
    assert "python3 dev.py up" in message
    assert (pgdata / "PG_VERSION").read_text() == "16\n"  # nothing was touched


def test_a_disposable_old_directory_is_kept_while_its_server_runs(tmp_path: Path) -> None:
    pgdata = tmp_path / "pg"
    pgdata.mkdir()
    (pgdata / "PG_VERSION").write_text("16\n")
    # postmaster.pid of a server that is up: this process stands in for it.
    (pgdata / "postmaster.pid").write_text(
        f"{os.getpid()}\n{pgdata}\n1700000000\n5432\n{pgdata}\n\n0 0\nready\n"
    )
    with pytest.raises(DataDirectoryError, match="still running"):
        EmbeddedPostgres(pgdata, disposable=True).start()
    assert (pgdata / "PG_VERSION").exists()


@pytest.mark.slow
def test_a_disposable_old_directory_starts_afresh() -> None:
    # Under the project's .data, not pytest's temporary directory: when the tests run as root the
    # server runs as a user of its own, which cannot enter /tmp/pytest-of-root (mode 0700).
    pgdata = ROOT / ".data" / "test" / f"old-{uuid.uuid4().hex[:8]}"
    pgdata.mkdir(parents=True)
    (pgdata / "PG_VERSION").write_text("16\n")
    (pgdata / "old-file").write_text("from PostgreSQL 16")
    pg = EmbeddedPostgres(pgdata, disposable=True)
    pg.start()
    try:
        assert pg.data_directory_version() == "18"
        assert not (pgdata / "old-file").exists()
        assert pg.psql("SHOW shared_preload_libraries") == "pg_stat_statements"
    finally:
        pg.stop()
    assert not pg.attach()
    shutil.rmtree(pgdata, ignore_errors=True)


async def test_embedded_redis_is_7_compatible_and_keeps_its_data_across_a_restart(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis", free_port(), persistent=True)
    server.start()
    try:
        client = Redis.from_url(server.url)
        info = await client.info("server")
        await client.set("kept", "yes")
        await client.aclose()
        assert version_tuple(str(info["redis_version"])) >= (7, 0)
        server.stop()
        assert not server.is_running()
        server.start()
        client = Redis.from_url(server.url)
        assert await client.get("kept") == b"yes"
        await client.aclose()
    finally:
        server.stop()


async def test_versions_names_each_server_and_extension(settings: Settings) -> None:
    lines = {line.what: line for line in await collect(settings)}
    assert set(lines) == {"PostgreSQL", "vector", "pg_stat_statements", "Redis"}
    assert lines["PostgreSQL"].where == "DATABASE_URL"
    assert lines["vector"].where == "installed"
    assert lines["Redis"].version != "?"


def test_versions_of_an_embedded_server_that_is_not_running(tmp_path: Path) -> None:
    lines = {line.what: line for line in bundled_postgres_lines(EmbeddedPostgres(tmp_path / "pg"))}
    assert lines["PostgreSQL"].version.startswith("18.")
    assert version_tuple(lines["vector"].version) >= (0, 8)
    assert lines["pg_stat_statements"].where == "shipped"
