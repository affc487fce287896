"""Per-scenario deltas between two result files (``just bench-compare A B``).

For every scenario in either file: p95 at the target's offered rate, closed-loop maximum
throughput and its ratio to its own floor, the API's CPU and PostgreSQL's time per request in
that closed loop, errors; then every target's verdict in A and B. A delta is
B - A (and B / A for throughputs and ratios). Absolute numbers from different runs carry the
machine's noise; the floor ratios (measured side by side within each run) compare best.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.suite.targets import at_rate, load_targets

JsonDict = dict[str, Any]


def _p95(result: JsonDict, target: JsonDict) -> float | None:
    runs = result.get("open_loop") or []
    run = at_rate(runs, float(target["rate"])) if "rate" in target else None
    return ((run or {}).get("latency_ms") or {}).get("p95")


def _delta(a: float | None, b: float | None, *, ratio: bool = False) -> str:
    if a is None or b is None:
        return "-"
    if ratio:
        return f"{b - a:+.3g} ({b / a:.2f}x)" if a else f"{b - a:+.3g}"
    return f"{b - a:+.3g}"


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def compare(a: JsonDict, b: JsonDict, targets: dict[str, JsonDict]) -> str:
    rows = [
        [
            "scenario",
            "p95 A",
            "p95 B",
            "delta ms",
            "max req/s A",
            "max req/s B",
            "delta",
            "floor ratio A",
            "floor ratio B",
            "API CPU ms/req A/B",
            "PG ms/req A/B",
            "errors A/B",
        ]
    ]
    names = list(dict.fromkeys([*(a.get("scenarios") or {}), *(b.get("scenarios") or {})]))
    for name in names:
        ra, rb = (a.get("scenarios") or {}).get(name) or {}, (b.get("scenarios") or {}).get(name) or {}
        target = targets.get(name) or {}
        pa, pb = _p95(ra, target), _p95(rb, target)
        ca, cb = ra.get("closed_loop") or {}, rb.get("closed_loop") or {}
        errors = [sum(r.get("errors") or 0 for r in x.get("open_loop") or []) for x in (ra, rb)]
        rows.append(
            [
                name,
                _fmt(pa),
                _fmt(pb),
                _delta(pa, pb),
                _fmt(ca.get("achieved_rate")),
                _fmt(cb.get("achieved_rate")),
                _delta(ca.get("achieved_rate"), cb.get("achieved_rate"), ratio=True),
                _fmt(ca.get("floor_ratio")),
                _fmt(cb.get("floor_ratio")),
                f"{_fmt(ca.get('cpu_ms_per_request'))}/{_fmt(cb.get('cpu_ms_per_request'))}",
                f"{_fmt(ca.get('pg_ms_per_request'))}/{_fmt(cb.get('pg_ms_per_request'))}",
                f"{errors[0]}/{errors[1]}",
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        f"A: {a.get('finished_at')} ({'quick' if a.get('quick') else 'full'}), "
        f"B: {b.get('finished_at')} ({'quick' if b.get('quick') else 'full'})",
        "",
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    verdicts = {"A": a.get("targets") or [], "B": b.get("targets") or []}
    keyed: dict[tuple[str, str], dict[str, JsonDict]] = {
        (t["scenario"], t["check"]): {} for side in verdicts.values() for t in side
    }
    for side, items in verdicts.items():
        for t in items:
            keyed[(t["scenario"], t["check"])][side] = t
    lines += ["", "targets (A -> B):"]
    word = {True: "PASS", False: "FAIL", None: "n/a"}
    for (scenario, check), sides in keyed.items():
        ta, tb = sides.get("A") or {}, sides.get("B") or {}
        changed = " (changed)" if ta.get("pass") != tb.get("pass") else ""
        lines.append(
            f"  {scenario}/{check}: {word[ta.get('pass')]} {_fmt(ta.get('measured'))} -> "
            f"{word[tb.get('pass')]} {_fmt(tb.get('measured'))}{changed}"
        )
    return "\n".join(lines)


def main(paths: list[str]) -> int:
    if len(paths) != 2:
        print("usage: python -m benchmarks.suite compare A.json B.json")
        return 2
    a, b = (json.loads(Path(p).read_text()) for p in paths)
    print(compare(a, b, load_targets()))
    return 0
