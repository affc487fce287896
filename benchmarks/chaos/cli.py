"""``python -m benchmarks.chaos`` (``just chaos``): start the stack, inject the faults, report."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path

from benchmarks.chaos import __doc__ as DESCRIPTION
from benchmarks.chaos.faults import ALIASES, FAULTS, FULL, QUICK, Chaos, FaultResult, Sizes
from benchmarks.chaos.report import RESULTS_DIR, build_report, render_table, write_report
from benchmarks.chaos.stack import QUEUES, ChaosStack, new_root
from core.logging import configure_logging, get_logger

log = get_logger("benchmarks.chaos")


async def run_faults(stack: ChaosStack, sizes: Sizes, names: list[str]) -> list[FaultResult]:
    """Each fault in turn; what a failed fault left broken is started again before the next."""
    chaos = Chaos(stack, sizes)
    results = []
    try:
        for name in names:
            print(f"--- {name}", flush=True)
            result = await chaos.run(name, FAULTS[name](chaos))
            healed = stack.heal()
            if healed:
                result.notes["restarted_afterwards"] = healed
            print(f"    {'PASS' if result.passed else 'FAIL'} in {result.seconds} s", flush=True)
            results.append(result)
    finally:
        await chaos.close()
    return results


def select(names: str | None) -> list[str]:
    if not names:
        return list(FAULTS)
    chosen = []
    for name in (n.strip() for n in names.split(",") if n.strip()):
        if name not in ALIASES:
            raise SystemExit(f"unknown fault {name!r}; known: {', '.join(ALIASES)}")
        chosen.append(ALIASES[name])
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller bursts and shorter outages (~3 min)")
    parser.add_argument("--faults", help=f"a subset, comma-separated: {','.join(ALIASES)}")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="where the JSON result goes")
    parser.add_argument("--data-dir", type=Path, help="the stack's directory (default: a temporary one)")
    parser.add_argument("--keep-data", action="store_true", help="keep the stack's data and logs")
    args = parser.parse_args(argv)
    names = select(args.faults)
    sizes = QUICK if args.quick else FULL
    configure_logging(level="WARNING", fmt="console", process="chaos")
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop cleanly on SIGTERM as on Ctrl-C

    root = args.data_dir.resolve() if args.data_dir else new_root()
    queues = tuple(q for q in QUEUES if q != "inference" or ALIASES["inference"] in names)
    stack = ChaosStack(root)
    started = time.monotonic()
    try:
        print(f"starting the stack in {root} (workers: {', '.join(queues)})", flush=True)
        stack.start(queues)
        results = asyncio.run(run_faults(stack, sizes, names))
    except KeyboardInterrupt:
        return 130
    except RuntimeError as exc:
        print(f"the stack could not start: {exc}", file=sys.stderr)
        return 2
    finally:
        stack.stop()
        if args.keep_data or args.data_dir:
            print(f"data and logs kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    report = build_report(results, sizes=asdict(sizes), seconds=time.monotonic() - started, quick=args.quick)
    print(render_table(report))
    print(f"written to {write_report(report, args.out)}")
    return 0 if report["passed"] else 1
