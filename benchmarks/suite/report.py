"""The suite's outputs in ``benchmarks/results/``: every run writes ``bench-<UTC time>.json`` and
``.md`` (and its plots, ``plots.py``); a run that completed also replaces ``latest.json``,
``latest.md`` and ``latest-*.png``, the committed results. An interrupted or failed run never
does: its own files say how far it got."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parents[1] / "results"
LATEST = "latest"
PLOTS = ("percentiles", "rates")
VERDICT = {True: "PASS", False: "FAIL", None: "n/a"}
JsonDict = dict[str, Any]


def run_stamp(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")


def run_completed(report: JsonDict) -> bool:
    """The run went through all its steps: not interrupted, not stopped by an error. (A scenario
    that failed inside it is one of its results, under ``failures`` by its name.)"""
    return "run" not in (report.get("failures") or {})


def write_results(report: JsonDict, results_dir: Path, stamp: str) -> list[Path]:
    """This run's ``bench-<stamp>.json`` and ``.md`` (whose plots are ``bench-<stamp>-*.png``)."""
    results_dir.mkdir(parents=True, exist_ok=True)
    prefix = f"bench-{stamp}"
    paths = [results_dir / f"{prefix}.json", results_dir / f"{prefix}.md"]
    paths[0].write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n")
    paths[1].write_text(render_markdown(report, plots=prefix))
    return paths


def replace_latest(report: JsonDict, results_dir: Path, stamp: str) -> list[Path]:
    """Make the run ``stamp`` the latest: ``latest.json``, ``latest.md`` and the plots it has.

    Only for a run that completed (:func:`run_completed`; otherwise nothing is touched and the
    list is empty). Each file is written beside its target and renamed over it, so an
    interruption leaves every ``latest`` file whole; a plot this run could not draw is removed
    rather than left over from an older run.
    """
    if not run_completed(report):
        return []
    prefix = f"bench-{stamp}"
    paths = []
    for plot in PLOTS:
        source, target = results_dir / f"{prefix}-{plot}.png", results_dir / f"{LATEST}-{plot}.png"
        if source.exists():
            _replace(target, source.read_bytes())
            paths.append(target)
        else:
            target.unlink(missing_ok=True)
    texts = {
        f"{LATEST}.json": (results_dir / f"{prefix}.json").read_text(),
        f"{LATEST}.md": render_markdown(report, plots=LATEST),
    }
    for name, text in texts.items():  # the Markdown last: it names the others
        _replace(results_dir / name, text.encode())
        paths.append(results_dir / name)
    return paths


def _replace(target: Path, data: bytes) -> None:
    partial = target.with_name(f".{target.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, target)


def _n(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_n(c) if not isinstance(c, str) else c for c in row) + " |" for row in rows]
    return lines


def _lat(run: JsonDict | None, key: str) -> Any:
    return None if run is None else (run.get("latency_ms") or {}).get(key)


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def scenario_rows(report: JsonDict) -> list[list[Any]]:
    """One row per open-loop run and per closed-loop run of each scenario."""
    rows: list[list[Any]] = []
    for name, result in (report.get("scenarios") or {}).items():
        for run in result.get("open_loop") or []:
            cpu = run.get("cpu_during_run") or {}
            loop = "open" + (" (overloaded)" if run.get("overloaded") else "")
            rows.append(
                [
                    name,
                    loop,
                    run.get("offered_rate"),
                    run.get("achieved_rate"),
                    run.get("errors"),
                    _lat(run, "p50"),
                    _lat(run, "p95"),
                    _lat(run, "p99"),
                    (run.get("cpu_ms_per_request") or {}).get("api"),
                    cpu.get("others_cpus"),
                    "-",
                ]
            )
        closed = result.get("closed_loop")
        if closed:
            rows.append(
                [
                    name,
                    f"closed ({closed.get('connections')} conn)",
                    "-",
                    closed.get("achieved_rate"),
                    closed.get("errors"),
                    _lat(closed, "p50"),
                    _lat(closed, "p95"),
                    _lat(closed, "p99"),
                    _n(closed.get("cpu_ms_per_request"), 2),
                    "-",
                    _ratio(closed.get("floor_ratio")),
                ]
            )
    return rows


