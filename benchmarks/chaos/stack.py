"""The fault runs' own stack, and the faults done to it.

Everything lives in a throwaway directory (``--data-dir`` keeps it): an embedded PostgreSQL +
pgvector (its own data directory, initialised for the run), an embedded Redis on a free port
with its append-only file on (production keeps Redis data across a restart; without it a
restart would lose every queued job by design), migrations, then the API on granian (one
worker) and real ``python -m tasks.runtime.worker`` processes, one per queue so that killing one kills
exactly that queue's consumer, and the scheduler (outbox sweep, unpaid-order expiry).

Processes are started from the main thread only: each child gets SIGTERM when the thread that
started it ends (``die_with_parent``), so one started from a worker thread dies with that thread.
Waiting for them (and stopping them) may happen in other threads.

Payments go to Paystack the production way (``PAYMENT_PROVIDER=paystack``), here a stand-in for
its API (``devstack/paystack.py``) served from a thread of the chaos process on loopback: faults
pay at it, then deliver the webhook themselves (or drop it).

Timings are shortened so a run takes minutes: a dead worker's messages are redelivered after
``TASK_REDELIVERY_IDLE_SECONDS`` (5 s), the outbox is swept every 2 s, unpaid orders are checked
for expiry every 2 s, and payments still waiting for their webhook 3 s after they started are
reconciled with the provider every 2 s. The retry delays keep their production shape
(exponential, capped under half the redelivery time).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from benchmarks.measurement_flow import BenchStack, bench_environment
from core.logging import get_logger
from core.settings import Settings, load_settings
from db import migrate
from devstack.embedded_redis import EmbeddedRedis
from devstack.paystack import PaystackStandIn
from devstack.services import EmbeddedPostgres, die_with_parent
from devstack.up import Child, api_command

log = get_logger("benchmarks.chaos")

API = "api"
SCHEDULER = "scheduler"
QUEUES = ("inference", "critical", "emails", "analytics")
POISON_MODULE = "benchmarks.chaos.poison_task"

CHAOS_ENVIRONMENT = {
    "TASK_REDELIVERY_IDLE_SECONDS": "5",
    "TASK_RETRY_BASE_DELAY_SECONDS": "1.0",
    "TASK_RETRY_MAX_DELAY_SECONDS": "2.0",
    "OUTBOX_SWEEP_INTERVAL_SECONDS": "2",
    "OUTBOX_SWEEP_MIN_AGE_SECONDS": "1",
    "ORDER_EXPIRY_INTERVAL_SECONDS": "2",
    "PAYMENT_RECONCILE_AFTER_SECONDS": "3",
    "PAYMENT_RECONCILE_INTERVAL_SECONDS": "2",
    "ACCESS_TOKEN_TTL_SECONDS": "7200",
    "LOGIN_MAX_ATTEMPTS_PER_IP": "1000000",
    "LOGIN_MAX_FAILURES_PER_ACCOUNT": "1000000",
    # A statement waiting on a lock held by a killed client gives up long before the client does.
    "DB_STATEMENT_TIMEOUT_MS": "5000",
    # The poison-message fault: its job kills its worker; parked after this many deliveries.
    "CHAOS_POISON_TASK": "1",
    "TASK_DEAD_LETTER_AFTER_DELIVERIES": "3",
}


def worker_name(queue: str) -> str:
    return f"worker-{queue}"


def process_tree(pid: int) -> list[psutil.Process]:
    try:
        parent = psutil.Process(pid)
        return [parent, *parent.children(recursive=True)]
    except psutil.Error:
        return []


class ChaosStack(BenchStack):
    """PostgreSQL, Redis, the API, a worker per queue and the scheduler, each restartable."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)  # the embedded PostgreSQL runs as its own user when started by root
        self.environment = {**bench_environment(self.root), **CHAOS_ENVIRONMENT}
        secret = load_settings(self.environment, dotenv=None).paystack_secret_key.reveal()
        self.paystack = PaystackStandIn(secret)  # its port is bound now; it serves from start()
        self.environment |= {"PAYMENT_PROVIDER": "paystack", "PAYSTACK_BASE_URL": self.paystack.base_url}
        super().__init__(load_settings(self.environment, dotenv=None))
        self.incarnations: dict[str, int] = {}
        self.queues: tuple[str, ...] = ()

    # --- services -------------------------------------------------------------------------
    def start(self, queues: tuple[str, ...] = QUEUES, *, scheduler: bool = True) -> Settings:
        """Services, migrations, the workers of ``queues``, the scheduler and the API.

        Raises:
            RuntimeError: a process did not come up (the log tails are printed).
        """
        self.queues = queues
        self.paystack.start()
        self.settings = self.start_services()
        migrate.upgrade(self.settings)
        for queue in queues:
            self.spawn_worker(queue)
        if scheduler:
            self.spawn_process(SCHEDULER, [sys.executable, "-m", "tasks.runtime.worker", "--scheduler"], 10)
        self.start_api()
        for queue in queues:
            self.wait_worker(queue)
        return self.settings

    @property
    def postgres(self) -> EmbeddedPostgres:
        if self.pg is None:
            raise RuntimeError("start() was not called")
        return self.pg

    @property
    def redis_server(self) -> EmbeddedRedis:
        if self.redis is None:
            raise RuntimeError("start() was not called")
        return self.redis

    def stop_redis(self) -> None:
        """SIGTERM: Redis writes its append-only file and exits; clients see refused connections."""
        self.redis_server.stop()

    def start_redis(self) -> None:
        self.redis_server.start()

    def stop_postgres(self) -> None:
        """A fast shutdown, as a restart by an operator or a failover does: open transactions
        are rolled back and every connection is closed."""
        self.postgres.stop()

    def start_postgres(self) -> None:
        """The same server again, on the same socket."""
        self.postgres.start()

    def postmaster_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int((self.postgres.pgdata / "postmaster.pid").read_text().split()[0])
        return None

    # --- processes ------------------------------------------------------------------------
    def process_env(self) -> dict[str, str]:
        return {
            **os.environ,
            **self.environment,
            "DATABASE_URL": self.settings.require_database_url(),
            "REDIS_URL": self.settings.require_redis_url(),
            "PYTHONUNBUFFERED": "1",
        }

    def spawn_process(self, name: str, args: list[str], stop_timeout: float) -> Child:
        """Start ``args`` as ``name``; a name started again appends to the same log file."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.incarnations[name] = self.incarnations.get(name, 0) + 1
        with (self.log_dir / f"{name}.log").open("ab") as out:
            process = subprocess.Popen(  # noqa: S603  # our own interpreter and arguments
                args,
                env=self.process_env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,  # noqa: PLW1509  # no threads of ours run while spawning
            )
        child = Child(name, process, stop_timeout)
        self.children.append(child)
        log.info("started", process=name, pid=process.pid)
        return child

    def spawn_worker(self, queue: str) -> Child:
        return self.spawn_process(
            worker_name(queue),
            # The chaos-only job of the poison-message fault (benchmarks/chaos/poison_task.py).
            [sys.executable, "-m", "tasks.runtime.worker", "--queues", queue, "--module", POISON_MODULE],
            35,
        )

    def wait_worker(self, queue: str, timeout: float = 180.0) -> None:
        """Until the newest worker of ``queue`` logged that it started (models loaded, for inference).

        Raises:
            RuntimeError: it did not (its log's tail is printed).
        """
        name = worker_name(queue)
        needle = '"worker started"'
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log_text(name).count(needle) >= self.incarnations.get(name, 0):
                return
            if self.running(name) is None:
                break
            time.sleep(0.1)
        self.print_log_tails()
        raise RuntimeError(f"{name} did not start")

    def restart_worker(self, queue: str) -> None:
        self.spawn_worker(queue)
        self.wait_worker(queue)

    def start_api(self, timeout: float = 60.0) -> str:
        """Start the API (again) on the same port; its base URL once it is ready.

        Raises:
            RuntimeError: it did not become ready.
        """
        self.spawn_api()
        return self.wait_api(timeout)

    def spawn_api(self) -> None:
        self.spawn_process(API, api_command(self.settings, workers=1), 15)

    def wait_api(self, timeout: float = 60.0) -> str:
        """The API's base URL once it answers ready (safe to call from another thread).

        Raises:
            RuntimeError: it did not become ready.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.running(API) is None:
                break
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.base_url}/health/ready", timeout=2).status_code == 200:
                    return self.base_url
            time.sleep(0.1)
        self.print_log_tails()
        raise RuntimeError("the API did not become ready")

    @property
    def base_url(self) -> str:
        return f"http://{self.settings.api_host}:{self.settings.api_port}"

    def running(self, name: str) -> Child | None:
        alive = [c for c in self.children if c.name == name and c.process.poll() is None]
        return alive[-1] if alive else None

    def pids(self) -> dict[str, int]:
        """Process id of every running process, by name (a restart changes it)."""
        return {c.name: c.process.pid for c in self.children if c.process.poll() is None}

    def kill(self, name: str) -> int:
        """SIGKILL every process of ``name``'s tree at once, as a machine or OOM kill would;
        returns how many processes died."""
        child = self.running(name)
        if child is None:
            raise RuntimeError(f"{name} is not running")
        tree = process_tree(child.process.pid)
        for process in tree:
            with contextlib.suppress(psutil.Error):
                process.send_signal(signal.SIGKILL)
        child.process.wait(10)
        psutil.wait_procs(tree, timeout=10)
        self.children.remove(child)
        log.info("killed", process=name, pid=child.process.pid, processes=len(tree))
        return len(tree)

    def stop_process(self, name: str) -> None:
        """Stop ``name`` the polite way (SIGTERM: running tasks finish or are handed back)."""
        child = self.running(name)
        if child is None:
            return
        child.process.send_signal(signal.SIGTERM)
        try:
            child.process.wait(child.stop_timeout)
        except subprocess.TimeoutExpired:
            self.kill(name)
            return
        psutil.wait_procs(process_tree(child.process.pid), timeout=5)
        self.children.remove(child)

    def heal(self) -> list[str]:
        """Start again whatever a fault left stopped (Redis, PostgreSQL, the API, a worker)."""
        restarted = []
        if self.redis is not None and self.redis.process is None:
            self.start_redis()
            restarted.append("redis")
        if self.postmaster_pid() is None:
            self.start_postgres()
            restarted.append("postgres")
        for queue in self.queues:
            if self.running(worker_name(queue)) is None:
                self.restart_worker(queue)
                restarted.append(worker_name(queue))
        if self.running(API) is None:
            self.start_api()
            restarted.append(API)
        return restarted

    def stop(self) -> None:
        self.stop_processes()
        self.stop_services()
        self.paystack.stop()


def new_root() -> Path:
    """A fresh throwaway directory for a stack."""
    return Path(tempfile.mkdtemp(prefix="fashionistar-chaos-"))
