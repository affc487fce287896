"""Command line of the benchmark suite (the package docstring explains it)."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import benchmarks.suite as package
from benchmarks.measurement_flow import machine, no_interrupts
from benchmarks.search_quality.dataset import DatasetSpec
from benchmarks.search_quality.stack import Timer, log
from benchmarks.suite import compare
from benchmarks.suite.dataset import SuiteSpec, ensure_suite_dataset, working_copy
from benchmarks.suite.plots import write_plots
from benchmarks.suite.report import RESULTS_DIR, replace_latest, run_completed, run_stamp, write_results
from benchmarks.suite.runs import Plan
from benchmarks.suite.session import run_session
from benchmarks.suite.stack import SuiteStack
from benchmarks.suite.targets import evaluate, load_targets
from benchmarks.suite.wrk import wrk_binary
from core.logging import configure_logging

DATA_DIR = Path(".data/bench-search")
ALL = (
    "product_detail",
    "listing",
    "search",
    "similar",
    "fit_products",
    "product_fit",
    "login",
    "orders",
    "photo_search",
    "photo_search_phone",
    "photo_measurement",
    "browsing_mix",
)
QUICK = ("product_detail", "listing", "similar", "product_fit", "orders", "photo_search", "photo_measurement")
SETTINGS_NOTE = (
    "APP_ENV=production (JSON logs at INFO, no debug), PAYMENT_PROVIDER=paystack with a secret made up "
    "per run (no scenario starts a payment), MAIL_BACKEND=file, one granian worker (uvloop, no access log), "
    "one inference worker (queue inference) and one worker for the other queues; raised for the load: "
    "ACCESS_TOKEN_TTL_SECONDS=7200, LOGIN_MAX_ATTEMPTS_PER_IP, SEARCH_IMAGE_PER_MINUTE, "
    "MEASUREMENT_UPLOADS_PER_HOUR; PAGE_CACHE_MAX_PAGES=0 (no page cache: each endpoint does its "
    "floor's work) except for the browsing mix, which runs last on an API restarted with the page cache "
    "at its default"
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.suite",
        description=package.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--quick", action="store_true", help="a ~2-minute subset once the dataset exists")
    add("--scenarios", help=f"comma-separated, of {', '.join(ALL)} (default: all; quick: {', '.join(QUICK)})")
    add("--data-dir", type=Path, default=DATA_DIR, help=f"datasets and PostgreSQL (default {DATA_DIR})")
    add("--rebuild", action="store_true", help="rebuild the datasets")
    add("--products", type=int, default=100_000, help="catalog size (default 100000)")
    add("--users", type=int, default=10_000, help="shoppers with body profiles (default 10000)")
    add(
        "--orders-per-user", type=float, default=3.0, help="mean orders in each shopper's history (default 3)"
    )
    add("--seed", type=int, default=7)
    add("--seconds", type=float, help="timed seconds per open-loop run (full 15, quick 5)")
    add("--closed-seconds", type=float, help="seconds per wrk run (full 10, quick 5)")
    add("--connections", type=int, default=32, help="wrk connections (default 32)")
    add("--rates", help="offered rates as fractions of each target's rate (full 0.25,0.5,1; quick 1)")
    add("--no-profile", action="store_true", help="skip py-spy and EXPLAIN ANALYZE (full runs profile)")
    add("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    chosen = args.scenarios.split(",") if args.scenarios else list(QUICK if args.quick else ALL)
    unknown = set(chosen) - set(ALL)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    args.scenarios = [s for s in ALL if s in chosen]
    args.seconds = args.seconds or (5.0 if args.quick else 15.0)
    args.closed_seconds = args.closed_seconds or (5.0 if args.quick else 10.0)
    rates = args.rates or ("1" if args.quick else "0.25,0.5,1")
    args.rate_factors = tuple(float(r) for r in rates.split(","))
    args.profile = not (args.no_profile or args.quick)
    return args


def commit() -> str | None:
    """The checkout's commit, marked when files differ from it (None outside a git checkout)."""
    git = shutil.which("git")
    if git is None:
        return None
    outputs = []
    for args in (["rev-parse", "--short", "HEAD"], ["status", "--porcelain", "--untracked-files=no"]):
        try:
            done = subprocess.run(  # noqa: S603  # git itself, fixed arguments
                [git, *args], capture_output=True, text=True, check=True
            )
        except (OSError, subprocess.CalledProcessError):
            return None
        outputs.append(done.stdout.strip())
    head, dirty = outputs
    return head + (" with uncommitted changes" if dirty else "")