def render_markdown(report: JsonDict, plots: str = LATEST) -> str:
    """The report as Markdown; its plots are ``<plots>-percentiles.png`` and ``<plots>-rates.png``."""
    m, v = report.get("machine") or {}, report.get("versions") or {}
    lines = [
        f"# Benchmark suite: {report.get('finished_at')} ({'quick' if report.get('quick') else 'full'} run)",
        "",
        f"Produced by `just bench{' --quick' if report.get('quick') else ''}` in "
        f"{_n(report.get('seconds'))} s ({_n(report.get('scenario_seconds'))} s of it after the dataset "
        "was ready).",
        "",
        f"- **Machine**: {m.get('cpu_count')} CPUs, {m.get('cpu_model')}, {m.get('memory_gb')} GB, "
        f"{m.get('platform')}",
        f"- **Code**: commit {report.get('commit') or 'unknown'}",
        "- **Versions**: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        f"- **Pinning**: {json.dumps(report.get('pinning'))}",
        f"- **Settings**: {report.get('settings_note')}",
        f"- **Dataset**: {report.get('dataset_note')}",
        "- **How latency is measured**: open loop = requests sent at fixed times at the offered rate, "
        "latency from each request's *scheduled* send time (queueing delay in the generator, the "
        "connection pool and the server's accept queue counts); closed loop = wrk, each connection sends "
        "its next request when the previous answer arrives (maximum throughput; latency from the "
        "actual send).",
        "- **Noise**: this machine is shared; ratios measured side by side in one run (floor ratio) are the "
        "figures that count, absolute numbers are context. CPU used by other programs during each open-loop "
        "run is in the JSON (`cpu_during_run.others_cpus`).",
        "",
        "## Targets",
        "",
    ]
    lines += _table(
        ["scenario", "target", "measured", "verdict", "miss"],
        [
            [
                t["scenario"],
                t["target"],
                t["measured"],
                VERDICT[t["pass"]],
                "; ".join(x for x in (t.get("miss"), t.get("note")) if x),
            ]
            for t in report.get("targets") or []
        ],
    )
    floor = report.get("floor") or {}
    lines += ["", "## The floors (same run)", ""]
    pg = floor.get("pgbench") or {}
    lines.append(
        f"- pgbench, the product page query alone ({pg.get('clients')} clients, prepared): "
        f"{_n(pg.get('achieved_rate'))} tx/s, mean {_n(pg.get('latency_ms_mean'), 3)} ms"
    )
    lines += ["", *floor_lines(report), ""]
    runs = [("product_detail", run) for run in floor.get("open_loop") or []]
    for name, own in (floor.get("scenarios") or {}).items():
        runs += [(name, run) for run in own.get("open_loop") or []]
    for name, run in runs:
        lines.append(
            f"- {name}'s floor, open loop at {_n(run.get('offered_rate'))} req/s: "
            f"p50 {_n(_lat(run, 'p50'), 2)}"
            f" / p95 {_n(_lat(run, 'p95'), 2)} / p99 {_n(_lat(run, 'p99'), 2)} ms, "
            f"{run.get('errors')} errors{' (overloaded)' if run.get('overloaded') else ''}"
        )
    lines += [
        "",
        "## Scenarios",
        "",
        "Latency in ms; rates in req/s; API CPU ms per request of the API's process tree during each run; "
        "other programs' CPUs: "
        "CPUs used by programs outside this benchmark during the run (above 0.2 the run is not clean).",
        "",
    ]
    lines += _table(
        [
            "scenario",
            "loop",
            "offered",
            "achieved",
            "errors",
            "p50",
            "p95",
            "p99",
            "API CPU ms/req",
            "other programs' CPUs",
            "ratio to floor",
        ],
        scenario_rows(report),
    )
    lines += _flow_lines(report)
    lines += mix_lines(report)
    lines += _profile_lines(report)
    if report.get("failures"):
        lines += ["", "## Failures", ""] + [f"- {k}: {val}" for k, val in report["failures"].items()]
    lines += [
        "",
        "## Plots",
        "",
        f"![latency percentiles]({plots}-percentiles.png)",
        "",
        f"![latency vs offered rate]({plots}-rates.png)",
        "",
    ]
    return "\n".join(lines)


def floor_rows(report: JsonDict) -> list[list[Any]]:
    """Per HTTP scenario: the API's closed loop next to its own floor's, with the verdict."""
    floors = (report.get("floor") or {}).get("scenarios") or {}
    verdicts = {t["scenario"]: t for t in report.get("targets") or [] if t.get("check") == "floor_ratio"}
    rows: list[list[Any]] = []
    for name, own in floors.items():
        api = ((report.get("scenarios") or {}).get(name) or {}).get("closed_loop") or {}
        verdict = verdicts.get(name) or {}
        target = f">= {verdict['limit']:g} {VERDICT[verdict.get('pass')]}" if verdict else "-"
        statements = [((x.get("pg") or {}).get("statements_per_request")) for x in (api, own)]
        rows.append(
            [
                name,
                api.get("ok_rate"),
                own.get("ok_rate"),
                _ratio(api.get("floor_ratio")),
                target,
                *(
                    _n(x.get(key), 2)
                    for key in ("cpu_ms_per_request", "pg_ms_per_request")
                    for x in (api, own)
                ),
                " / ".join(_n(x, 2) for x in statements),
            ]
        )
    return rows


