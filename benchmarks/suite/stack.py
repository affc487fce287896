"""The suite's stack: the search benchmark's PostgreSQL and Redis, a real worker pair, the API and
the floor app, in the topology of the targets: the API (or the floor app) alone on one CPU, the
rest on the other.

Settings are production's (``APP_ENV=production``: JSON logs at INFO, no debug, SMTP refused in
favour of ``MAIL_BACKEND=file``, payments through Paystack with a secret made up per run and an
address nothing listens on; no scenario starts a payment). Limits that would refuse a load test's
traffic from one address are raised (logins, photo searches and uploads per client), and access
tokens live 2 hours so one login per shopper lasts the whole run.

Pinning: once the dataset is ready, this process (the load generator; its children inherit it:
Redis, the workers, wrk, pgbench) and PostgreSQL (the postmaster, so every backend forked later,
and the backends already running) go on CPU 0; the API and the floor app are started under
``taskset -c <last CPU>``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil

from benchmarks.search_quality.stack import SearchStack, _tree, log
from core.settings import load_settings
from devstack.up import api_command

INFERENCE_WORKER = "worker-inference"
OTHER_WORKER = "worker-other"
OTHER_QUEUES = "critical,emails,analytics"
API = "api"
FLOOR = "floor"
RAISED_LIMITS = {
    "ACCESS_TOKEN_TTL_SECONDS": "7200",
    "SEARCH_IMAGE_PER_MINUTE": "1000000",
    "MEASUREMENT_UPLOADS_PER_HOUR": "1000000",
    # Each endpoint is compared with its floor, which builds every answer: so does the API here
    # (ETags are still computed). The page cache's own effect is the browsing mix's to show.
    "PAGE_CACHE_MAX_PAGES": "0",
}
PAGE_CACHE = "PAGE_CACHE_MAX_PAGES"


class SuiteStack(SearchStack):
    def __init__(self, root: Path) -> None:
        self.catalog_database = "none"  # set once the dataset is known; the parent's init reads it
        super().__init__(root)
        cpus = sorted(os.sched_getaffinity(0))
        self.api_cpus = cpus[-1:]
        self.rest_cpus = cpus[:-1] or cpus

    def media_dir(self, database: str) -> Path:
        # Working copies serve the catalog's photos, stored under the catalog database's name.
        return super().media_dir(self.catalog_database)

    def environment(self, database: str) -> dict[str, str]:
        return {**self._environment(database, "production"), **RAISED_LIMITS}

    def process_env(self, database: str) -> dict[str, str]:
        return {**os.environ, **self.environment(database), "PYTHONUNBUFFERED": "1"}

    # --- pinning -------------------------------------------------------------------------------
    def pin_rest(self) -> dict[str, Any]:
        """This process and PostgreSQL on the non-API CPUs (see the module docstring)."""
        for root in (os.getpid(), self.postmaster_pid()):
            for process in _tree(root):
                with contextlib.suppress(psutil.Error):
                    process.cpu_affinity(self.rest_cpus)
        return self.pinning()

    def pinning(self) -> dict[str, Any]:
        return {
            "api_and_floor_app": self.api_cpus,
            "postgres_redis_workers_load_generators": self.rest_cpus,
            "how": "taskset -c for the API and the floor app; sched_setaffinity for this process "
            "(inherited by Redis, the workers, wrk and pgbench) and every PostgreSQL process",
        }

    def taskset(self, cpus: list[int]) -> list[str]:
        return ["taskset", "-c", ",".join(map(str, cpus))]

    # --- processes -------------------------------------------------------------------------------
    def start_workers(self, database: str) -> None:
        env = self.process_env(database)
        py = sys.executable
        self.spawn(INFERENCE_WORKER, [py, "-m", "tasks.runtime.worker", "--queues", "inference"], env, 35)
        self.spawn(OTHER_WORKER, [py, "-m", "tasks.runtime.worker", "--queues", OTHER_QUEUES], env, 35)
        if not self.wait_for_log(INFERENCE_WORKER, ('"models loaded"', '"worker started"'), timeout=240):
            self.print_log_tails()
            raise RuntimeError("the inference worker did not start")

    def start_api_pinned(self, database: str, *, page_cache: bool = False) -> str:
        """The API (granian, one worker, uvloop) on the API CPU; returns its base URL.
        ``page_cache``: with its page cache at the default size (the browsing mix)."""
        env = self.process_env(database)
        if page_cache:  # the API's default instead of RAISED_LIMITS' none
            del env[PAGE_CACHE]
        settings = load_settings(self.environment(database), dotenv=None)
        self.spawn(API, self.taskset(self.api_cpus) + api_command(settings, workers=1), env, 15)
        if not self.wait_ready(settings, timeout=90):
            self.print_log_tails()
            raise RuntimeError(f"the API on database {database} did not become ready")
        return f"http://{settings.api_host}:{settings.api_port}"

    def start_floor(self, database: str, port: int) -> str:
        """The floor app, served by the same granian command on the same CPU."""
        settings = load_settings(self.environment(database), dotenv=None)
        command = api_command(settings, workers=1)
        command[command.index("api.app:create_app")] = "benchmarks.suite.floor:create_app"
        command[command.index("--port") + 1] = str(port)
        self.spawn(FLOOR, self.taskset(self.api_cpus) + command, self.process_env(database), 10)
        if not self.wait_for_http(f"http://127.0.0.1:{port}/health", 60):
            self.print_log_tails()
            raise RuntimeError("the floor app did not start")
        return f"http://127.0.0.1:{port}"

    def wait_for_http(self, url: str, timeout: float) -> bool:
        import time  # noqa: PLC0415
        import urllib.request  # noqa: PLC0415

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(url, timeout=2) as response,  # noqa: S310  # our loopback URL
            ):
                if response.status == 200:
                    return True
            time.sleep(0.25)
        return False

    def pid_of(self, name: str) -> int | None:
        running = [c for c in self.children if c.name == name and c.process.poll() is None]
        return running[-1].process.pid if running else None

    def server_pid(self, name: str) -> int | None:
        """The granian worker process (the one serving requests) under ``name``'s process."""
        pid = self.pid_of(name)
        if pid is None:
            return None
        tree = _tree(pid)
        with contextlib.suppress(psutil.Error):
            tree.sort(key=lambda p: p.memory_info().rss)
        return tree[-1].pid if tree else pid

    def stop(self, name: str) -> None:
        for child in [c for c in self.children if c.name == name]:
            if child.process.poll() is None:
                child.process.terminate()
                try:
                    child.process.wait(child.stop_timeout)
                except subprocess.TimeoutExpired:
                    child.process.kill()
                    child.process.wait()
            log.info("stopped", process=name)
        self.children = [c for c in self.children if c.name != name]
