"""Litestar's command line on this project: it finds the app through ``app.py``, lists its routes,
serves it with granian, and runs migrations with advanced-alchemy's ``database`` commands."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from core.settings import Settings
from db.config import VERSION_TABLE
from db.migrate import head_revisions
from devstack.services import free_port
from tests.support.stack import ROOT

pytestmark = pytest.mark.anyio

BASE_ENV = {"APP_ENV": "test", "PATH": "/usr/bin:/bin"}


def litestar(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``litestar ...`` from the repository root, as a person would type it. (``python -m``
    rather than the venv's script, so this checkout's packages are the ones imported.)"""
    return subprocess.run(
        [sys.executable, "-m", "litestar", *args],
        cwd=ROOT,
        env={**BASE_ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_litestar_finds_the_app_and_lists_its_routes() -> None:
    result = litestar("routes")
    assert result.returncode == 0, result.stderr
    for path in ("/api/v1/auth/login", "/api/v1/products", "/health/ready", "/metrics"):
        assert path in result.stdout


def test_litestar_has_the_database_commands_and_a_granian_run() -> None:
    database = litestar("database", "--help")
    assert database.returncode == 0, database.stderr
    for command in ("upgrade", "downgrade", "make-migrations", "show-current-revision"):
        assert command in database.stdout
    run = litestar("run", "--help")
    assert run.returncode == 0, run.stderr
    assert "granian" in run.stdout


@pytest.fixture
async def fresh_database_url(settings: Settings) -> AsyncIterator[str]:
    """A new, empty database on the test server, dropped afterwards."""
    name = f"fashionistar_cli_{uuid.uuid4().hex[:12]}"
    url = make_url(settings.database_url or "")
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


@pytest.mark.slow
async def test_litestar_database_upgrade_migrates_a_fresh_database(fresh_database_url: str) -> None:
    result = litestar("database", "upgrade", "--no-prompt", env={"DATABASE_URL": fresh_database_url})
    assert result.returncode == 0, result.stdout + result.stderr
    engine = create_async_engine(fresh_database_url)
    try:
        async with engine.connect() as conn:
            versions = (await conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))).scalars()
            assert frozenset(versions) == head_revisions()
            assert await conn.scalar(text("SELECT to_regclass('products') IS NOT NULL"))
            assert await conn.scalar(text("SELECT count(*) FROM pg_extension WHERE extname = 'vector'")) == 1
    finally:
        await engine.dispose()


@pytest.fixture
def served(settings: Settings) -> Iterator[str]:
    """``litestar run`` on a free port against the test database and Redis."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "litestar", "run", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env={
            **BASE_ENV,
            "DATABASE_URL": settings.database_url or "",
            "REDIS_URL": settings.redis_url or "",
            "MEDIA_DIR": str(settings.media_dir),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_litestar_run_serves_the_api(served: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            response = httpx.get(f"{served}/health/ready", timeout=5)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.25)
    assert response.status_code == 200, response.text