def versions(stack: SuiteStack) -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for name in ("litestar", "granian", "sqlalchemy", "asyncpg", "msgspec", "uvloop", "onnxruntime"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    out["postgres"] = stack.postgres.psql("SHOW server_version")
    out["pgvector"] = stack.postgres.psql(
        "SELECT extversion FROM pg_extension WHERE extname = 'vector'", "bench_run"
    )
    return out


def run(args: argparse.Namespace, report: dict[str, Any], timer: Timer) -> None:
    wrk_binary()  # fail before any work when wrk is missing
    stack = SuiteStack(args.data_dir)
    catalog = DatasetSpec("similarity", args.products, args.seed, min(2_000, args.products // 50), 0.9, 16)
    spec = SuiteSpec(catalog, args.users, args.orders_per_user)
    try:
        with timer.step("start PostgreSQL and Redis"):
            stack.start_services()
        # Before the dataset: a fresh build writes the catalog's photos under this name.
        stack.catalog_database = catalog.name
        with timer.step(f"dataset {spec.name}"):
            dataset = ensure_suite_dataset(stack, spec, rebuild=args.rebuild)
        report["dataset"] = dataset.report()
        report["dataset_note"] = (
            f"{args.products:,} products (variants, size charts, fit profiles; {catalog.base_photos:,} real "
            f"photos embedded by the model, the rest look-alike embeddings, see benchmarks/search_quality), "
            f"{args.users:,} shoppers with ready body profiles, ~{args.orders_per_user:g} past orders each; "
            f"{'reused' if dataset.reused else 'built in this run'}"
        )
        database = working_copy(stack, dataset, timer)
        report["pinning"] = stack.pin_rest()
        report["versions"] = versions(stack)
        started = time.perf_counter()
        plan = Plan(
            args.rate_factors, args.seconds, 1.0 if args.quick else 3.0, args.closed_seconds, args.connections
        )
        asyncio.run(run_session(stack, database, args, plan, report, timer))
        report["scenario_seconds"] = round(time.perf_counter() - started, 1)
    finally:
        with no_interrupts():
            stack.stop_api()
            stack.stop_services()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["compare"]:
        return compare.main(argv[1:])
    if argv[:1] == ["plots"]:
        import json  # noqa: PLC0415

        source = Path(argv[1])
        for path in write_plots(json.loads(source.read_text()), load_targets(), source.parent, source.stem):
            print(path)
        return 0
    args = parse_args(argv)
    configure_logging(level="INFO", fmt="console", process="bench")
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    started = time.perf_counter()
    timer = Timer([])
    report: dict[str, Any] = {
        "benchmark": "suite",
        "quick": args.quick,
        "scenarios_run": args.scenarios,
        "settings_note": SETTINGS_NOTE,
        "commit": commit(),
        "scenarios": {},
        "failures": {},
    }
    exit_code = 0
    try:
        run(args, report, timer)
    except KeyboardInterrupt:
        report["failures"]["run"] = "interrupted"
        exit_code = 130
    except Exception as exc:
        log.exception("the benchmark suite failed")
        report["failures"]["run"] = f"{type(exc).__name__}: {exc}"
        exit_code = 2
    report["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["steps"] = timer.steps
    report["machine"] = machine()
    report["targets"] = evaluate(report, load_targets())
    write_outputs(report, args.results_dir)
    return exit_code


def write_outputs(report: dict[str, Any], results_dir: Path) -> list[Path]:
    """This run's results under its own time; the committed ``latest`` ones only if it completed."""
    stamp = run_stamp()
    paths = write_results(report, results_dir, stamp)
    try:
        paths += write_plots(report, load_targets(), results_dir, f"bench-{stamp}")
    except Exception as exc:  # plots are a view of the JSON; the JSON is written already
        log.warning("plots failed", error=str(exc))
    with no_interrupts():  # a few renames: let them all happen
        paths += replace_latest(report, results_dir, stamp)
    print(paths[1].read_text().split("## The floor")[0])
    print("written:", *map(str, paths), sep="\n  ")
    if not run_completed(report):
        reason = report["failures"]["run"]
        print(f"The run did not complete ({reason}): {results_dir}/latest.* are left as they were.")
    return paths
