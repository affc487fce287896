"""The summary table and the JSON result of a fault run."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.chaos.faults import FaultResult

RESULTS_DIR = Path(__file__).resolve().parents[1] / "results"


def build_report(
    results: list[FaultResult], *, sizes: dict[str, Any], seconds: float, quick: bool
) -> dict[str, Any]:
    return {
        "run": {
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "seconds": round(seconds, 1),
            "quick": quick,
            "sizes": sizes,
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "system": platform.platform(),
            },
        },
        "passed": bool(results) and all(r.passed for r in results),
        "faults": [{**asdict(r), "passed": r.passed} for r in results],
    }


def _statuses(counts: dict[str, int]) -> str:
    return " ".join(f"{status}:{n}" for status, n in counts.items()) or "-"


def render_table(report: dict[str, Any]) -> str:
    faults = report["faults"]
    header = (
        "fault",
        "injected",
        "requests",
        "responses by status",
        "jobs done/accepted",
        "invariants",
        "result",
    )
    rows = [
        (
            f["fault"],
            str(f["injected"]),
            str(f["requests"]),
            _statuses(f["statuses"]),
            f"{f['jobs_completed']}/{f['jobs_accepted']}",
            f"{sum(c['ok'] for c in f['checks'])}/{len(f['checks'])}",
            "PASS" if f["passed"] else "FAIL",
        )
        for f in faults
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("{:<%d}" % w for w in widths)  # noqa: UP031  # widths are computed
    run = report["run"]
    out = [
        f"Fault injection: {len(faults)} faults in {run['seconds']} s"
        f"{' (quick)' if run['quick'] else ''}, {'ALL PASS' if report['passed'] else 'FAILED'}",
        line.format(*header),
        line.format(*("-" * w for w in widths)),
        *(line.format(*r) for r in rows),
        "",
    ]
    for f in faults:
        out.append(
            f"{'PASS' if f['passed'] else 'FAIL'}  {f['fault']} ({f['seconds']} s): {f['injected_detail']}"
        )
        if f["error"]:
            out.append(f"      error: {f['error']}")
        for check in f["checks"]:
            out.append(f"      {'ok  ' if check['ok'] else 'FAIL'} {check['name']}: {check['detail']}")
    return "\n".join(out)


def write_report(report: dict[str, Any], out_dir: Path = RESULTS_DIR) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n"
    path = out_dir / f"chaos-{stamp}.json"
    path.write_text(text)
    (out_dir / "chaos-latest.json").write_text(text)
    return path
