"""A heartbeat file for the probes of worker and scheduler containers (they serve no HTTP).

With ``HEARTBEAT_FILE`` set, a worker (once its start-up hook has built its resources and
loaded its models) and the scheduler touch that file every ``HEARTBEAT_INTERVAL_SECONDS`` from
their event loop. A file that exists means start-up finished; a recent one means the loop still
runs (a blocked or dead loop stops touching it). The probe reads its age:

    python -m tasks.runtime.heartbeat --max-age 60      # exit 0 when touched in the last 60 s, else 1
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from pathlib import Path

import anyio

from core.logging import get_logger

log = get_logger(__name__)


def touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def age_seconds(path: Path, now: float | None = None) -> float | None:
    """Seconds since ``path`` was last touched; None when it does not exist."""
    try:
        modified = path.stat().st_mtime
    except FileNotFoundError:
        return None
    return (time.time() if now is None else now) - modified


async def _beat(path: Path, interval: float) -> None:
    while True:
        try:
            touch(path)
        except OSError as exc:  # a full or read-only disk must not kill the worker; the probe will
            log.warning("heartbeat not written", path=str(path), error=repr(exc))
        await asyncio.sleep(interval)


def start(path: Path | None, interval: float) -> asyncio.Task[None] | None:
    """Touch ``path`` now and then every ``interval`` seconds until :func:`stop` (None: off)."""
    if path is None:
        return None
    return asyncio.get_running_loop().create_task(_beat(path, interval), name="heartbeat")


async def stop(task: asyncio.Task[None] | None, path: Path | None) -> None:
    """Stop beating and remove the file, so a stopping process is no longer reported ready."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if path is not None:
        await anyio.Path(path).unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Exit 0 when the heartbeat file is fresh.")
    parser.add_argument("--file", type=Path, default=os.environ.get("HEARTBEAT_FILE") or None)
    parser.add_argument("--max-age", type=float, required=True, help="seconds")
    args = parser.parse_args(argv)
    if args.file is None:
        print("HEARTBEAT_FILE is not set", file=sys.stderr)
        return 2
    age = age_seconds(args.file)
    if age is None:
        print(f"no heartbeat yet at {args.file}", file=sys.stderr)
        return 1
    if age > args.max_age:
        print(f"heartbeat is {age:.0f} s old (max {args.max_age:.0f} s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
