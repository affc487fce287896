"""Command line of the soak (the package docstring explains it)."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec

import benchmarks.soak as package
from benchmarks.measurement_flow import CpuMeter, PhotoPair, machine, no_interrupts, render_pairs
from benchmarks.search_quality.dataset import DatasetSpec
from benchmarks.search_quality.stack import Timer, connect, log
from benchmarks.soak import checks, marketplace
from benchmarks.soak import report as rp
from benchmarks.soak.driver import FLOW_NOTE, MIX, Driver
from benchmarks.soak.stack import SoakStack
from benchmarks.suite.dataset import SuiteSpec, copy_database, ensure_suite_dataset
from benchmarks.suite.session import log_in
from benchmarks.suite.stack import INFERENCE_WORKER
from core.logging import configure_logging
from core.settings import load_settings

DATA_DIR = Path(".data/soak")
RUN_DATABASE = "soak_run"
PHOTO_PAIRS = 12
LATENCY_NOTE = (
    "open loop: flows start at fixed times at the offered rate; a flow's first request is timed from "
    "the flow's scheduled start (waiting in the generator, the connection pool or the server's accept "
    "queue counts), its later requests from their own send; percentiles are nearest-rank over successful "
    "answers; measure_ready is upload due time -> ready seen by polling every 0.5 s"
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.soak",
        description=package.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--minutes", type=float, help="minutes of load (default 10; --quick 2)")
    add("--rate", type=float, default=20.0, help="flows started per second (default 20)")
    add("--quick", action="store_true", help="a ~2-minute run (shorter windows and warm-up)")
    add("--out", type=Path, default=rp.RESULTS_DIR, help=f"results directory (default {rp.RESULTS_DIR})")
    add("--data-dir", type=Path, default=DATA_DIR, help=f"PostgreSQL and datasets (default {DATA_DIR})")
    add("--products", type=int, default=3_000, help="catalog size (default 3000)")
    add("--users", type=int, default=300, help="shoppers with body profiles (default 300)")
    add("--seed", type=int, default=7)
    add("--rebuild", action="store_true", help="rebuild the dataset")
    add("--drain-seconds", type=float, default=180.0, help="longest wait for the workers after the load")
    add(
        "--no-marketplace",
        dest="marketplace",
        action="store_false",
        help="without the marketplace flows (checkout across stores, fulfilment, returns)",
    )
    args = parser.parse_args(argv)
    args.minutes = args.minutes or (2.0 if args.quick else 10.0)
    if args.minutes <= 0 or args.rate <= 0 or args.users < 12:
        parser.error("--minutes and --rate must be positive, --users at least 12")
    short = args.minutes < 5
    args.window_seconds = 20.0 if short else 60.0
    args.warmup_seconds = 20.0 if short else 60.0
    # The inference worker's heap grows while it meets its first few dozen photo pairs (~3 minutes
    # at this mix): its slope is fitted after that (see the package docstring).
    args.inference_warmup_seconds = 60.0 if short else 180.0
    args.rss_interval = 1.0
    return args


def catalog_spec(args: argparse.Namespace) -> DatasetSpec:
    return DatasetSpec("similarity", args.products, args.seed, min(300, args.products // 10), 0.9, 16)


def run(args: argparse.Namespace, report: dict[str, Any], timer: Timer) -> None:
    stack = SoakStack(args.data_dir)
    catalog = catalog_spec(args)
    spec = SuiteSpec(catalog, args.users, 2.0)
    with timer.step(f"render {PHOTO_PAIRS} photo pairs"):
        photos = render_pairs(args.seed, range(PHOTO_PAIRS))
    try:
        with timer.step("start PostgreSQL and Redis"):
            stack.start_services()
        stack.catalog_database = catalog.name  # a fresh build stores the catalog's photos under it
        with timer.step(f"dataset {spec.name}"):
            dataset = ensure_suite_dataset(stack, spec, rebuild=args.rebuild)
        report["dataset"] = dataset.report()
        report["dataset_note"] = (
            f"{args.products:,} products (variants, size charts, fit profiles; {catalog.base_photos} real "
            "photos embedded by the model, the rest look-alike embeddings, see benchmarks/search_quality), "
            f"{args.users} shoppers with ready body profiles and ~2 past orders each "
            f"({'reused' if dataset.reused else 'built in this run'}); the run works on a fresh copy, "
            f"{RUN_DATABASE}"
        )
        with timer.step(f"working copy {RUN_DATABASE}"):
            copy_database(stack, spec.name, RUN_DATABASE)
        shutil.rmtree(stack.mail_dir, ignore_errors=True)
        with timer.step("start the Paystack stand-in, workers (models loaded), scheduler and API"):
            base_url = stack.start_all(RUN_DATABASE)
        report["stack_note"] = stack.note()
        asyncio.run(soak(stack, base_url, args, report, photos, timer))
    finally:
        with no_interrupts():
            stack.stop_api()  # every process, the API first
            stack.stop_services()


async def soak(
    stack: SoakStack,
    base_url: str,
    args: argparse.Namespace,
    report: dict[str, Any],
    photos: list[PhotoPair],
    timer: Timer,
) -> None:
    url = stack.dataset_settings(RUN_DATABASE).require_database_url()
    api_settings = load_settings(stack.environment(RUN_DATABASE), dotenv=None)
    with timer.step(f"log in {args.users} shoppers"):
        headers = await log_in(base_url, api_settings, url, args.users)
    async with connect(url) as conn:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            with timer.step("request pools; stock of the variants sold"):
                pools, initial = await checks.build_pools(conn, client, headers, photos, args.seed)
            setup = None
            if args.marketplace:
                with timer.step("marketplace: stores' shipping profiles, tokens and stock"):
                    setup = await marketplace.prepare(conn, client, api_settings, args.seed, set(initial))
                initial |= setup.initial
        since = await conn.fetchval("SELECT now()")
    driver = Driver(
        stack,
        RUN_DATABASE,
        base_url,
        pools,
        rate=args.rate,
        seconds=args.minutes * 60,
        seed=args.seed,
        rss_interval=args.rss_interval,
        mix=marketplace.soak_mix(MIX) if setup is not None else MIX,
    )
    market = marketplace.Flows(driver, setup) if setup is not None else None
    if market is not None:
        driver.extra_flows = market.handlers()
    cpu = CpuMeter([os.getpid(), stack.postmaster_pid() or os.getpid()])
    cpu.start()
    with timer.step(f"load: {args.minutes:g} min at {args.rate:g} flows/s, workers restarted twice"):
        await driver.run()
    cpu.stop()
    async with connect(url) as conn:
        with timer.step("drain: the workers finish what was accepted"):
            facts, drained = await checks.drain(
                conn, driver.ledger, initial, since, stack.mail_dir, args.drain_seconds
            )
    describe(report, args, driver, facts, drained, cpu.report, paystack_stats(stack.paystack_port))
    if market is not None:
        report["marketplace"] = market.report()


def paystack_stats(port: int) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stats", timeout=5) as answer:  # our loopback
            stats: dict[str, Any] = msgspec.json.decode(answer.read())
            return stats
    except OSError as exc:
        return {"error": str(exc)}


def describe(
    report: dict[str, Any],
    args: argparse.Namespace,
    driver: Driver,
    facts: dict[str, Any],
    drained: float,
    cpu: dict[str, float],
    paystack: dict[str, Any],
) -> None:
    calls = driver.calls
    load_seconds = driver.load_seconds or args.minutes * 60
    started = sum(driver.flows_started.values())
    windows = rp.window_table(calls, args.window_seconds, load_seconds)
    report["load"] = {
        "minutes": args.minutes,
        "rate": args.rate,
        "mix": driver.mix,
        "flow_note": FLOW_NOTE + (f"; {marketplace.FLOW_NOTE}" if "checkout" in driver.mix else ""),
        "flows_started": started,
        "flows_by_kind": driver.flows_started,
        "achieved_rate": round(started / load_seconds, 2),
        "flows_without_an_unpaid_order": driver.ledger.pay_skipped,
        "seconds": round(load_seconds, 1),
    }
    report["requests_total"] = sum(1 for c in calls if c.kind != "measure_ready")
    report["kinds"] = rp.per_kind(calls)
    report["window_seconds"] = args.window_seconds
    report["windows"] = windows
    report["drift"] = {kind: rp.drift(rows) for kind, rows in windows.items()}
    report["errors_by_type"] = rp.errors_by_type(calls)
    report["faults"] = driver.faults
    report["drain_seconds"] = drained
    report["facts"] = facts
    report["jobs"] = rp.jobs_table(facts)
    report["invariants"] = rp.evaluate_invariants(facts)
    report["memory"] = rp.memory_growth(
        driver.rss, args.warmup_seconds, role_warmups={INFERENCE_WORKER: args.inference_warmup_seconds}
    )
    report["memory_note"] = (
        "RSS of the largest process of each tree (the granian worker, the taskiq worker process) "
        f"every {args.rss_interval:g} s during the load; slope = least squares over the low-water "
        f"marks (lowest RSS of each {rp.LOW_WATER_WINDOW_SECONDS:g} s window; for the inference "
        "worker, of the samples taken with no photo pair in flight) from "
        f"{args.warmup_seconds:g} s (inference worker: {args.inference_warmup_seconds:g} s) after "
        "each incarnation started (the API: after the load started), pooled over a worker's "
        "incarnations; bound "
        f"{rp.RSS_SLOPE_BOUND_MB_PER_MIN} MB/min (see benchmarks/soak/__init__.py), judged where "
        "two standard errors fit within it, failed where the slope exceeds it by more than two "
        f"standard errors; series shorter than {rp.MIN_JUDGED_SPAN_SECONDS:g} s after warm-up "
        "are not judged"
    )
    report["rss_samples"] = [[s.at, s.role, s.process, s.rss_mb, int(s.busy)] for s in driver.rss]
    report["cpu_windows"] = rp.cpu_windows(driver.cpu, args.window_seconds, load_seconds)
    report["latency_note"] = LATENCY_NOTE
    report["cpu_during_load"] = cpu
    report["paystack_stand_in"] = paystack


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    configure_logging(level="INFO", fmt="console", process="soak")
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    started = time.perf_counter()
    timer = Timer([])
    report: dict[str, Any] = {"benchmark": "soak", "quick": args.quick, "started_at": _now()}
    exit_code = 0
    try:
        run(args, report, timer)
    except KeyboardInterrupt:
        report["failure"] = "interrupted"
        exit_code = 130
    except Exception as exc:
        log.exception("the soak failed")
        report["failure"] = f"{type(exc).__name__}: {exc}"
        exit_code = 2
    report["finished_at"] = _now()
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["steps"] = timer.steps
    report["machine"] = machine()
    report["verdict"] = rp.verdict(report)
    paths = rp.write_results(report, args.out)
    print("\n".join(rp.summary_lines(report)))
    print("written:", *map(str, paths), sep="\n  ")
    if exit_code:
        return exit_code
    return 0 if report["verdict"]["pass"] else 1


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
