"""PNG plots of a result file (matplotlib, no screen needed), named after the run
(``bench-<UTC time>``; ``latest`` for the committed run's, see ``report.py``):

* ``<name>-percentiles.png``: p50/p95/p99 per scenario at its target's offered rate (open loop),
  with the target's p95 limit marked; log scale, since they span 1 ms to seconds.
* ``<name>-rates.png``: p95 latency against offered rate, one line per scenario (open loop), with
  the floor app's product page for comparison.

    python -m benchmarks.suite plots benchmarks/results/latest.json    # latest-*.png
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.suite.targets import at_rate

JsonDict = dict[str, Any]


def write_plots(
    report: JsonDict, targets: dict[str, JsonDict], out_dir: Path, run_name: str = "latest"
) -> list[Path]:
    import matplotlib as mpl  # noqa: PLC0415  # a dev dependency, loaded only to plot

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    out_dir.mkdir(parents=True, exist_ok=True)
    scenarios = report.get("scenarios") or {}
    names, values, limits = [], [], []
    for name, result in scenarios.items():
        runs = result.get("open_loop") or []
        target = targets.get(name) or {}
        run = at_rate(runs, float(target["rate"])) if "rate" in target else None
        run = run or (max(runs, key=lambda r: r.get("offered_rate", 0)) if runs else None)
        latency = (run or {}).get("latency_ms") or {}
        if latency.get("p95") is None:
            continue
        names.append(f"{name}\n@{run['offered_rate']:g}/s" if run else name)
        values.append([latency.get(p) or 0.0 for p in ("p50", "p95", "p99")])
        limits.append(target.get("p95_ms"))
    paths = []
    fig, ax = plt.subplots(figsize=(max(8, 1.3 * len(names)), 5))
    width = 0.26
    for i, label in enumerate(("p50", "p95", "p99")):
        ax.bar([x + (i - 1) * width for x in range(len(names))], [v[i] for v in values], width, label=label)
    for x, limit in enumerate(limits):
        if limit:
            ax.hlines(limit, x - 1.5 * width, x + 1.5 * width, colors="black", linestyles="dashed")
    ax.set_yscale("log")
    ax.set_xticks(range(len(names)), names, fontsize=8)
    ax.set_ylabel("latency, ms (open loop, log scale); dashed: target p95")
    ax.set_title(f"Latency percentiles per scenario ({report.get('finished_at')})")
    if ax.get_legend_handles_labels()[0]:  # a run that measured nothing has nothing to label
        ax.legend()
    fig.tight_layout()
    paths.append(out_dir / f"{run_name}-percentiles.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 5))
    series = {name: result.get("open_loop") or [] for name, result in scenarios.items()}
    series["floor app (product page)"] = (report.get("floor") or {}).get("open_loop") or []
    for name, runs in series.items():
        points = sorted(
            (r["offered_rate"], r["latency_ms"]["p95"])
            for r in runs
            if (r.get("latency_ms") or {}).get("p95") is not None
        )
        if points:
            style = "k--" if name.startswith("floor") else "-o"
            ax.plot([p[0] for p in points], [p[1] for p in points], style, label=name, markersize=4)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("offered rate, req/s (log)")
    ax.set_ylabel("p95 latency, ms (log)")
    ax.set_title("p95 latency vs offered rate (open loop)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(out_dir / f"{run_name}-rates.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths
