"""The soak's stack: the benchmark suite's, unpinned, with a scheduler, a stand-in for Paystack and
workers that can be stopped and started again while the load runs.

Settings are the suite's (``APP_ENV=production``: JSON logs at INFO, no debug, file mail,
Paystack with a secret made up per run; logins, photo searches and uploads per client raised,
2-hour tokens) with ``PAYSTACK_BASE_URL`` pointing at the stand-in (``devstack/paystack.py``) on
loopback, so payments go the production way (initialize, the shopper pays at the checkout page,
signed ``charge.success`` webhook, the worker's verification call). ``TASK_REDELIVERY_IDLE_SECONDS``
is 65 instead of 120 (the least the settings allow with the production retry delays: over twice
``TASK_RETRY_MAX_DELAY_SECONDS``), so a message a SIGKILLed worker held is handed to its successor
sooner; nothing else changes.

Nothing is pinned: the machine is shared, and the soak is about errors, invariants and leaks, not
absolute latency.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from benchmarks.search_quality.stack import _tree, log
from benchmarks.suite.stack import API, INFERENCE_WORKER, OTHER_QUEUES, OTHER_WORKER, SuiteStack
from core.settings import load_settings
from devstack.services import free_port
from devstack.up import api_command

PAYSTACK = "paystack"
SCHEDULER = "scheduler"
WORKERS = {INFERENCE_WORKER: "inference", OTHER_WORKER: OTHER_QUEUES}
SOAK_SETTINGS = {"TASK_REDELIVERY_IDLE_SECONDS": "65"}
WORKER_STOP_SECONDS = 35.0  # the worker's own --shutdown-timeout is 30 s


class SoakStack(SuiteStack):
    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.paystack_port = free_port()
        # Role -> the name of its running incarnation ("worker-inference", "worker-inference.2", ...).
        self.current: dict[str, str] = {}
        self.started_at: dict[str, float] = {}  # incarnation -> time.monotonic() at spawn
        self.generations: dict[str, int] = {}

    @property
    def paystack_secret(self) -> str:
        return self._paystack_secret

    @property
    def mail_dir(self) -> Path:
        return self.root / "mail"

    def environment(self, database: str) -> dict[str, str]:
        return {
            **super().environment(database),
            "PAYSTACK_BASE_URL": f"http://127.0.0.1:{self.paystack_port}",
            **SOAK_SETTINGS,
        }

    def note(self) -> str:
        return (
            "APP_ENV=production (JSON logs at INFO, no debug), one granian API worker, one inference "
            "worker (queue inference), one worker for critical,emails,analytics, one scheduler, PostgreSQL "
            "and Redis, none pinned; PAYMENT_PROVIDER=paystack against a stand-in on loopback "
            "(devstack/paystack.py: initialize, checkout, verify, refund); MAIL_BACKEND=file; raised for "
            "one-address load: ACCESS_TOKEN_TTL_SECONDS, LOGIN_MAX_ATTEMPTS_PER_IP, SEARCH_IMAGE_PER_MINUTE, "
            "MEASUREMENT_UPLOADS_PER_HOUR; "
            "TASK_REDELIVERY_IDLE_SECONDS=65 (production 120) so a killed worker's messages are redelivered "
            "within the run"
        )

    # --- processes -----------------------------------------------------------------------------
    def _spawn(self, name: str, args: list[str], database: str, stop_timeout: float) -> None:
        self.spawn(name, args, self.process_env(database), stop_timeout)
        self.started_at[name] = time.monotonic()

    def start_paystack(self, database: str) -> None:
        # No webhook URL: the driver delivers each webhook itself (and some twice).
        args = [sys.executable, "-m", "devstack.paystack", "--port", str(self.paystack_port)]
        self._spawn(PAYSTACK, args, database, 5)
        if not self.wait_for_http(f"http://127.0.0.1:{self.paystack_port}/_stats", 30):
            self.print_log_tails()
            raise RuntimeError("the Paystack stand-in did not start")

    def spawn_worker(self, role: str, database: str) -> str:
        """Start an incarnation of ``role`` (not waiting for it); returns its name."""
        self.generations[role] = self.generations.get(role, 0) + 1
        name = role if self.generations[role] == 1 else f"{role}.{self.generations[role]}"
        args = [sys.executable, "-m", "tasks.runtime.worker", "--queues", WORKERS[role]]
        self._spawn(name, args, database, WORKER_STOP_SECONDS)
        self.current[role] = name
        return name

    def worker_ready(self, name: str) -> bool:
        needles = (
            ('"models loaded"', '"worker started"')
            if name.startswith(INFERENCE_WORKER)
            else ('"worker started"',)
        )
        text = self.log_text(name)
        return all(needle in text for needle in needles)

    def start_all(self, database: str) -> str:
        """Paystack stand-in, both workers (models loaded), the scheduler and the API; its URL."""
        self.start_paystack(database)
        for role in WORKERS:
            self.spawn_worker(role, database)
        self._spawn(SCHEDULER, [sys.executable, "-m", "tasks.runtime.worker", "--scheduler"], database, 10)
        deadline = time.monotonic() + 240
        while not all(self.worker_ready(self.current[r]) for r in WORKERS):
            if time.monotonic() > deadline or any(c.process.poll() is not None for c in self.children):
                self.print_log_tails()
                raise RuntimeError("the workers did not start")
            time.sleep(0.25)
        settings = load_settings(self.environment(database), dotenv=None)
        self._spawn(API, api_command(settings, workers=1), database, 15)
        if not self.wait_ready(settings, timeout=90):
            self.print_log_tails()
            raise RuntimeError(f"the API on database {database} did not become ready")
        return f"http://{settings.api_host}:{settings.api_port}"

    def retire(self, role: str) -> str:
        """``role``'s running incarnation, no longer its current one (so a dying process's RSS is
        not sampled) until ``spawn_worker`` starts the next; call it on the event loop's thread."""
        return self.current.pop(role)

    def stop_worker(self, name: str, sig: signal.Signals) -> dict[str, Any]:
        """Stop the incarnation ``name`` with ``sig`` (SIGKILL: every process of its tree at once,
        as an OOM kill or a lost machine would) and wait for it; blocking."""
        child = next(c for c in self.children if c.name == name)
        tree = _tree(child.process.pid)
        started = time.monotonic()
        if sig == signal.SIGKILL:
            for process in tree:
                with contextlib.suppress(psutil.Error):
                    process.kill()
        else:
            child.process.send_signal(sig)
        forced = False
        try:
            child.process.wait(child.stop_timeout)
        except subprocess.TimeoutExpired:
            forced = True
            for process in _tree(child.process.pid):
                with contextlib.suppress(psutil.Error):
                    process.kill()
            child.process.wait()
        # taskiq's worker processes end with their parent; wait for them too.
        _gone, alive = psutil.wait_procs(tree, timeout=5)
        for process in alive:
            with contextlib.suppress(psutil.Error):
                process.kill()
        self.children = [c for c in self.children if c is not child]
        log.info("worker stopped", process=name, signal=sig.name, exit_code=child.process.returncode)
        return {
            "process": name,
            "exit_code": child.process.returncode,
            "stop_seconds": round(time.monotonic() - started, 2),
            "killed_after_timeout": forced,
        }

    def cpu_groups(self) -> dict[str, list[int]]:
        """Root pids of the processes whose CPU the report tells apart from other programs'."""
        workers = [self.pid_of(name) for name in [*self.current.values(), SCHEDULER]]
        return {
            "api": [p for p in [self.pid_of(API)] if p is not None],
            "workers": [p for p in workers if p is not None],
            "postgres": [p for p in [self.postmaster_pid()] if p is not None],
        }

    def rss_targets(self) -> dict[str, tuple[str, int]]:
        """Role -> (incarnation, pid of its root process) for the API and each worker."""
        out = {}
        api = self.pid_of(API)
        if api is not None:
            out["api"] = ("api", api)
        for role, name in self.current.items():
            pid = self.pid_of(name)
            if pid is not None:
                out[role] = (name, pid)
        return out
