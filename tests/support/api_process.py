"""The API as a real server process (granian, as every stack runs it), for tests that talk HTTP
over a socket: the OpenAPI fuzzer, which drives a real URL from its own threads."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from devstack.services import free_port
from tests.support.stack import ROOT


class ApiProcess:
    """``granian api.app:create_app`` on a free loopback port, with ``env`` as its whole environment."""

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        self.env = dict(env)
        self.log_path = log_path
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_within: float = 60.0) -> ApiProcess:
        granian = str(Path(sys.executable).with_name("granian"))
        log = self.log_path.open("ab")
        # fmt: off
        command = [
            granian, "--interface", "asgi", "--factory", "api.app:create_app",
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
            "--no-ws", "--no-access-log", "--log-level", "warning",
        ]
        # fmt: on
        self.process = subprocess.Popen(  # our own server and arguments
            command,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + ready_within
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the API exited:\n{self.log_text()[-4000:]}")
            try:
                if httpx.get(f"{self.base_url}/health/ready", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the API was not ready within {ready_within} s:\n{self.log_text()[-4000:]}")

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
