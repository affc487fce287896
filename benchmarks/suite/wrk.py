"""Closed-loop maximum throughput with ``wrk`` (Debian package ``wrk``; ``lua/requests.lua``).

Closed loop: ``connections`` keep-alive connections each send their next request as soon as the
previous answer arrives, so the rate is whatever the server sustains; latency is from each
request's actual send (queueing before it is NOT counted; the open-loop runs count it). wrk runs
as one thread on the load-generator CPU. Counted as errors: connect/read/write failures, timeouts,
and answers with a status >= 400 (wrk's own definition).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LUA = Path(__file__).resolve().parent / "lua" / "requests.lua"
UNIQUE = "{unique}"  # a header value the Lua script replaces with a fresh value per request


@dataclass(frozen=True)
class WrkRequest:
    path: str
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""

    def line(self) -> str:
        """The request as a line of the Lua script's input file.

        Raises:
            ValueError: a field holds a tab or a newline, or a header holds "|".
        """
        header_parts = [*self.headers, *self.headers.values()]
        if any(c in part for part in (self.method, self.path, self.body, *header_parts) for c in "\t\n"):
            raise ValueError(f"a field of {self.method} {self.path} holds a tab or a newline")
        if any("|" in part for part in header_parts):
            raise ValueError(f"a header of {self.method} {self.path} holds '|'")
        headers = "|".join(f"{name}: {value}" for name, value in self.headers.items())
        return f"{self.method}\t{self.path}\t{headers}\t{self.body}"


def wrk_binary() -> str:
    """Raises RuntimeError when wrk is not installed."""
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is not installed: apt-get install -y wrk (Debian package)")
    return found


def parse_output(stdout: str) -> dict[str, Any]:
    """The ``WRK_JSON`` line of the Lua script's ``done()`` as the suite reports it (ms, req/s).

    Raises:
        ValueError: no such line (wrk failed before finishing).
    """
    line = next((ln for ln in stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if line is None:
        raise ValueError(f"wrk printed no result: {stdout[-400:]}")
    raw = json.loads(line.removeprefix("WRK_JSON "))
    seconds = raw["duration_us"] / 1e6
    errors = sum(raw["errors"].values())
    latency = {k: round(v / 1000, 2) for k, v in raw["latency_us"].items()}
    return {
        "requests": raw["requests"],
        "seconds": round(seconds, 2),
        "achieved_rate": round(raw["requests"] / seconds, 1) if seconds > 0 else None,
        "ok_rate": round((raw["requests"] - raw["errors"]["status"]) / seconds, 1) if seconds > 0 else None,
        "errors": errors,
        "errors_by_kind": {k: v for k, v in raw["errors"].items() if v},
        "latency_ms": {
            "p50": latency["p50"],
            "p95": latency["p95"],
            "p99": latency["p99"],
            "max": latency["max"],
            "mean": latency["mean"],
        },
    }


def run_wrk(
    base_url: str,
    requests: list[WrkRequest],
    *,
    seconds: float,
    connections: int,
    cpus: list[int],
    timeout_seconds: float = 10.0,
) -> dict[str, Any]:
    """One closed-loop run; raises RuntimeError when wrk fails."""
    with tempfile.NamedTemporaryFile("w", suffix=".tsv", prefix="wrk-requests-", delete=False) as out:
        out.write("\n".join(r.line() for r in requests) + "\n")
        path = out.name
    command = [
        "taskset",
        "-c",
        ",".join(map(str, cpus)),
        wrk_binary(),
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={timeout_seconds:g}s",
        "-s",
        str(LUA),
        base_url,
        "--",
        path,
    ]
    env = {**os.environ, "WRK_RUN_ID": secrets.token_hex(6)}
    try:
        done = subprocess.run(  # noqa: S603  # fixed binary and our arguments
            command, capture_output=True, text=True, env=env, timeout=seconds + 60, check=False
        )
    finally:
        Path(path).unlink(missing_ok=True)
    if done.returncode != 0:
        raise RuntimeError(f"wrk exited with {done.returncode}: {done.stderr[-400:] or done.stdout[-400:]}")
    result = parse_output(done.stdout)
    result |= {"connections": connections, "threads": 1, "distinct_requests": len(requests), "loop": "closed"}
    return result
