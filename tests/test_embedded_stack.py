"""The embedded development servers: PostgreSQL 18 with pg_stat_statements loaded, a Redis
7-compatible server, and data directories they cannot open."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from redis.asyncio import Redis

from devstack.services import DataDirectoryError, EmbeddedPostgres, EmbeddedRedis, free_port

pytestmark = pytest.mark.anyio


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".")[:2])


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
def test_a_disposable_old_directory_starts_afresh(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)  # the server runs as its own user when the tests run as root
    pgdata = tmp_path / "pg"
    pgdata.mkdir()
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
