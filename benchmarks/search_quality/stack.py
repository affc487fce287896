"""The benchmark's own stack: PostgreSQL reused across runs, a throwaway Redis, one API at a time.

The embedded PostgreSQL keeps its data under ``<data dir>/pg`` (default ``.data/bench-search``),
one database per dataset, so a 100k-product dataset is built once and reused. Redis holds nothing
worth keeping (rate-limit counters), so each run starts its own on a free port in a temporary
directory. The API is granian with one worker, production settings (``APP_ENV=production``, JSON
logs at INFO, no debug), started against one dataset's database and stopped before the next.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import struct
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import psutil
from sqlalchemy.engine import make_url

from benchmarks.measurement_flow import BenchStack
from core.logging import get_logger
from core.settings import Settings, load_settings
from devstack.embedded_redis import EmbeddedRedis
from devstack.services import EmbeddedPostgres, free_port
from devstack.up import api_command

log = get_logger("benchmarks.search_quality")

API_PROCESS = "api"
# Logins of every benchmark shopper come from one address within a minute.
LOGIN_ATTEMPTS_PER_IP = 100_000


@dataclass(frozen=True)
class Timer:
    """Durations of named steps, in order, for the report."""

    steps: list[dict[str, Any]]

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        log.info("step started", step=name)
        try:
            yield
        finally:
            seconds = round(time.perf_counter() - started, 2)
            self.steps.append({"step": name, "seconds": seconds})
            log.info("step finished", step=name, seconds=seconds)


# --- asyncpg with pgvector's binary wire format --------------------------------------------------
def encode_vector(value: np.ndarray) -> bytes:
    """pgvector's binary form: int16 dimensions, int16 unused, float4s, all big-endian."""
    array = np.asarray(value, dtype=">f4").ravel()
    return struct.pack(">HH", array.size, 0) + array.tobytes()


def decode_vector(data: bytes) -> np.ndarray:
    dimensions = struct.unpack_from(">H", data)[0]
    decoded: np.ndarray = np.frombuffer(data, dtype=">f4", count=dimensions, offset=4).astype(np.float32)
    return decoded


