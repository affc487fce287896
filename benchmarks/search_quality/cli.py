"""Command line of the search-quality benchmark (the module docstring of the package explains it)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import benchmarks.search_quality as package
from benchmarks.measurement_flow import machine, no_interrupts
from benchmarks.search_quality.dataset import DatasetSpec, ensure_dataset
from benchmarks.search_quality.parts import Config, precision_part, similarity_parts
from benchmarks.search_quality.report import render_table, targets, write_report
from benchmarks.search_quality.stack import SearchStack, Timer, log
from core.logging import configure_logging

PARTS = ("recall", "filtered", "halfvec", "latency", "precision", "fit")
# filtered and halfvec study how the search works; they run when asked for.
DEFAULT_PARTS = ("recall", "latency", "precision", "fit")
DATA_DIR = Path(".data/bench-search")
# option: (full run, --quick)
SIZES: dict[str, tuple[Any, Any]] = {
    "products": (100_000, 20_000),
    "base_photos": (2_000, 500),
    "queries": (200, 50),
    "filtered_queries": (100, 30),
    "seconds": (20.0, 5.0),
    "warmup": (3.0, 1.0),
    "shoppers": (50, 20),
    "precision_products": (1_000, 500),
    "fit_bodies": (40, 20),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.search_quality",
        description=package.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add(
        "--parts",
        default=",".join(DEFAULT_PARTS),
        help=f"comma-separated, of {', '.join(PARTS)} (default: {','.join(DEFAULT_PARTS)})",
    )
    add("--quick", action="store_true", help="smaller numbers everywhere (a few minutes)")
    add("--data-dir", type=Path, default=DATA_DIR, help=f"where datasets live (default {DATA_DIR})")
    add("--rebuild", action="store_true", help="rebuild the datasets even when a matching one exists")
    add("--seed", type=int, default=7, help="seed of the catalog, queries and bodies (default 7)")
    add("--products", type=int, help="products of the similarity dataset (100000; quick 20000)")
    add("--base-photos", type=int, help="of them with real photos (2000; quick 500)")
    add("--noise-cosine", type=float, default=0.9, help="cosine of a noise copy to its base (default 0.9)")
    add(
        "--noise-rank",
        type=int,
        default=16,
        help="the copies' noise lies in a shared random subspace of this rank; 0: isotropic (default 16)",
    )
    add("--k", type=int, default=10, help="results per query, k of recall@k and precision@k (default 10)")
    add("--queries", type=int, help="query products of the in-database recall check (200; quick 50)")
    add("--ef", default="40,64,100,200,400", help="hnsw.ef_search values (default 40,64,100,200,400)")
    add("--filter", action="append", dest="filters",
        help='a filter of the HTTP recall check as a query string, e.g. '
        '"category=men-shoes&max_price=3000000"; repeatable; "auto" (the default) is the category '
        "closest to --filter-share")  # fmt: skip
    add(
        "--filter-share", type=float, default=0.02, help="share of products of the auto filter (default 0.02)"
    )
    add("--filtered-queries", type=int, help="query products per HTTP recall filter (100; quick 30)")
    add(
        "--scan-per-row",
        default="10,25,50,100",
        help="hnsw.max_scan_tuples per row asked in the filtered part's scan-limit check (10,25,50,100)",
    )
    add("--similar-rate", type=float, default=200.0, help="offered req/s of /products/{id}/similar (200)")
    add("--fit-rate", type=float, default=300.0, help="offered req/s of each fit endpoint (300)")
    add("--seconds", type=float, help="timed seconds per load scenario (20; quick 5)")
    add("--warmup", type=float, help="untimed seconds before each load scenario (3; quick 1)")
    add("--pin-cpus", action="store_true",
        help="the API alone on the last CPU during the load (SPEC's topology)")  # fmt: skip
    add("--shoppers", type=int, help="shoppers with body profiles for the fit load (50; quick 20)")
    add("--precision-products", type=int, help="products of the demo catalog for precision (1000; quick 500)")
    add("--fit-bodies", type=int, help="rendered bodies, half per chart (40; quick 20)")
    add("--fit-setups", default="studio,phone", help="photo setups of the fit check (default studio,phone)")
    args = parser.parse_args(argv)
    for name, (full, quick) in SIZES.items():
        if getattr(args, name, None) is None:
            setattr(args, name, quick if args.quick else full)
    args.parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    args.filters = args.filters or ["auto"]
    return args


def _config(args: argparse.Namespace) -> Config:
    return Config(
        parts=frozenset(args.parts),
        seed=args.seed,
        k=args.k,
        queries=args.queries,
        ef_values=[int(v) for v in args.ef.split(",")],
        filters=args.filters,
        filter_share=args.filter_share,
        filtered_queries=args.filtered_queries,
        similar_rate=args.similar_rate,
        fit_rate=args.fit_rate,
        seconds=args.seconds,
        warmup_seconds=args.warmup,
        shoppers=args.shoppers,
        pin_cpus=args.pin_cpus,
        scan_per_row=tuple(int(v) for v in args.scan_per_row.split(",")),
    )


def _run_stack_parts(args: argparse.Namespace, report: dict[str, Any], timer: Timer) -> None:
    config = _config(args)
    stack = SearchStack(args.data_dir)
    try:
        with timer.step("start PostgreSQL (reused data directory) and Redis"):
            stack.start_services()
        report["postgres"] = stack.postgres.psql(
            "SELECT concat_ws(', ', split_part(version(), ' ', 2), 'pgvector ' || (SELECT extversion FROM "
            "pg_extension WHERE extname = 'vector'), 'shared_buffers ' || current_setting('shared_buffers'), "
            "'jit ' || current_setting('jit'))",
            "postgres",
        )
        if {"recall", "filtered", "halfvec", "latency"} & config.parts:
            spec = DatasetSpec(
                "similarity", args.products, args.seed, args.base_photos, args.noise_cosine, args.noise_rank
            )
            with timer.step(f"dataset {spec.name}"):
                dataset = ensure_dataset(stack, spec, rebuild=args.rebuild)
            report["datasets"]["similarity"] = dataset.report()
            with timer.step("start the API (granian, 1 worker, APP_ENV=production, JSON logs at INFO)"):
                base_url = stack.start_api(spec.name)
            try:
                report["similarity"] = asyncio.run(similarity_parts(config, stack, dataset, base_url, timer))
            except Exception as exc:
                log.exception("recall/latency failed")
                report["failures"]["recall/latency"] = f"{type(exc).__name__}: {exc}"
                stack.print_log_tails()
            stack.stop_api()
        if "precision" in config.parts:
            spec = DatasetSpec("demo", args.precision_products, args.seed)
            with timer.step(f"dataset {spec.name}"):
                dataset = ensure_dataset(stack, spec, rebuild=args.rebuild)
            report["datasets"]["precision"] = dataset.report()
            base_url = stack.start_api(spec.name)
            try:
                with timer.step(f"precision@{args.k} through HTTP"):
                    report["precision"] = asyncio.run(precision_part(stack, dataset, base_url, args.k))
            except Exception as exc:
                log.exception("precision failed")
                report["failures"]["precision"] = f"{type(exc).__name__}: {exc}"
            stack.stop_api()
    finally:
        with no_interrupts():
            stack.stop_api()
            stack.stop_services()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(level="INFO", fmt="console", process="bench")
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop cleanly on SIGTERM as on Ctrl-C
    started = time.perf_counter()
    timer = Timer([])
    report: dict[str, Any] = {
        "benchmark": "search_quality",
        "config": {
            "quick": args.quick,
            "parts": args.parts,
            "seed": args.seed,
            "k": args.k,
            "products": args.products,
            "base_photos": args.base_photos,
            "noise_cosine": args.noise_cosine,
            "noise_rank": args.noise_rank,
            "queries": args.queries,
            "ef_search": args.ef,
            "filters": args.filters,
            "filter_share": args.filter_share,
            "filtered_queries": args.filtered_queries,
            "scan_per_row": args.scan_per_row,
            "similar_rate": args.similar_rate,
            "fit_rate": args.fit_rate,
            "seconds": args.seconds,
            "warmup_seconds": args.warmup,
            "shoppers": args.shoppers,
            "pin_cpus": args.pin_cpus,
            "precision_products": args.precision_products,
            "fit_bodies": args.fit_bodies,
            "fit_setups": args.fit_setups,
            "data_dir": str(args.data_dir),
        },
        "latency_measured_from": "each request's scheduled send time (open loop)",
        "datasets": {},
        "failures": {},
    }
    exit_code = 0
    try:
        if {"recall", "filtered", "halfvec", "latency", "precision"} & set(args.parts):
            _run_stack_parts(args, report, timer)
        if "fit" in args.parts:
            from benchmarks.search_quality.fit_agreement import fit_agreement  # noqa: PLC0415  # loads models

            setups = [s.strip() for s in args.fit_setups.split(",") if s.strip()]
            with timer.step(f"fit agreement ({args.fit_bodies} bodies x {len(setups)} setups)"):
                report["fit"] = fit_agreement(args.fit_bodies, setups, args.seed)
    except KeyboardInterrupt:
        log.warning("interrupted; writing what was measured")
        report["failures"]["run"] = "interrupted"
        exit_code = 130
    except Exception as exc:
        log.exception("the benchmark failed")
        report["failures"]["run"] = f"{type(exc).__name__}: {exc}"
        exit_code = 2
    report["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["steps"] = timer.steps
    report["machine"] = machine()
    report["targets"] = targets(report)
    path = write_report(report)
    print(render_table(report))
    print(f"  written to {path}")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
