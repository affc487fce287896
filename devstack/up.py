"""``just up``: the whole stack in one terminal, stopped cleanly with Ctrl-C.

Without ``DATABASE_URL`` / ``REDIS_URL`` it starts embedded PostgreSQL 18 + pgvector and Redis
under ``DATA_DIR`` (default ``.data``), reusing them on the next run. Then it applies
migrations, writes demo data into an empty database, starts the worker (every queue), the
scheduler and the API, waits until ``/health/ready`` answers 200 and prints the URLs.
Ctrl-C (or SIGTERM) stops the API first, then the scheduler and worker (finishing running
tasks), then Redis and PostgreSQL; children die with this process if it is killed, so nothing
is orphaned.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import msgspec

from core.logging import configure_logging, get_logger
from core.settings import Settings, get_settings
from db import migrate
from devstack.demo.catalog import seed_catalog
from devstack.embedded_redis import EmbeddedRedis
from devstack.secrets import ensure_secrets
from devstack.seed import DEMO_ACCOUNTS, DEMO_PASSWORD, seed_demo_data
from devstack.services import DataDirectoryError, EmbeddedPostgres, die_with_parent, port_is_free

log = get_logger("devstack")

DEV_DATABASE = "fashionistar"
DEMO_PRODUCTS = 500


def api_command(settings: Settings, workers: int | None = None) -> list[str]:
    """The API under granian, as every stack here runs it (``API_WORKERS`` unless ``workers``)."""
    granian = str(Path(sys.executable).with_name("granian"))
    return [
        granian, "--interface", "asgi", "--factory", "api.app:create_app",
        "--host", settings.api_host, "--port", str(settings.api_port),
        "--workers", str(workers or settings.api_workers), "--loop", "uvloop",
        "--no-ws", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    stop_timeout: float


class Stack:
    def __init__(self, settings: Settings, *, workers: int, with_scheduler: bool) -> None:
        self.settings = settings
        self.workers = workers
        self.with_scheduler = with_scheduler
        self.pg: EmbeddedPostgres | None = None
        self.redis: EmbeddedRedis | None = None
        self.children: list[Child] = []
        self.stopping = threading.Event()

    # --- services -------------------------------------------------------------------------
    def start_services(self) -> Settings:
        settings = self.settings
        data_dir = settings.data_dir.resolve()
        if not settings.database_url:
            self.pg = EmbeddedPostgres(data_dir / "pg")
            self.pg.start()
            self.pg.ensure_database(DEV_DATABASE)
            settings = replace_settings(settings, database_url=self.pg.url(DEV_DATABASE))
        if not settings.redis_url:
            self.redis = EmbeddedRedis(data_dir / "redis", settings.embedded_redis_port)
            self.redis.start()
            settings = replace_settings(settings, redis_url=self.redis.url)
        return settings

    def stop_services(self) -> None:
        if self.redis is not None:
            self.redis.stop()
        if self.pg is not None:
            self.pg.stop()

    # --- processes ------------------------------------------------------------------------
    def spawn(self, name: str, args: list[str], env: dict[str, str], stop_timeout: float) -> None:
        # preexec_fn: the supervisor is single-threaded while it spawns.
        process = subprocess.Popen(args, env=env, preexec_fn=die_with_parent)  # noqa: S603, PLW1509
        self.children.append(Child(name, process, stop_timeout))
        log.info("started", process=name, pid=process.pid)

    def start_processes(self, settings: Settings) -> None:
        env = {
            **os.environ,
            "DATABASE_URL": settings.require_database_url(),
            "REDIS_URL": settings.require_redis_url(),
            "APP_ENV": settings.app_env,
            "PYTHONUNBUFFERED": "1",
        }
        py = sys.executable
        for index in range(self.workers):
            # The workers share this host: each serves its metrics on a port of its own.
            metrics_port = settings.worker_metrics_port + index if settings.worker_metrics_port > 0 else 0
            worker_env = {**env, "WORKER_METRICS_PORT": str(metrics_port)}
            self.spawn(f"worker-{index + 1}", [py, "-m", "tasks.runtime.worker"], worker_env, stop_timeout=35)
        if self.with_scheduler:
            self.spawn("scheduler", [py, "-m", "tasks.runtime.worker", "--scheduler"], env, stop_timeout=10)
        self.spawn("api", api_command(settings), env, stop_timeout=15)

    def worker_metrics_line(self, settings: Settings) -> str:
        if settings.worker_metrics_port <= 0:
            return ""
        first = settings.worker_metrics_port
        ports = str(first) if self.workers == 1 else f"{first}-{first + self.workers - 1}"
        return f"    Workers    http://{settings.worker_metrics_host}:{ports}/metrics\n"

    def stop_processes(self) -> None:
        # The API first (no new work), then the scheduler and workers (running tasks finish).
        for child in sorted(self.children, key=lambda c: 0 if c.name == "api" else 1):
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
                try:
                    child.process.wait(child.stop_timeout)
                except subprocess.TimeoutExpired:
                    log.warning("did not stop in time; killing", process=child.name)
                    child.process.kill()
                    child.process.wait()
            log.info("stopped", process=child.name, exit_code=child.process.returncode)

    def wait_ready(self, settings: Settings, timeout: float = 60.0) -> bool:
        url = f"http://{settings.api_host}:{settings.api_port}/health/ready"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stopping.is_set():
            if any(c.process.poll() is not None for c in self.children):
                return False
            try:
                with urllib.request.urlopen(url, timeout=2) as response:  # our own loopback URL
                    if response.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        return False

    def run(self) -> int:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.stopping.set())
        exit_code = 0
        try:
            try:
                settings = self.start_services()
            except DataDirectoryError as exc:
                print(f"\n  {exc}\n", file=sys.stderr, flush=True)  # the step the person has to take
                return 1
            if not port_is_free(settings.api_port, settings.api_host):
                log.error("API port is taken; set API_PORT", port=settings.api_port)
                return 1
            log.info("applying migrations")
            migrate.upgrade(settings)
            if asyncio.run(seed_demo_data(settings)):
                log.info("seeded demo accounts", password=DEMO_PASSWORD)
            if asyncio.run(seed_catalog(settings, products=DEMO_PRODUCTS)):
                log.info("seeded the demo catalog", products=DEMO_PRODUCTS)
            self.start_processes(settings)
            if not self.wait_ready(settings):
                if self.stopping.is_set():
                    return 0
                log.error("the stack did not become ready; see the log lines above")
                return 1
            base = f"http://{settings.api_host}:{settings.api_port}"
            print(  # the one thing a person at the terminal needs
                f"\n  Fashionistar is up.\n"
                f"    API        {base}/api/v1\n"
                f"    API docs   {base}/schema\n"
                f"    OpenAPI    {base}/schema/openapi.json\n"
                f"    Health     {base}/health/ready\n"
                f"    Metrics    {base}/metrics\n"
                f"{self.worker_metrics_line(settings)}"
                f"    Data       {settings.data_dir.resolve()}\n"
                f"    Demo users {', '.join(a[0] for a in DEMO_ACCOUNTS)} (password {DEMO_PASSWORD})\n"
                f"  Press Ctrl-C to stop.\n",
                flush=True,
            )
            while not self.stopping.wait(0.5):
                dead = [c for c in self.children if c.process.poll() is not None]
                if dead:
                    log.error("a process exited; stopping the stack", process=dead[0].name,
                              exit_code=dead[0].process.returncode)  # fmt: skip
                    exit_code = 1
                    break
        finally:
            log.info("stopping")
            self.stop_processes()
            self.stop_services()
        return exit_code


def replace_settings(settings: Settings, **changes: object) -> Settings:
    return msgspec.structs.replace(settings, **changes)


def cli_settings() -> Settings:
    """Settings for a command run beside the dev stack: with no ``DATABASE_URL``, the stack's
    embedded database (started here if ``up`` is not running)."""
    settings = get_settings()
    configure_logging(level=settings.log_level, fmt=settings.log_format, process="cli")
    if settings.database_url:
        return settings
    embedded = EmbeddedPostgres(settings.data_dir / "pg")
    embedded.start()
    return replace_settings(settings, database_url=embedded.url(DEV_DATABASE))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the Fashionistar stack locally.")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (all queues)")
    parser.add_argument("--no-scheduler", action="store_true")
    args = parser.parse_args(argv)
    # Secrets of their own for this data directory before anything reads the settings for good:
    # the children read the same file, so the API, workers and scheduler agree on the keys.
    secrets_file = ensure_secrets(get_settings().data_dir)
    get_settings.cache_clear()
    settings = get_settings()
    configure_logging(level=settings.log_level, fmt=settings.log_format, process="devstack")
    log.info("secrets of this data directory", file=str(secrets_file))
    stack = Stack(settings, workers=args.workers, with_scheduler=not args.no_scheduler)
    sys.exit(stack.run())


if __name__ == "__main__":
    main()
