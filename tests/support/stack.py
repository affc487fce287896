"""Real services and processes for the tests: embedded PostgreSQL/Redis, taskiq workers."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import psutil

from devstack.secrets import new_secrets

ROOT = Path(__file__).resolve().parents[2]

# Secrets of this test run, generated as `up` generates them for a data directory: every process
# of the run (the in-process apps, worker and API processes) signs and verifies with them.
TEST_SECRETS = new_secrets()

# Timings that keep the worker tests short; production defaults are much longer.
WORKER_TEST_ENV = {
    "TASK_REDELIVERY_IDLE_SECONDS": "4",
    "TASK_RETRY_BASE_DELAY_SECONDS": "0.4",
    "TASK_RETRY_MAX_DELAY_SECONDS": "1.5",
    "OUTBOX_SWEEP_MIN_AGE_SECONDS": "0",
    # The platform's default shipping is free in tests, so order totals equal their items' prices
    # unless a test gives a store a shipping profile (tests/test_shipping.py prices shipping).
    "SHIPPING_DEFAULT_PRICE": "0",
    "SHIPPING_DEFAULT_PER_EXTRA_ITEM": "0",
    # Workers of the tests serve no metrics unless a test asks (they would all want one port).
    "WORKER_METRICS_PORT": "0",
}


class WorkerProcess:
    """``python -m tasks.runtime.worker`` with the test task module, as a real child process tree."""

    def __init__(
        self,
        env: Mapping[str, str],
        log_path: Path,
        queues: str = "all",
        *,
        scheduler: bool = False,
        processes: int = 1,
    ) -> None:
        self.env = dict(env)
        self.log_path = log_path
        self.queues = queues
        self.scheduler = scheduler
        self.processes = processes
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        log = self.log_path.open("ab")
        role = (
            ["--scheduler"]
            if self.scheduler
            else ["--queues", self.queues, "--shutdown-timeout", "5", "--processes", str(self.processes)]
        )
        self.process = subprocess.Popen(  # our own module and arguments
            [sys.executable, "-m", "tasks.runtime.worker", *role, "--module", "tests.support.worker_tasks"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return self

    def _tree(self) -> list[psutil.Process]:
        if self.process is None:
            return []
        try:
            parent = psutil.Process(self.process.pid)
            return [*parent.children(recursive=True), parent]
        except psutil.NoSuchProcess:
            return []

    def kill(self) -> None:
        """SIGKILL every process of the worker at once, as a machine or OOM kill would."""
        for proc in self._tree():
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.send_signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(10)

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        # taskiq's child processes exit with their parent; make sure of it.
        deadline = time.monotonic() + 5
        for proc in self._tree():
            while proc.is_running() and time.monotonic() < deadline:
                time.sleep(0.05)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def worker_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "APP_ENV": "test",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "json",
        "PYTHONUNBUFFERED": "1",
        **TEST_SECRETS,
        **WORKER_TEST_ENV,
        **extra,
    }
