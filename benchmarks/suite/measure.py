"""A closed-loop run and what each request cost: the server's CPU and PostgreSQL's time.

- **Server CPU per request**: user + system CPU seconds of the server's process tree (granian and
  its worker: the API or the floor app) over the wrk run, over the requests wrk completed.
- **PostgreSQL time per request**: ``pg_stat_statements`` is reset before the run and read after
  it: total execution + planning time of this database's statements over the requests. Planning
  is counted when ``pg_stat_statements.track_planning`` is on, which :func:`track_planning` sets
  for the working copy's new connections (the API's and the floor's pools connect after it).
  Statements of other clients of the database during the run count too: the workers' periodic
  jobs (few next to a closed loop's thousands of requests) and, for order creation, the job the
  API sends for each order and the ones it fans out to (confirmation mail, notice, analytics),
  which the workers run during the API's run. The floor marks its orders' job sent without
  sending it, so its PostgreSQL time is the request's own; the API's includes that follow-up work
  (see its statements per request).
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from benchmarks.search_quality.load import tree_cpu_seconds
from benchmarks.search_quality.stack import Timer, connect, log
from benchmarks.suite.runs import Plan, closed_loop_run
from benchmarks.suite.scenarios import HttpScenario
from benchmarks.suite.stack import SuiteStack

PG_RESET = "SELECT pg_stat_statements_reset()"
PG_READ = """
SELECT COALESCE(sum(calls), 0) AS calls, COALESCE(sum(total_exec_time), 0) AS exec_ms,
       COALESCE(sum(total_plan_time), 0) AS plan_ms
FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND query NOT LIKE '%pg_stat_statements%'
"""


async def track_planning(conn: asyncpg.Connection, database: str) -> bool:
    """Planning time counted for the database's new connections; False when the server refuses
    (no pg_stat_statements, or not a superuser): PostgreSQL's time is then execution only."""
    try:
        await conn.execute(f'ALTER DATABASE "{database}" SET pg_stat_statements.track_planning = on')
    except asyncpg.PostgresError as exc:
        log.warning("planning time is not tracked", error=str(exc))
        return False
    return True


async def _reset(conn: asyncpg.Connection) -> bool:
    try:
        await conn.execute(PG_RESET)
    except asyncpg.PostgresError as exc:
        log.warning("pg_stat_statements is not available", error=str(exc))
        return False
    return True


def _delta(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(value - before.get(pid, 0.0) for pid, value in after.items())


def per_request(result: dict[str, Any], cpu_seconds: float, pg: Any | None) -> dict[str, Any]:
    """The run's result with ``cpu_ms_per_request``, ``pg_ms_per_request`` and the statements."""
    requests = max(1, int(result.get("requests") or 0))
    out = dict(result)
    out["cpu_ms_per_request"] = round(cpu_seconds * 1000 / requests, 3)
    if pg is None:
        out["pg_ms_per_request"] = None
        return out
    exec_ms, plan_ms = float(pg["exec_ms"]), float(pg["plan_ms"])
    out["pg_ms_per_request"] = round((exec_ms + plan_ms) / requests, 3)
    out["pg"] = {
        "statements_per_request": round(int(pg["calls"]) / requests, 2),
        "exec_ms_per_request": round(exec_ms / requests, 3),
        "plan_ms_per_request": round(plan_ms / requests, 3),
    }
    return out


async def measured_closed_loop(
    stack: SuiteStack,
    scenario: HttpScenario,
    base_url: str,
    plan: Plan,
    timer: Timer,
    *,
    server: str,
    database_url: str,
) -> dict[str, Any]:
    """:func:`runs.closed_loop_run` with the server's CPU and PostgreSQL's time per request."""
    pid = stack.pid_of(server)
    async with connect(database_url) as conn:
        counted = await _reset(conn)
        before = tree_cpu_seconds(pid)
        result = await asyncio.to_thread(closed_loop_run, stack, scenario, base_url, plan, timer)
        cpu = _delta(before, tree_cpu_seconds(pid))
        pg = await conn.fetchrow(PG_READ) if counted else None
    return per_request(result, cpu, pg)
