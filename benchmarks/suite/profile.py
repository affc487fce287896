"""Evidence for the misses: where the API process spends its CPU (py-spy) and what PostgreSQL does
with the hot queries (EXPLAIN ANALYZE).

py-spy samples the API's granian worker from outside (``--nonblocking``: the process is never
paused) while wrk drives the scenario closed loop, in a run of its own after the measured runs, so
sampling never disturbs a measured figure. The report gives, per scenario, the share of samples in
which each frame is on the stack (inclusive), for the frames below the event loop.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any
from uuid import UUID

from benchmarks.suite.runs import PGBENCH_SQL
from benchmarks.suite.scenarios import HttpScenario
from benchmarks.suite.stack import SuiteStack
from benchmarks.suite.wrk import run_wrk

TOP = 20
_DULL = (
    "asyncio/",
    "uvloop/",
    "<module>",
    "threading.py",
    "concurrent/futures",
    "granian/",
    "click/",
    "multiprocessing/",
)


def py_spy() -> str | None:
    found = Path(sys.executable).with_name("py-spy")
    return str(found) if found.exists() else shutil.which("py-spy")


def summarise_folded(text: str, top: int = TOP) -> dict[str, Any]:
    """Inclusive shares of the frames in py-spy's ``--format raw`` (folded stacks) output."""
    inclusive: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = {_frame(f) for f in stack.split(";")}
        for frame in frames:
            inclusive[frame] += count
    ranked = [(frame, n) for frame, n in inclusive.most_common() if not any(d in frame for d in _DULL)]
    ranked = [(frame, n) for frame, n in ranked if n < total * 0.97]  # drop the roots every sample has
    return {
        "samples": total,
        "inclusive": [{"frame": frame, "share": round(n / total, 3)} for frame, n in ranked[:top]]
        if total
        else [],
    }


def _frame(raw: str) -> str:
    """``function (path/to/module.py:line)`` -> ``function (module path from the package root)``."""
    name, _, where = raw.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/work/main/", "/benchmarks/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})"


def profile_scenario(
    stack: SuiteStack, scenario: HttpScenario, base_url: str, seconds: float, out_dir: Path
) -> dict[str, Any] | None:
    """py-spy over the API worker while wrk drives ``scenario``; None without py-spy."""
    binary, pid = py_spy(), stack.server_pid("api")
    if binary is None or pid is None:
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    folded = out_dir / f"{scenario.name}.folded"
    command = [
        *stack.taskset(stack.rest_cpus),
        binary,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, round(seconds - 1))),
        "--rate",
        "250",
        "--nonblocking",
        "--format",
        "raw",
        "--output",
        str(folded),
    ]
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603
    try:
        wrk = run_wrk(base_url, scenario.wrk_requests, seconds=seconds, connections=16, cpus=stack.rest_cpus)
    finally:
        try:
            _, err = spy.communicate(timeout=seconds + 30)
        except subprocess.TimeoutExpired:
            spy.kill()
            _, err = spy.communicate()
    if not folded.exists():
        return {"error": (err or b"").decode(errors="replace")[-300:]}
    summary = summarise_folded(folded.read_text())
    return summary | {
        "folded_stacks": str(folded),
        "closed_loop_rate_while_sampled": wrk.get("achieved_rate"),
    }


async def explain_plans(conn: Any, session_maker: Any, tree: Any, product_id: UUID) -> dict[str, str]:
    """EXPLAIN (ANALYZE, BUFFERS) of the product page query and of two listing queries."""
    from db.services.catalog.listing import ListingFilters  # noqa: PLC0415
    from db.services.catalog.plans import explain  # noqa: PLC0415

    plans: dict[str, str] = {}
    await conn.execute("DROP TABLE IF EXISTS bench_explain_id")
    await conn.execute("CREATE TEMP TABLE bench_explain_id (n integer, id uuid)")
    await conn.execute("INSERT INTO bench_explain_id VALUES (1, $1)", product_id)
    detail = PGBENCH_SQL.replace("bench_product_ids", "bench_explain_id").replace(":n", "1")
    rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {detail}")
    plans["product detail"] = "\n".join(r[0] for r in rows)
    with contextlib.suppress(Exception):
        async with session_maker() as session:
            for name, filters in {
                "listing: category with subcategories, newest": ListingFilters(category="women-dresses"),
                "search: relevance": ListingFilters(q="floral maxi dress"),
            }.items():
                plans[name] = await explain(session, tree, filters, analyze=True)
    return plans
