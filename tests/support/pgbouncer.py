"""Debian's ``pgbouncer`` binary in front of the test PostgreSQL, with the shipped configuration.

The ``[pgbouncer]`` section comes from k8s/base/pgbouncer.yaml (pool mode and every other
setting), with only what differs on a test machine replaced: where it listens, client auth
(trust on loopback), no TLS to a local socket. ``[databases]`` points at the test database, plus
an alias of it limited to two server connections, where a test can make a client's next
transaction run on another server connection than its last one (the case that breaks prepared
statements cached per client connection).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from devstack.services import free_port
from tests.support import kube
from tests.support.stack import ROOT

OVERRIDES = {
    "listen_addr": "127.0.0.1",
    "auth_type": "trust",
    "server_tls_sslmode": "disable",
    "unix_socket_dir": "",
}


def binary() -> str | None:
    return shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if Path(p).exists()), None
    )


def shipped_settings() -> dict[str, str]:
    """The ``[pgbouncer]`` section of the ConfigMap the cluster runs."""
    config_map = kube.find(
        kube.load_documents(ROOT / "k8s/base/pgbouncer.yaml"), "ConfigMap", "fashionistar-pgbouncer"
    )
    assert config_map is not None
    ini = config_map["data"]["pgbouncer.ini"]
    section = ini.split("[pgbouncer]", 1)[1]
    values = {}
    for line in section.splitlines():
        if "=" in line and not line.lstrip().startswith(";"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


@dataclass(frozen=True)
class PgBouncer:
    port: int
    database: str
    settings: dict[str, str]

    def url(self, database: str | None = None) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database or self.database}"

    @property
    def two_connection_database(self) -> str:
        return f"{self.database}_pair"


@contextlib.contextmanager
def running(database_url: str, log_path: Path) -> Iterator[PgBouncer]:
    """PgBouncer for the database of ``database_url`` (a Unix socket directory or host:port)."""
    exe = binary()
    assert exe is not None
    url = make_url(database_url)
    query_host = url.query.get("host")
    socket_dir = query_host if isinstance(query_host, str) else None
    host = socket_dir or url.host or "127.0.0.1"
    server = f"host={host} port={url.port or 5432} dbname={url.database} user={url.username or 'postgres'}"
    if url.password:
        server += f" password={url.password}"
    port = free_port()
    settings = {**shipped_settings(), **OVERRIDES, "listen_port": str(port)}
    workdir = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    settings["auth_file"] = str(workdir / "userlist.txt")
    lines = ["[databases]", f"{url.database} = {server}", f"{url.database}_pair = {server} pool_size=2"]
    lines += ["", "[pgbouncer]", *(f"{k} = {v}" for k, v in settings.items())]
    (workdir / "pgbouncer.ini").write_text("\n".join(lines) + "\n")
    (workdir / "userlist.txt").write_text(f'"{url.username or "postgres"}" ""\n')
    command = [exe, str(workdir / "pgbouncer.ini")]
    if os.geteuid() == 0:
        # PgBouncer refuses to run as root: run it as the owner of PostgreSQL's socket directory
        # (or nobody), which must be able to read its files.
        owner = Path(socket_dir).stat().st_uid if socket_dir else pwd.getpwnam("nobody").pw_uid
        command[1:1] = ["-u", pwd.getpwuid(owner).pw_name]
        workdir.chmod(0o755)
        for path in workdir.iterdir():
            path.chmod(0o644)
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)  # our own binary and file
    try:
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited: {log_path.read_text()[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"pgbouncer did not listen: {log_path.read_text()[-2000:]}")
            time.sleep(0.05)
        yield PgBouncer(port=port, database=str(url.database), settings=settings)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(workdir, ignore_errors=True)