def floor_lines(report: JsonDict) -> list[str]:
    planning = "execution + planning" if report.get("pg_planning_tracked") else "execution only"
    return [
        "Each HTTP scenario against its own floor: a bare Litestar + asyncpg + msgspec handler at the "
        "API's path running the SQL the API runs for that request (`benchmarks/suite/floor.py` says how "
        "each was obtained and what is left out), served by the same granian command on the same CPU, "
        "sent the same requests closed loop (wrk) in this run. CPU: the server's process tree per "
        f"request; PostgreSQL: pg_stat_statements time ({planning}) per request, reset before each run.",
        "",
        *_table(
            [
                "scenario",
                "API req/s",
                "floor req/s",
                "ratio",
                "target",
                "API CPU ms/req",
                "floor CPU ms/req",
                "PG ms/req API",
                "PG ms/req floor",
                "statements/req API / floor",
            ],
            floor_rows(report),
        ),
    ]


def _flow_lines(report: JsonDict) -> list[str]:
    scenarios = report.get("scenarios") or {}
    lines: list[str] = []
    orders = scenarios.get("orders") or {}
    if orders.get("integrity") or orders.get("contention"):
        lines += ["", "## Orders: stock integrity after the load", ""]
        lines += [
            f"- after the order load: `{json.dumps(orders.get('integrity'))}`",
            f"- contention burst: `{json.dumps(orders.get('contention'))}`",
        ]
    similar = (scenarios.get("similar") or {}).get("recall")
    if similar:
        lines += [
            "",
            f"Similar items recall@10 through the endpoint: {similar.get('recall_at_k')} over "
            f"{similar.get('queries')} queries (short answers {similar.get('short_answers')}).",
        ]
    measure = (scenarios.get("photo_measurement") or {}).get("flow")
    if measure:
        lines += [
            "",
            "## Photo pair upload -> ready (one inference worker)",
            "",
            f"- {measure.get('ready')} ready, {measure.get('failed')} refused by the pipeline, "
            f"{measure.get('errors')} errors; upload -> ready "
            f"{json.dumps(measure.get('upload_to_ready_ms'))}; "
            f"worker stages (mean ms) {json.dumps(measure.get('worker_stage_mean_ms'))}",
        ]
    memory = report.get("memory") or {}
    lines += ["", "## Memory", "", f"`{json.dumps(memory)}`"]
    return lines


CPU_GROUPS = (
    ("api", "API"),
    ("postgres", "PostgreSQL"),
    ("redis", "Redis"),
    ("workers", "workers"),
    ("load_generator", "load generator"),
    ("others", "other programs"),
)


def mix_lines(report: JsonDict) -> list[str]:
    """The browsing mix: per offered rate, latency, errors, the share of 304s and the CPU split."""
    result = (report.get("scenarios") or {}).get("browsing_mix") or {}
    if not result.get("open_loop"):
        return []
    made = result.get("composition") or {}
    lines = [
        "",
        "## Browsing mix (page cache on)",
        "",
        f"The API restarted with its page cache at the default size; {made.get('requests')} requests by kind "
        f"`{json.dumps(made.get('by_kind'))}`, {_n(made.get('public_revalidating_share'), 2)} of the public "
        "ones sent with `If-None-Match` (the ETag fetched just before the run); a 304 counts as success. "
        "CPU split: CPUs used by each process tree during the timed run.",
        "",
    ]
    rows = []
    for run in result["open_loop"]:
        answers, cpus = run.get("answers") or {}, (run.get("cpu_split") or {}).get("cpus") or {}
        share = answers.get("not_modified_share")
        rows.append(
            [
                run.get("offered_rate"),
                run.get("achieved_rate"),
                run.get("errors"),
                _lat(run, "p50"),
                _lat(run, "p95"),
                _lat(run, "p99"),
                "-" if share is None else f"{share:.1%}",
                *(_n(cpus.get(key), 2) for key, _ in CPU_GROUPS),
            ]
        )
    header = ["offered", "achieved", "errors", "p50", "p95", "p99", "304s"]
    return lines + _table(header + [f"{label} CPUs" for _, label in CPU_GROUPS], rows)


def _profile_lines(report: JsonDict) -> list[str]:
    profiles = report.get("profiles") or {}
    plans = report.get("plans") or {}
    lines: list[str] = []
    if profiles:
        lines += ["", "## Where the API's time goes (py-spy, closed loop)", ""]
        for name, profile in profiles.items():
            lines.append(
                f"**{name}** ({profile.get('samples')} samples; share of samples in which the frame is "
                "on the stack, project and library frames):"
            )
            lines += [
                "",
                *_table(
                    ["share", "frame"],
                    [[f"{p['share']:.0%}", f"`{p['frame']}`"] for p in profile.get("inclusive") or []],
                ),
                "",
            ]
    if plans:
        lines += ["", "## Query plans (EXPLAIN ANALYZE on the working copy)", ""]
        for name, plan in plans.items():
            lines += [f"**{name}**", "", "```", plan.strip(), "```", ""]
    return lines
