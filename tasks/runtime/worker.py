"""Start a worker (for some or all queues) or the scheduler.

    python -m tasks.runtime.worker --queues inference    # one queue
    python -m tasks.runtime.worker                       # every queue
    python -m tasks.runtime.worker --scheduler           # the periodic-job scheduler

Task modules are every module of the ``tasks`` package outside ``tasks.runtime`` (found by
walking the package), plus any ``--module`` given (tests add their own).
"""

from __future__ import annotations

import argparse
import os
import pkgutil
import sys

import tasks
from core.settings import get_settings
from tasks.runtime.queues import parse_queues


def task_modules() -> list[str]:
    """Every module of the ``tasks`` package except this machinery (``tasks.runtime``)."""
    return sorted(
        f"tasks.{m.name}" for m in pkgutil.iter_modules(tasks.__path__) if not m.ispkg and m.name != "runtime"
    )


def build_command(args: argparse.Namespace) -> list[str]:
    modules = [*task_modules(), *args.module]
    if args.scheduler:
        return ["taskiq", "scheduler", "tasks.runtime.scheduler:scheduler", *modules, "--skip-first-run"]
    settings = get_settings()
    max_async = settings.worker_max_async_tasks
    if "inference" in parse_queues(args.queues):
        max_async = min(max_async, settings.inference_max_async_tasks)
    return [
        "taskiq",
        "worker",
        "tasks.runtime.broker:broker",
        *modules,
        # Releases a message whose processing ended unacknowledged, for redelivery (tasks.runtime.streams).
        "--receiver",
        "tasks.runtime.streams:ReleasingReceiver",
        "--workers",
        str(args.processes),
        "--ack-type",
        "when_saved",
        "--max-async-tasks",
        str(max_async),
        "--wait-tasks-timeout",
        str(args.shutdown_timeout),
        "--no-configure-logging",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--queues", default=os.environ.get("WORKER_QUEUES", "all"))
    parser.add_argument("--processes", type=int, default=1, help="worker processes")
    parser.add_argument("--module", action="append", default=[], help="extra task module to import")
    parser.add_argument("--scheduler", action="store_true", help="run the scheduler instead")
    parser.add_argument("--shutdown-timeout", type=float, default=30.0)
    args = parser.parse_args(argv)
    queues = parse_queues(args.queues)
    os.environ["WORKER_QUEUES"] = ",".join(queues)
    # glibc gives every thread that allocates its own malloc arena; with image decoding and
    # onnxruntime threads that fragmentation cost ~200 MB of RSS in the inference worker.
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")
    command = build_command(args)
    exe = os.path.join(os.path.dirname(sys.executable), command[0])
    os.execv(exe, [exe, *command[1:]])  # noqa: S606  # replace this process: signals reach taskiq directly


if __name__ == "__main__":
    main()
