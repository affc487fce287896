"""The report: targets, the printed table, and the JSON files under benchmarks/results/."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.measurement_flow import RESULTS_DIR

NAME = "search_quality"
RECALL_TARGET = 0.95
VERDICT = {True: "PASS", False: "FAIL", None: "n/a"}
JsonDict = dict[str, Any]


def targets(report: JsonDict) -> list[JsonDict]:
    """SPEC targets this run measured: recall through the endpoint, and each load scenario's p95."""
    out: list[JsonDict] = []
    similarity = report.get("similarity") or {}
    for check in similarity.get("recall_http") or []:
        value = check.get("recall_at_k")
        name = (
            "none" if check["filter"] == "none" else "&".join(f"{k}={v}" for k, v in check["filter"].items())
        )
        out.append(
            {
                "target": f"similar items recall@{report['config']['k']} >= {RECALL_TARGET} vs exact "
                f"(GET /products/{{id}}/similar, filter {name}, {report['config']['products']:,} products)",
                "value": value,
                "limit": RECALL_TARGET,
                "pass": None if value is None else value >= RECALL_TARGET and not check["short_answers"],
            }
        )
    out.extend(scenario["target"] for scenario in similarity.get("latency") or [])
    return out


def _n(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _dataset_lines(label: str, dataset: JsonDict) -> list[str]:
    stats = dataset.get("stats") or {}
    how = "reused (built " + str(dataset.get("built_at")) + ")" if dataset["reused"] else "built in this run"
    lines = [
        f"  {label}: database {dataset['database']}, {_n(stats.get('products'))} products "
        f"({_n(stats.get('listed'))} listed), {_n(stats.get('embedded'))} embedded images; {how}, "
        f"build took {_n(dataset.get('build_seconds'))} s",
    ]
    if "copies" in stats:
        copy, between = stats["cosine_copy_to_base"], stats["cosine_between_base_photos"]
        lines.append(
            f"    {_n(stats['photos_embedded'])} real photos + {_n(stats['copies'])} noise copies: "
            f"cosine copy->base {copy['mean']} (p5 {copy['p5']}, p95 {copy['p95']}), "
            + f"between base photos {between['mean']}; HNSW {stats.get('hnsw_size')}"
        )
    lines += [f"    {s['step']:<76}{s['seconds']:>9.1f} s" for s in dataset.get("build_steps") or []]
    if dataset["reused"]:
        lines += [f"    this run: {s['step']:<66}{s['seconds']:>9.1f} s" for s in dataset["steps_this_run"]]
    return lines


def _recall_lines(similarity: JsonDict) -> list[str]:
    lines: list[str] = []
    db = similarity.get("recall_database")
    if db:
        cos = db["neighbour_cosine"]
        lines += [
            f"Recall@{db['k']} of HNSW vs exact, in the database ({db['queries']} queries; mean cosine "
            f"of the exact 1st / {db['k']}th neighbour {cos['first']} / {list(cos.values())[1]})",
            f"  exact plan: {' > '.join(db['exact_plan'])}",
            f"  HNSW plan:  {' > '.join(db['hnsw_plan'])}",
            f"  {'ef_search':>10}{'recall':>9}{'strict':>9}{'min':>7}{'<0.9':>6}{'db p50':>9}{'db p95':>9}"
            f"{'rt p50':>9}{'rt p95':>9}{'lost':>6}  (ms; db = EXPLAIN ANALYZE execution, rt = round trip; "
            "lost = queries whose own image the index does not find first)",
        ]
        for row in db["per_ef"]:
            cells = [
                f"{row['ef_search']:>10}",
                f"{row['recall_at_k']:>9.4f}",
                f"{row['recall_at_k_strict']:>9.4f}",
                f"{row['min_recall']:>7.2f}",
                f"{row['queries_below_0_9']:>6}",
                *(f"{_n(row[kind][p], 2):>9}" for kind in ("db_ms", "round_trip_ms") for p in ("p50", "p95")),
                f"{row['queries_not_finding_themselves']:>6}",
            ]
            if row["queries_not_using_index"]:
                cells.append(f"  ({row['queries_not_using_index']} not using the index!)")
            lines.append("  " + "".join(cells))
        ex = db["exact_round_trip_ms"]
        lines.append(
            f"  {'exact':>10}{'1.0000':>9}{'':>25}{'':>18}{_n(ex['p50'], 1):>9}{_n(ex['p95'], 1):>9}"
        )
    http = similarity.get("recall_http")
    if http:
        lines += [
            "Recall@k through GET /products/{id}/similar vs the exact filtered top-k",
            f"  {'filter':<34}{'matching':>9}{'queries':>8}{'recall':>8}{'strict':>8}{'min':>6}{'short':>6}"
            f"{'errors':>7}{'p50 ms':>8}{'p95 ms':>8}",
        ]
        for row in http:
            name = (
                "none" if row["filter"] == "none" else "&".join(f"{k}={v}" for k, v in row["filter"].items())
            )
            lat = row["latency_ms_sequential"]
            cells = [
                f"{_n(row['matching_products']):>9}",
                f"{row['queries']:>8}",
                f"{_n(row['recall_at_k'], 4):>8}",
                f"{_n(row['recall_at_k_strict'], 4):>8}",
                f"{_n(row['min_recall'], 2):>6}",
                f"{row['short_answers']:>6}",
                f"{row['errors']:>7}",
                f"{_n(lat['p50'], 1):>8}",
                f"{_n(lat['p95'], 1):>8}",
            ]
            lines.append(f"  {name:<34}" + "".join(cells))
            lines += [f"    error: {e}" for e in row["error_samples"]]
    return lines


def _filter_name(params: Any) -> str:
    return "none" if params == "none" else "&".join(f"{k}={v}" for k, v in params.items())


def _filtered_lines(filtered: JsonDict) -> list[str]:
    lines = [
        "The search's own code path per filter, in the database (vector_search.nearest; ms round trip)",
        f"  {'filter':<44}{'matching':>9}{'queries':>8}{'recall':>8}{'min':>6}{'short':>6}"
        f"{'p50 ms':>8}{'p95 ms':>8}{'exact p50':>10}{'p95':>7}  plan of the nearest rows; statements run",
    ]
    for row in filtered["per_filter"]:
        search, exact = row["search_ms"], row["exact_ms"]
        plans = ", ".join(f"{k} {v}" for k, v in row["nearest_rows_plan"].items())
        paths = ", ".join(f"{k} {v}" for k, v in row["paths"].items())
        lines.append(
            f"  {_filter_name(row['filter']):<44}{_n(row['matching_products']):>9}{row['queries']:>8}"
            f"{_n(row['recall_at_k'], 4):>8}{_n(row['min_recall'], 2):>6}{row['short_answers']:>6}"
            f"{_n(search['p50'], 1):>8}{_n(search['p95'], 1):>8}"
            f"{_n(exact['p50'], 1):>10}{_n(exact['p95'], 1):>7}"
            f"  {plans}; {paths}"
        )
    for check in filtered["scan_limits"]:
        lines.append(f"  filter {_filter_name(check['filter'])}, by hnsw.max_scan_tuples per row asked:")
        for row in check["per_limit"]:
            ms = row["search_ms"]
            paths = ", ".join(f"{k} {v}" for k, v in row["paths"].items())
            lines.append(
                f"    {row['scan_tuples_per_row']:>4} ({row['max_scan_tuples']:>5}) {row['queries']:<8}"
                f"{row['count']:>4} queries: recall {_n(row['recall_at_k'], 4)}, p50 {_n(ms['p50'], 1)} ms, "
                f"p95 {_n(ms['p95'], 1)} ms, max {_n(ms['max'], 1)} ms; {paths}"
            )
    return lines


def _halfvec_lines(half: JsonDict) -> list[str]:
    index = half["index"]
    built = "reused" if index["reused"] else f"built in {index['build_seconds']} s"
    sizes = ", ".join(f"{kind} {mb} MB" for kind, mb in index["index_mb"].items())
    lines = [
        f"halfvec(1280) expression index {index['index']} ({built}); HNSW sizes: {sizes}",
        "  exact ranking by half-precision distance vs full precision: recall {recall_at_k}, "
        "min {min_recall}, {queries_below_0_9} queries below 0.9".format(**half["rounding"]),
        f"  {'index':<9}{'ef_search':>10}{'recall':>9}{'min':>7}{'<0.9':>6}{'db p50':>9}{'db p95':>9}"
        f"{'rt p50':>9}{'rt p95':>9}  (recall vs exact at full precision; ms)",
    ]
    for row in half["recall_database"]:
        db, rt = row["db_ms"], row["round_trip_ms"]
        lines.append(
            f"  {row['index']:<9}{row['ef_search']:>10}{row['recall_at_k']:>9.4f}{row['min_recall']:>7.2f}"
            f"{row['queries_below_0_9']:>6}{_n(db['p50'], 2):>9}{_n(db['p95'], 2):>9}"
            f"{_n(rt['p50'], 2):>9}{_n(rt['p95'], 2):>9}"
        )
    lines.append(
        f"  {'index':<9}{'filter':<44}{'recall':>8}{'short':>6}{'p50 ms':>8}{'p95 ms':>8}"
        "  plan of the nearest rows; statements run"
    )
    for row in half["search"]:
        ms = row["search_ms"]
        plans = ", ".join(f"{k} {v}" for k, v in row["nearest_rows_plan"].items())
        paths = ", ".join(f"{k} {v}" for k, v in row["paths"].items())
        lines.append(
            f"  {row['index']:<9}{_filter_name(row['filter']):<44}{_n(row['recall_at_k'], 4):>8}"
            f"{row['short_answers']:>6}{_n(ms['p50'], 1):>8}{_n(ms['p95'], 1):>8}  {plans}; {paths}"
        )
    return lines


def _latency_lines(latency: list[JsonDict]) -> list[str]:
    lines = [
        "Latency, open loop (ms from each request's scheduled send time; nearest-rank, over 200s)",
        f"  {'endpoint':<28}{'offered':>8}{'achieved':>9}{'ok':>7}{'errors':>7}{'p50':>9}{'p95':>9}{'p99':>9}"
        + f"{'max':>9}{'lag p99':>8}  CPUs busy/others  API RSS peak  CPU ms/req api, pg",
    ]
    pinning = latency[0].get("cpu_pinning") if latency else None
    if pinning:
        lines.insert(1, "  CPUs pinned: " + ", ".join(f"{who} on {cpus}" for who, cpus in pinning.items()))
    for row in latency:
        lat, cpu, rss = row["latency_ms"], row["cpu_during_run"], row["api_rss_mb"] or {}
        cells = [
            f"{row['offered_rate']:>8g}",
            f"{_n(row['achieved_rate']):>9}",
            f"{row['ok']:>7}",
            f"{row['errors']:>7}",
            *(f"{_n(lat[p]):>9}" for p in ("p50", "p95", "p99", "max")),
            f"{_n(row['load_generator_lag_ms']['p99']):>8}",
            f"  {cpu.get('busy_cpus')} / {cpu.get('others_cpus'):<10}",
            f"{_n(rss.get('peak')):>9} MB",
            "  {api} / {postgres}".format(**row["cpu_ms_per_request"]),
        ]
        lines.append(f"  {row['endpoint']:<28}" + "".join(cells))
        if row["noisy"]:
            lines.append(
                f"    WARNING: other programs used {cpu['others_cpus']} CPUs during this run; "
                "these numbers are not clean"
            )
        lines += [f"    error: {e}" for e in row["error_samples"]]
    return lines


def _precision_lines(p: JsonDict) -> list[str]:
    return [
        f"Precision@{p['k']} of more-like-this on the demo catalog ({p['queries']} queries, "
        f"{p['errors']} errors, {p['short_answers']} short answers)",
        f"  relevant = {p['relevance']}",
        f"  {'':<28}{'endpoint':>10}{'exact':>10}{'random':>10}",
        f"  {'precision@k':<28}{_n(p['precision_at_k'], 4):>10}{_n(p['exact_ranking_precision_at_k'], 4):>10}"
        f"{_n(p['random_ranking_precision_at_k'], 4):>10}",
        f"  {'strict (+ same pattern)':<28}{_n(p['precision_at_k_strict'], 4):>10}"
        f"{_n(p['exact_ranking_precision_at_k_strict'], 4):>10}"
        f"{_n(p['random_ranking_precision_at_k_strict'], 4):>10}",
        f"  {'same garment kind':<28}{_n(p['same_garment_kind_at_k'], 4):>10}",
    ]


def _fit_lines(fit: JsonDict) -> list[str]:
    lines = [
        f"Fit advice vs the size rendered bodies were designed to wear ({fit['bodies']} bodies, "
        f"{fit['measured_photo_pairs']} photo pairs measured by the real pipeline)",
        f"  {'chart':<12}{'setup':<8}{'pairs':>7}{'refused':>8}{'exact':>7}{'±1 size':>8}{'none':>6}"
        "  mean |error| cm of the chart's measurements",
    ]
    for g in [*fit["groups"], fit["all"]]:
        errors = ", ".join(f"{k.removesuffix('_cm')} {v}" for k, v in g["mean_abs_error_cm"].items())
        lines.append(
            f"  {g['chart']:<12}{g['setup']:<8}{g['bodies']:>7}{g['refused']:>8}{g['exact']:>7}"
            f"{g['within_one_size']:>8}{g['no_recommendation']:>6}  {errors}"
        )
    return lines


def render_table(report: JsonDict) -> str:
    m, config = report["machine"], report["config"]
    lines = [
        f"Search quality and latency ({'quick' if config['quick'] else 'full'} run, parts "
        f"{', '.join(config['parts'])}; finished {report['finished_at']}, {report['seconds']:.0f} s)",
        f"  machine: {m['cpu_count']} CPUs, {m['cpu_model']}, {m['memory_gb']} GB",
        f"  postgres: {report.get('postgres')}",
    ]
    datasets = report.get("datasets") or {}
    if datasets:
        lines.append("Datasets")
        for label, dataset in datasets.items():
            lines += _dataset_lines(label, dataset)
    similarity = report.get("similarity") or {}
    lines += _recall_lines(similarity)
    if similarity.get("filtered"):
        lines += _filtered_lines(similarity["filtered"])
    if similarity.get("halfvec"):
        lines += _halfvec_lines(similarity["halfvec"])
    if similarity.get("latency"):
        lines += _latency_lines(similarity["latency"])
    if report.get("precision"):
        lines += _precision_lines(report["precision"])
    if report.get("fit"):
        lines += _fit_lines(report["fit"])
    if report["targets"]:
        lines.append("Targets (SPEC.md)")
        lines += [
            f"  {VERDICT[t['pass']]:<5} {t['target']} (measured {t['value']})"
            + (f" [{t['note']}]" if t.get("note") else "")
            for t in report["targets"]
        ]
    lines.append("Steps")
    lines += [f"  {s['step']:<86}{s['seconds']:>9.1f} s" for s in report["steps"]]
    lines += [f"  FAILED {name}: {error}" for name, error in report["failures"].items()]
    return "\n".join(lines)


def write_report(report: JsonDict) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n"
    path = RESULTS_DIR / f"{NAME}-{stamp}.json"
    path.write_text(text)
    (RESULTS_DIR / f"{NAME}-latest.json").write_text(text)
    return path
