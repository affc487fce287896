"""One scenario's runs: open loop at each offered rate, then closed loop (wrk); the floor; pgbench.

Open loop (``benchmarks.search_quality.load``): send times are fixed in advance at the offered
rate, every request is its own task, and latency is measured from its *scheduled* send time to
the end of the answer, so queueing anywhere (this generator, the connection pool, the server's
accept queue) counts; a warm-up at the same rate comes first and is dropped. Closed loop
(``wrk.py``): the maximum throughput the server sustains with ``connections`` connections.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.search_quality import load
from benchmarks.search_quality.client import LoadClient
from benchmarks.search_quality.stack import Timer
from benchmarks.suite.scenarios import HttpScenario
from benchmarks.suite.stack import SuiteStack
from benchmarks.suite.wrk import run_wrk
from db.services.catalog.listing import _DETAIL

OVERLOAD = 1.1
OVERLOAD_SECONDS = 3.0


@dataclass(frozen=True)
class Plan:
    """How long and at which rates: the same for every HTTP scenario of a run."""

    rate_factors: tuple[float, ...]  # offered rates as fractions of the target's rate
    seconds: float
    warmup_seconds: float
    closed_seconds: float
    connections: int


async def open_loop_runs(
    stack: SuiteStack,
    scenario: HttpScenario,
    base_url: str,
    rates: list[float],
    plan: Plan,
    timer: Timer,
    server: str,
    capacity: float | None = None,
) -> list[dict[str, Any]]:
    """The scenario at each offered rate, lowest first.

    A rate above ``OVERLOAD`` x ``capacity`` (the closed-loop maximum, measured first) cannot be
    served: the queue, and with it every latency, grows for as long as the run lasts. Such a run is
    cut to ``OVERLOAD_SECONDS`` (its backlog drains in a bounded time) and marked ``overloaded``;
    its percentiles then say how far behind the server fell in that time, no more.
    """
    out = []
    client = LoadClient(base_url, max_connections=512)
    roots = [pid for pid in (os.getpid(), stack.postmaster_pid()) if pid is not None]
    offset = 0  # each run continues where the last left off: one-off requests are never repeated
    try:
        for rate in sorted(rates):
            requests = scenario.requests[offset:] + scenario.requests[:offset]
            offset = (offset + round(rate * (plan.seconds + plan.warmup_seconds)) + 2) % len(
                scenario.requests
            )
            spec = load.Scenario(
                scenario.name,
                scenario.endpoint,
                requests,
                rate,
                0.0,
                0.0,
                check=scenario.check,
                ok_statuses=scenario.ok_statuses,
            )
            overloaded = capacity is not None and rate > OVERLOAD * capacity
            seconds = min(plan.seconds, OVERLOAD_SECONDS) if overloaded else plan.seconds
            warmup = min(plan.warmup_seconds, 0.5) if overloaded else plan.warmup_seconds
            with timer.step(f"open loop: {scenario.name} at {rate:g} req/s for {seconds:g} s"):
                result = await load.run_scenario(
                    client,
                    spec,
                    seconds=seconds,
                    warmup_seconds=warmup,
                    api_pid=stack.pid_of(server),
                    postgres_pid=stack.postmaster_pid(),
                    cpu_roots=roots,
                )
            result.pop("target", None)  # targets.toml judges the run, not load.py's built-in targets
            result["overloaded"] = overloaded
            if overloaded:
                result["note"] = (
                    f"offered {rate:g} req/s > {OVERLOAD:g} x the closed-loop maximum {capacity:g} req/s: "
                    f"run cut to {seconds:g} s, latency grows with the run's length"
                )
            out.append(result)
    finally:
        await client.aclose()
    return out


def closed_loop_run(
    stack: SuiteStack, scenario: HttpScenario, base_url: str, plan: Plan, timer: Timer
) -> dict[str, Any]:
    with timer.step(f"closed loop (wrk): {scenario.name} for {plan.closed_seconds:g} s"):
        return run_wrk(
            base_url,
            scenario.wrk_requests,
            seconds=plan.closed_seconds,
            connections=plan.connections,
            cpus=stack.rest_cpus,
        )


# --- pgbench ------------------------------------------------------------------------------------
PGBENCH_SQL = (
    str(_DETAIL)
    .replace(":product_id", "(SELECT id FROM bench_product_ids WHERE n = :n)")
    .replace(":viewer", "'00000000-0000-0000-0000-000000000000'::uuid")
)


async def prepare_pgbench(conn: Any, product_ids: list[Any]) -> None:
    """``bench_product_ids(n, id)``: the product detail scenario's products, numbered for pgbench."""
    await conn.execute("DROP TABLE IF EXISTS bench_product_ids")
    await conn.execute("CREATE TABLE bench_product_ids (n integer PRIMARY KEY, id uuid NOT NULL)")
    await conn.copy_records_to_table(
        "bench_product_ids", records=list(enumerate(product_ids, start=1)), columns=["n", "id"]
    )
    await conn.execute("ANALYZE bench_product_ids")


def run_pgbench(
    stack: SuiteStack, database: str, products: int, seconds: float, clients: int, timer: Timer
) -> dict[str, Any]:
    """The product page's primary query straight from pgbench (prepared statements), its clients on
    the load-generator CPU like PostgreSQL: the database's own ceiling for that query."""
    script = f"\\set n random(1, {products})\n{' '.join(PGBENCH_SQL.split())};\n"
    with tempfile.NamedTemporaryFile("w", suffix=".sql", prefix="pgbench-detail-", delete=False) as out:
        out.write(script)
        path = out.name
    command = [
        *stack.taskset(stack.rest_cpus),
        stack.postgres.binary("pgbench"),
        "-n",
        "-M",
        "prepared",
        "-f",
        path,
        "-c",
        str(clients),
        "-j",
        "1",
        "-T",
        str(max(1, round(seconds))),
        "-h",
        stack.postgres.socket_dir,
        "-U",
        "postgres",
        database,
    ]
    try:
        with timer.step(f"pgbench: product detail query, {clients} clients, {seconds:g} s"):
            done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)  # noqa: S603
    finally:
        Path(path).unlink(missing_ok=True)
    if done.returncode != 0:
        raise RuntimeError(f"pgbench failed: {done.stderr[-400:]}")
    return parse_pgbench(done.stdout) | {
        "clients": clients,
        "threads": 1,
        "mode": "prepared",
        "script": "\\set n random(1, N); the product page query",
    }


def parse_pgbench(stdout: str) -> dict[str, Any]:
    """tps, average latency and failures from pgbench's summary.

    Raises:
        ValueError: the summary has no tps line.
    """
    tps = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", stdout)
    if tps is None:
        raise ValueError(f"no tps in pgbench's output: {stdout[-300:]}")
    latency = re.search(r"latency average = ([0-9.]+) ms", stdout)
    processed = re.search(r"number of transactions actually processed: (\d+)", stdout)
    failed = re.search(r"number of failed transactions: (\d+)", stdout)
    return {
        "achieved_rate": round(float(tps.group(1)), 1),
        "latency_ms_mean": float(latency.group(1)) if latency else None,
        "transactions": int(processed.group(1)) if processed else None,
        "errors": int(failed.group(1)) if failed else 0,
    }
