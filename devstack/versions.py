"""``just versions``: the PostgreSQL, pgvector and Redis versions the stack runs on.

It asks the servers named by ``DATABASE_URL`` / ``REDIS_URL``, or else the embedded ones under
``DATA_DIR`` while they run (``just up``). An embedded server that is not running is reported
with the version its package brings.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis
from sqlalchemy import text

from core.settings import Settings, get_settings
from db.engine import create_database
from devstack.embedded_redis import EmbeddedRedis, redis_server_binary
from devstack.services import EmbeddedPostgres, postgres_bin_dir, postgres_version
from devstack.up import DEV_DATABASE, replace_settings

EXTENSIONS = ("vector", "pg_stat_statements")


@dataclass(frozen=True)
class Line:
    what: str
    version: str
    where: str

    def __str__(self) -> str:
        return f"{self.what:<20} {self.version:<28} {self.where}"


async def postgres_lines(settings: Settings, where: str) -> list[Line]:
    """The server's version and, in the app's database, each extension's installed version."""
    database = create_database(settings, "cli")
    try:
        async with database.engine.connect() as conn:
            server = await conn.scalar(text("SHOW server_version"))
            preloaded = str(await conn.scalar(text("SHOW shared_preload_libraries")))
            rows = (
                await conn.execute(
                    text(
                        "SELECT name, default_version, installed_version FROM pg_available_extensions "
                        "WHERE name = ANY(:names)"
                    ),
                    {"names": list(EXTENSIONS)},
                )
            ).all()
    finally:
        await database.dispose()
    lines = [Line("PostgreSQL", str(server).split()[0], where)]
    found = {row.name: row for row in rows}
    for name in EXTENSIONS:
        row = found.get(name)
        if row is None:
            lines.append(Line(name, "-", "not available on this server"))
            continue
        state = "installed" if row.installed_version else f"not installed (available: {row.default_version})"
        if name == "pg_stat_statements" and name not in preloaded:
            state += ", library not preloaded"
        lines.append(Line(name, row.installed_version or "-", state))
    return lines


def bundled_postgres_lines(pg: EmbeddedPostgres) -> list[Line]:
    """What the embedded package would run: its PostgreSQL and the extensions it ships."""
    where = f"embedded, not running ({pg.pgdata})"
    lines = [Line("PostgreSQL", postgres_version(), where)]
    share = subprocess.run(  # noqa: S603  # the package's own program
        [str(postgres_bin_dir() / "pg_config"), "--sharedir"], check=True, capture_output=True, text=True
    ).stdout.strip()
    for name in EXTENSIONS:
        try:
            control = (Path(share) / "extension" / f"{name}.control").read_text()
        except FileNotFoundError:
            lines.append(Line(name, "-", "not shipped"))
            continue
        match = re.search(r"default_version\s*=\s*'([^']+)'", control)
        lines.append(Line(name, match[1] if match else "?", "shipped"))
    return lines


async def redis_line(url: str, where: str) -> Line:
    client = Redis.from_url(url)
    try:
        info = await client.info("server")
    finally:
        await client.aclose()
    version = str(info.get("redis_version", "?"))
    if "valkey_version" in info:
        version = f"Valkey {info['valkey_version']} (Redis {version})"
    return Line("Redis", version, where)


def bundled_redis_line(redis: EmbeddedRedis) -> Line:
    banner = subprocess.run(  # noqa: S603  # the package's own program
        [redis_server_binary(), "--version"], check=True, capture_output=True, text=True
    ).stdout
    match = re.search(r"^(\w+) server v=(\S+)", banner)
    version = f"{match[1]} {match[2]}" if match else banner.strip()
    return Line("Redis", version, f"embedded, not running (port {redis.port})")


async def collect(settings: Settings) -> list[Line]:
    data_dir = settings.data_dir.resolve()
    lines: list[Line] = []
    if settings.database_url:
        lines += await postgres_lines(settings, "DATABASE_URL")
    else:
        pg = EmbeddedPostgres(data_dir / "pg")
        if pg.attach():
            embedded = replace_settings(settings, database_url=pg.url(DEV_DATABASE))
            lines += await postgres_lines(embedded, f"embedded, running ({pg.pgdata})")
        else:
            lines += bundled_postgres_lines(pg)
    if settings.redis_url:
        lines.append(await redis_line(settings.redis_url, "REDIS_URL"))
    else:
        redis = EmbeddedRedis(data_dir / "redis", settings.embedded_redis_port)
        if redis.is_running():
            lines.append(await redis_line(redis.url, f"embedded, running ({redis.url})"))
        else:
            lines.append(bundled_redis_line(redis))
    return lines


def main() -> None:
    for line in asyncio.run(collect(get_settings())):
        print(line)


if __name__ == "__main__":
    main()