def asyncpg_dsn(url: str) -> str:
    """The libpq form of a SQLAlchemy asyncpg URL (what asyncpg.connect takes)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextlib.asynccontextmanager
async def connect(url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection that sends and receives vectors as numpy arrays (binary, no text parsing) and
    plans every statement for its parameters (a cached generic plan would hide what the planner
    does with each query vector)."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.set_type_codec(
            "vector", schema="public", encoder=encode_vector, decoder=decode_vector, format="binary"
        )
        await conn.execute("SET plan_cache_mode = force_custom_plan")
        await conn.execute("SET statement_timeout = 0")
        yield conn
    finally:
        await conn.close()


def _tree(pid: int | None) -> list[psutil.Process]:
    if pid is None:
        return []
    try:
        parent = psutil.Process(pid)
        return [parent, *parent.children(recursive=True)]
    except psutil.Error:
        return []


# --- the stack -------------------------------------------------------------------------------------
class SearchStack(BenchStack):
    """PostgreSQL (reused), Redis (throwaway) and one API process at a time."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)  # the embedded PostgreSQL runs as its own user when started by root
        self._redis_dir = Path(tempfile.mkdtemp(prefix="fashionistar-bench-search-redis-"))
        self._redis_port = free_port()
        self._secret = secrets.token_hex(32)
        self._paystack_secret = secrets.token_hex(32)
        self._api_port = free_port()
        self.pg_was_running = False
        super().__init__(load_settings(self._environment(None, "dev"), dotenv=None))
        self.log_dir = self.root / "logs"

    # --- services -------------------------------------------------------------------------------
    def start_services(self) -> Settings:
        pgdata = self.root / "pg"
        self.pg_was_running = (pgdata / "postmaster.pid").exists()
        self.pg = EmbeddedPostgres(pgdata)
        self.pg.start()
        self.redis = EmbeddedRedis(self._redis_dir, self._redis_port, persistent=False)
        self.redis.start()
        return self.settings

    def stop_services(self) -> None:
        if self.redis is not None:
            self.redis.stop()
        shutil.rmtree(self._redis_dir, ignore_errors=True)
        # A server somebody else had running stays up; ours stops (its data stays for next time).
        if self.pg is not None and not self.pg_was_running:
            self.pg.stop()

    @property
    def postgres(self) -> EmbeddedPostgres:
        if self.pg is None:
            raise RuntimeError("start_services() was not called")
        return self.pg

    def postmaster_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int((self.root / "pg" / "postmaster.pid").read_text().split()[0])
        return None

    # --- settings per dataset -----------------------------------------------------------------------
    def media_dir(self, database: str) -> Path:
        return self.root / "media" / database

    def _environment(self, database: str | None, app_env: str) -> dict[str, str]:
        """Variables of a process working on ``database`` (None: no database yet)."""
        pg: EmbeddedPostgres | None = getattr(self, "pg", None)
        redis: EmbeddedRedis | None = getattr(self, "redis", None)
        return {
            "APP_ENV": app_env,
            "SECRET_KEY": self._secret,
            # Production takes payments through Paystack only: a key made up for this run, and an
            # address nothing listens on (no benchmark request starts a payment).
            "PAYMENT_PROVIDER": "paystack",
            "PAYSTACK_SECRET_KEY": self._paystack_secret,
            "PAYSTACK_BASE_URL": "http://127.0.0.1:9",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
            "DATA_DIR": str(self.root),
            "MEDIA_DIR": str(self.media_dir(database or "none")),
            "PRIVATE_MEDIA_DIR": str(self.root / "private"),
            "MAIL_BACKEND": "file",
            "MAIL_DIR": str(self.root / "mail"),
            "DATABASE_URL": pg.url(database) if database and pg is not None else "",
            "REDIS_URL": redis.url if redis is not None else "",
            "API_HOST": "127.0.0.1",
            "API_PORT": str(self._api_port),
            "API_WORKERS": "1",
            "LOGIN_MAX_ATTEMPTS_PER_IP": str(LOGIN_ATTEMPTS_PER_IP),
        }

    def dataset_settings(self, database: str) -> Settings:
        """Settings for this process's own work on ``database`` (seeding wants a non-production
        environment; everything else is as the API has it)."""
        return load_settings(self._environment(database, "dev"), dotenv=None)

    # --- the API ---------------------------------------------------------------------------------------
    def start_api(self, database: str) -> str:
        """Start the API on ``database`` and return its base URL.

        Raises:
            RuntimeError: it did not become ready (its log's tail is printed).
        """
        self.stop_api()
        env = {**os.environ, **self._environment(database, "production"), "PYTHONUNBUFFERED": "1"}
        settings = load_settings(self._environment(database, "production"), dotenv=None)
        self.spawn(API_PROCESS, api_command(settings, workers=1), env, 15)
        if not self.wait_ready(settings, timeout=60):
            self.print_log_tails()
            raise RuntimeError(f"the API on database {database} did not become ready")
        return f"http://{settings.api_host}:{settings.api_port}"

    def api_pid(self) -> int | None:
        running = [c for c in self.children if c.name == API_PROCESS and c.process.poll() is None]
        return running[-1].process.pid if running else None

    def pin_cpus(self) -> dict[str, list[int]] | None:
        """SPEC.md's topology: the API on the last CPU, this process (the load generator), Redis and
        PostgreSQL (the postmaster, so backends forked later inherit it, and every backend now) on
        the others. None when there is only one CPU or no API is running."""
        cpus = sorted(os.sched_getaffinity(0))
        api = self.api_pid()
        if len(cpus) < 2 or api is None:
            return None
        api_cpus, rest = cpus[-1:], cpus[:-1]
        placed: dict[str, list[int]] = {"api": api_cpus, "load generator, redis, postgres": rest}
        # Everything first, then the API's tree (a child of this process) moved to its own CPU.
        for root, wanted in ((os.getpid(), rest), (self.postmaster_pid(), rest), (api, api_cpus)):
            for process in _tree(root):
                with contextlib.suppress(psutil.Error):
                    process.cpu_affinity(wanted)
        return placed

    def unpin_cpus(self) -> None:
        """Every process of ours (and PostgreSQL) back on every CPU."""
        cpus = sorted(os.sched_getaffinity(0) | set(range(os.cpu_count() or 1)))
        for root in (os.getpid(), self.postmaster_pid()):
            for process in _tree(root):
                with contextlib.suppress(psutil.Error):
                    process.cpu_affinity(cpus)

    def stop_api(self) -> None:
        running = [c for c in self.children if c.process.poll() is None]
        self.stop_processes()
        self.children = [c for c in self.children if c not in running]
