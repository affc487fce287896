"""Body measurement end to end through HTTP: photo pair upload → profile ``ready``.

    python -m benchmarks.measurement_flow [--pairs 40] [--rate 2] [--base-url URL]

Without ``--base-url`` it starts a stack of its own in a throwaway data directory (embedded
PostgreSQL + pgvector and Redis on free ports, migrations, the demo accounts but no catalog),
with JSON logs at INFO and the upload limit raised: ONE inference worker
(``tasks.runtime.worker --queues inference``), one worker for the other queues and the API on granian
(one worker process). Everything it started is stopped at the end, also on an error or Ctrl-C.
With ``--base-url`` it only logs in to a stack that is already running (which must allow enough
uploads per hour: MEASUREMENT_UPLOADS_PER_HOUR).

Before any timing it renders the photo pairs (front + side JPEG, 720x1280, one synthetic body
each, deterministic from ``--seed``), logs in as the demo shopper and sends a few warm-up pairs.
Then it uploads the pairs OPEN-LOOP at the offered rate: send times are fixed in advance, and
every latency is measured from a pair's *scheduled* send time, not from when its request
actually went out, so time spent queueing anywhere (including in this load generator) counts.
Each upload (POST /measurements, 202) is followed until ``ready`` or ``failed`` over its
server-sent events (GET /measurements/{id}/events), or by polling GET /measurements/{id}
every 25 ms where the stream is not available.

The rare pair the pipeline refuses comes back ``failed``: those are counted apart and left out
of the upload → ready percentiles (percentiles are nearest-rank). Non-202 answers, transport
errors and pairs not finished in time are errors. The inference worker's RSS is sampled idle
(models loaded, before the warm-up) and at its peak during the run. The table is printed and
written as JSON to ``benchmarks/results/measurement_flow-<UTC time>.json`` and
``measurement_flow-latest.json``. Targets (SPEC.md) are reported as pass/fail; the exit code
is 0 when the benchmark ran, nonzero when the stack could not start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil

from core.logging import configure_logging, get_logger
from core.settings import Settings, load_settings
from db import migrate
from devstack.secrets import new_secrets
from devstack.seed import DEMO_PASSWORD, seed_demo_data
from devstack.services import die_with_parent, free_port
from devstack.up import Child, Stack, api_command
from training.body.anthropometry import sample_body
from training.body.render import render_pair

log = get_logger("benchmarks.measurement_flow")

API = "/api/v1"
DEMO_SHOPPER = "shopper@demo.fashionistar.dev"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
FINISHED = ("ready", "failed")
POLL_INTERVAL_SECONDS = 0.025
START_LEAD_SECONDS = 0.5  # between scheduling the sends and the first one
TARGET_P95_MS = 1500.0
TARGET_RATE = 2.0
TARGET_WORKER_RSS_MB = 350.0
TARGET_API_RSS_MB = 200.0
OTHER_QUEUES = "critical,emails,analytics"
REPORTED_SETTINGS = (
    "app_env", "log_format", "log_level", "api_workers", "inference_threads", "inference_max_batch",
    "worker_max_async_tasks", "measurement_uploads_per_hour",
)  # fmt: skip
INFERENCE_WORKER = "worker-inference"  # its process name, and its log file's

# JSON documents (API bodies, log lines, the report) are dicts of mixed values.
JsonDict = dict[str, Any]


# --- photos -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PhotoPair:
    front: bytes
    side: bytes
    height_cm: float


def render_one(seed: int, index: int) -> PhotoPair:
    """Pair ``index`` of ``seed``: the same photos whatever the count and order of rendering."""
    rng = np.random.default_rng([seed, index])
    pair = render_pair(sample_body(rng), rng, size=(720, 1280))
    return PhotoPair(pair.front.jpeg, pair.side.jpeg, round(pair.body.measurements["height_cm"], 1))


def render_pairs(seed: int, indices: range) -> list[PhotoPair]:
    pool = ProcessPoolExecutor(max_workers=os.cpu_count() or 1)
    try:
        return list(pool.map(render_one, [seed] * len(indices), indices))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # Ctrl-C: the renders not started are dropped


# --- the stack --------------------------------------------------------------------------------
class BenchStack(Stack):
    """devstack's Stack with the processes this benchmark needs, each logging to a file."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, workers=0, with_scheduler=False)
        self.log_dir = settings.data_dir / "logs"

    def spawn(self, name: str, args: list[str], env: dict[str, str], stop_timeout: float) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with (self.log_dir / f"{name}.log").open("wb") as out:
            # preexec_fn: nothing else runs threads while the benchmark starts its processes.
            process = subprocess.Popen(  # noqa: S603  # our own interpreter and arguments
                args,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,  # noqa: PLW1509
            )
        self.children.append(Child(name, process, stop_timeout))
        log.info("started", process=name, pid=process.pid)

    def start_processes(self, settings: Settings) -> None:
        env = {
            **os.environ,
            "DATABASE_URL": settings.require_database_url(),
            "REDIS_URL": settings.require_redis_url(),
            "PYTHONUNBUFFERED": "1",
        }
        py = sys.executable
        self.spawn(INFERENCE_WORKER, [py, "-m", "tasks.runtime.worker", "--queues", "inference"], env, 35)
        self.spawn("worker-other", [py, "-m", "tasks.runtime.worker", "--queues", OTHER_QUEUES], env, 35)
        self.spawn("api", api_command(settings), env, 15)

    def child(self, name: str) -> Child:
        return next(c for c in self.children if c.name == name)

    def log_text(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_for_log(self, name: str, needles: tuple[str, ...], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(c.process.poll() is not None for c in self.children):
                return False
            text = self.log_text(name)
            if all(needle in text for needle in needles):
                return True
            time.sleep(0.2)
        return False

    def print_log_tails(self, lines: int = 30) -> None:
        for child in self.children:
            tail = self.log_text(child.name).splitlines()[-lines:]
            print(
                f"--- {child.name} (exit code {child.process.poll()}) ---", *tail, sep="\n", file=sys.stderr
            )


def bench_environment(data_dir: Path) -> dict[str, str]:
    """Variables for every process of the benchmark's own stack (they win over a ``.env``)."""
    return {
        "APP_ENV": "dev",  # production refuses demo accounts; the rest is set as production has it
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        "DATA_DIR": str(data_dir),
        "MEDIA_DIR": str(data_dir / "media"),
        "PRIVATE_MEDIA_DIR": str(data_dir / "private"),
        "MAIL_BACKEND": "file",
        "MAIL_DIR": str(data_dir / "mail"),
        "DATABASE_URL": "",  # empty: embedded, even if a .env names a server
        "REDIS_URL": "",
        "EMBEDDED_REDIS_PORT": str(free_port()),
        "API_HOST": "127.0.0.1",
        "API_PORT": str(free_port()),
        "API_WORKERS": "1",
        "MEASUREMENT_UPLOADS_PER_HOUR": "1000000",
        **new_secrets(),  # secrets of this run, as `up` makes them for a data directory
    }


# --- memory -------------------------------------------------------------------------------------
def tree_rss_mb(pid: int) -> float | None:
    """RSS of the largest process of a tree (the taskiq or granian worker under its supervisor)."""
    try:
        parent = psutil.Process(pid)
        processes = [parent, *parent.children(recursive=True)]
    except psutil.Error:
        return None
    rss = []
    for process in processes:
        with contextlib.suppress(psutil.Error):
            rss.append(process.memory_info().rss)
    return round(max(rss) / 2**20, 1) if rss else None


@dataclass
class RssSeries:
    pid: int
    idle: float | None = None
    peak: float | None = None

    def sample(self) -> None:
        value = tree_rss_mb(self.pid)
        if value is not None:
            self.peak = value if self.peak is None else max(self.peak, value)


async def sample_rss(series: list[RssSeries], stop: asyncio.Event) -> None:
    while not stop.is_set():
        for one in series:
            one.sample()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.05)


class CpuMeter:
    """CPU time used on the machine during the timed run: by the processes under ``roots`` (this
    load generator and the stack it started) and by everything else, which should be ~0."""

    def __init__(self, roots: list[int]) -> None:
        self.roots = roots
        self._start: tuple[float, float, float] = (0.0, 0.0, 0.0)
        self.report: dict[str, float] = {}

    def _now(self) -> tuple[float, float, float]:
        t = psutil.cpu_times()
        busy = t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)
        own = 0.0
        for root in self.roots:
            with contextlib.suppress(psutil.Error):
                parent = psutil.Process(root)
                for process in [parent, *parent.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        times = process.cpu_times()
                        own += times.user + times.system
        return time.monotonic(), busy, own

    def start(self) -> None:
        self._start = self._now()

    def stop(self) -> None:
        (w0, b0, o0), (w1, b1, o1) = self._start, self._now()
        wall = max(w1 - w0, 1e-9)
        self.report = {
            "seconds": round(wall, 1),
            "busy_cpus": round((b1 - b0) / wall, 2),
            "ours_cpus": round((o1 - o0) / wall, 2),
            "others_cpus": round(max(0.0, (b1 - b0) - (o1 - o0)) / wall, 2),
        }


# --- one pair -------------------------------------------------------------------------------------
@dataclass
class PairResult:
    index: int
    status: str = "error"  # ready | failed | error
    upload_status: int | None = None
    send_lag_ms: float | None = None  # actual send - scheduled send (the load generator's lag)
    upload_ms: float | None = None  # scheduled send -> 202
    ready_ms: float | None = None  # scheduled send -> ready/failed seen by the client
    server_ms: float | None = None  # created_at -> completed_at, from the API
    followed_by: str | None = None
    measurement_id: str | None = None
    error: str | None = None
    worker_timings_ms: dict[str, float] | None = None


@dataclass
class Follower:
    """Follows measurements to their end: server-sent events while they work, else polling."""

    client: httpx.AsyncClient
    headers: dict[str, str]
    mode: str  # "sse" | "poll"
    sse_works: bool | None = None

    async def follow(self, location: str, deadline: float) -> tuple[JsonDict, float, str]:
        if self.mode == "sse" and self.sse_works is not False:
            found = await self._events(location, deadline)
            if found is not None:
                return (*found, "sse")
        return (*await self._poll(location, deadline), "poll")

    async def _events(self, location: str, deadline: float) -> tuple[JsonDict, float] | None:
        try:
            async with (
                asyncio.timeout(max(0.0, deadline - time.perf_counter())),
                self.client.stream("GET", f"{location}/events", headers=self.headers) as response,
            ):
                kind = response.headers.get("content-type", "")
                if response.status_code != 200 or not kind.startswith("text/event-stream"):
                    self.sse_works = False
                    return None
                self.sse_works = True
                event, data = "message", []
                async for line in response.aiter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].removeprefix(" "))
                    elif not line and data:
                        body: JsonDict = json.loads("\n".join(data))
                        if event == "status" and body.get("status") in FINISHED:
                            return body, time.perf_counter()
                        event, data = "message", []
        except (TimeoutError, httpx.HTTPError, json.JSONDecodeError):
            return None
        return None  # the stream ended early (its maximum time): poll from here

    async def _poll(self, location: str, deadline: float) -> tuple[JsonDict, float]:
        while True:
            response = await self.client.get(location, headers=self.headers)
            response.raise_for_status()
            body: JsonDict = response.json()
            if body.get("status") in FINISHED:
                return body, time.perf_counter()
            if time.perf_counter() > deadline:
                raise TimeoutError(f"still {body.get('status')}")
            await asyncio.sleep(POLL_INTERVAL_SECONDS)


def _server_ms(body: JsonDict) -> float | None:
    created, completed = body.get("created_at"), body.get("completed_at")
    if not created or not completed:
        return None
    delta = datetime.fromisoformat(completed) - datetime.fromisoformat(created)
    return round(delta.total_seconds() * 1000, 1)


async def run_pair(
    follower: Follower, index: int, pair: PhotoPair, scheduled: float, allowed_seconds: float
) -> PairResult:
    result = PairResult(index=index)
    await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
    result.send_lag_ms = round((time.perf_counter() - scheduled) * 1000, 2)
    try:
        response = await follower.client.post(
            f"{API}/measurements",
            headers=follower.headers,
            files={
                "front": ("front.jpg", pair.front, "image/jpeg"),
                "side": ("side.jpg", pair.side, "image/jpeg"),
            },
            data={"height_cm": f"{pair.height_cm:.1f}"},
        )
        result.upload_status = response.status_code
        result.upload_ms = round((time.perf_counter() - scheduled) * 1000, 1)
        if response.status_code != 202:
            result.error = f"upload answered {response.status_code}: {response.text[:200]}"
            if response.status_code == 429:
                result.error += " (the stack's MEASUREMENT_UPLOADS_PER_HOUR is too low for this run)"
            return result
        created: JsonDict = response.json()
        result.measurement_id = str(created["id"])
        location = response.headers.get("location") or f"{API}/measurements/{result.measurement_id}"
        body, finished_at, result.followed_by = await follower.follow(location, scheduled + allowed_seconds)
    except (httpx.HTTPError, TimeoutError, ValueError, KeyError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"[:300]
        return result
    result.ready_ms = round((finished_at - scheduled) * 1000, 1)
    result.server_ms = _server_ms(body)
    result.status = str(body["status"])
    if result.status == "failed":
        result.error = str((body.get("error") or {}).get("code"))
    return result


# --- the run ---------------------------------------------------------------------------------------
@dataclass
class RunConfig:
    base_url: str
    pairs: list[PhotoPair]
    warmup: list[PhotoPair]
    rate: float
    follow: str
    timeout: float
    email: str
    password: str


@dataclass
class RunOutcome:
    results: list[PairResult]
    send_window: float  # first scheduled send -> last scheduled send, seconds
    span: float  # first scheduled send -> last pair finished, seconds
    memory: dict[str, RssSeries] = field(default_factory=dict)
    warmup_statuses: list[str] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)


async def run(config: RunConfig, memory: dict[str, RssSeries], cpu: CpuMeter) -> RunOutcome:
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
    timeout = httpx.Timeout(30.0, read=max(30.0, config.timeout))
    async with httpx.AsyncClient(base_url=config.base_url, limits=limits, timeout=timeout) as client:
        login = await client.post(
            f"{API}/auth/login", json={"email": config.email, "password": config.password}
        )
        if login.status_code != 200:
            raise RuntimeError(f"login as {config.email} answered {login.status_code}: {login.text[:200]}")
        follower = Follower(
            client, {"Authorization": f"Bearer {login.json()['access_token']}"}, config.follow
        )
        for series in memory.values():
            series.idle = tree_rss_mb(series.pid)
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample_rss(list(memory.values()), stop))
        try:
            warmup = [await run_pair(follower, -1 - i, p, time.perf_counter(), config.timeout)
                      for i, p in enumerate(config.warmup)]  # fmt: skip
            cpu.start()
            t0 = time.perf_counter() + START_LEAD_SECONDS
            schedule = [t0 + i / config.rate for i in range(len(config.pairs))]
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(run_pair(follower, i, pair, at, config.timeout))
                    for i, (pair, at) in enumerate(zip(config.pairs, schedule, strict=True))
                ]
            cpu.stop()
            results = [task.result() for task in tasks]
        finally:
            stop.set()
            await sampler
    ends = [at - t0 + r.ready_ms / 1000 for at, r in zip(schedule, results, strict=True) if r.ready_ms]
    return RunOutcome(
        results=results,
        send_window=schedule[-1] - t0,
        span=max(ends, default=0.0),
        memory=memory,
        warmup_statuses=[w.status for w in warmup],
        cpu=cpu.report,
    )


def attach_worker_timings(results: list[PairResult], worker_log: str) -> None:
    """Each measurement's pipeline stages (its ``body measured`` line in the inference worker's log)
    and the whole task's duration (its ``task finished`` line, the same request id), as ``task``."""
    stages: dict[str, JsonDict] = {}  # measurement id -> its line
    task_ms: dict[str, float] = {}  # request id -> duration
    for line in worker_log.splitlines():
        if '"body measured"' not in line and '"task finished"' not in line:
            continue
        try:
            entry: JsonDict = json.loads(line)
        except ValueError:
            continue
        if entry.get("event") == "body measured" and isinstance(entry.get("timings_ms"), dict):
            stages[str(entry.get("measurement_id"))] = entry
        elif entry.get("task_name") == "inference.body.measure" and "duration_ms" in entry:
            task_ms[str(entry.get("request_id"))] = float(entry["duration_ms"])
    for result in results:
        found = stages.get(result.measurement_id or "")
        if found is not None:
            result.worker_timings_ms = dict(found["timings_ms"])
            if (duration := task_ms.get(str(found.get("request_id")))) is not None:
                result.worker_timings_ms["task"] = duration


# --- the report ----------------------------------------------------------------------------------
def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (an observed value, never an interpolation)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def distribution(values: list[float]) -> dict[str, float | None]:
    return {f"p{p}": percentile(values, p) for p in (50, 95, 99)} | {"max": max(values, default=None)}


def machine() -> JsonDict:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        onnxruntime = metadata.version("onnxruntime")
    except metadata.PackageNotFoundError:
        onnxruntime = "not installed"
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "onnxruntime": onnxruntime,
    }


def _target(name: str, value: float | None, limit: float, applies: bool = True) -> JsonDict:
    passed = None if value is None or not applies else value < limit
    return {"target": name, "value": value, "limit": limit, "pass": passed}


def build_report(config: RunConfig, outcome: RunOutcome, settings: Settings | None, seed: int) -> JsonDict:
    results = outcome.results
    ready = [r for r in results if r.status == "ready"]
    failed = [r for r in results if r.status == "failed"]
    errors = [r for r in results if r.status == "error"]
    finished = len(ready) + len(failed)
    ready_ms = [r.ready_ms for r in ready if r.ready_ms is not None]
    stages: dict[str, list[float]] = {}
    for r in ready:
        for stage, ms in (r.worker_timings_ms or {}).items():
            stages.setdefault(stage, []).append(ms)
    worker, api = outcome.memory.get("inference_worker"), outcome.memory.get("api")
    p95 = percentile(ready_ms, 95)
    return {
        "benchmark": "measurement_flow",
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "stack": "own" if settings is not None else config.base_url,
        "pairs_offered": len(results),
        "offered_rate": config.rate,
        "achieved_rate": round(finished / outcome.span, 2) if outcome.span > 0 else None,
        "seed": seed,
        "warmup_pairs": outcome.warmup_statuses,
        "follow": {mode: sum(r.followed_by == mode for r in results) for mode in ("sse", "poll")},
        "ready": len(ready),
        "failed": len(failed),
        "failed_codes": [r.error for r in failed],
        "errors": len(errors),
        "error_samples": sorted({r.error or "" for r in errors})[:5],
        "upload_to_ready_ms": distribution(ready_ms),
        "upload_202_ms": distribution(
            [r.upload_ms for r in results if r.upload_status == 202 and r.upload_ms]
        ),
        "server_created_to_completed_ms": distribution(
            [r.server_ms for r in ready if r.server_ms is not None]
        ),
        "worker_stage_mean_ms": {k: round(sum(v) / len(v), 1) for k, v in sorted(stages.items())},
        "send_seconds": round(outcome.send_window, 2),
        "max_send_lag_ms": max((r.send_lag_ms or 0.0 for r in results), default=None),
        "cpu_during_run": outcome.cpu,
        "inference_worker_rss_mb": {"idle": worker.idle, "peak": worker.peak} if worker else None,
        "api_rss_mb": {"idle": api.idle, "peak": api.peak} if api else None,
        "targets": [
            _target(
                f"upload → ready p95 < {TARGET_P95_MS:g} ms at {TARGET_RATE:g} pairs/s, one inference worker",
                p95 if not errors else None,
                TARGET_P95_MS,
                applies=config.rate >= TARGET_RATE,
            ),
            _target(
                f"inference worker RSS < {TARGET_WORKER_RSS_MB:g} MB under load",
                worker.peak if worker else None,
                TARGET_WORKER_RSS_MB,
            ),
            _target(
                f"API worker RSS < {TARGET_API_RSS_MB:g} MB", api.peak if api else None, TARGET_API_RSS_MB
            ),
        ],
        "settings": None
        if settings is None
        else {name: getattr(settings, name) for name in REPORTED_SETTINGS},
        "machine": machine(),
        "pairs": [asdict(r) for r in results],
    }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def cpu_line(report: JsonDict) -> str:
    cpu, cpus = report["cpu_during_run"], report["machine"]["cpu_count"] or 1
    ours = "this benchmark and its stack" if report["stack"] == "own" else "this load generator"
    others = "other processes" if report["stack"] == "own" else "everything else (the stack too)"
    line = f"{cpu['busy_cpus']} of {cpus} CPUs busy: {ours} {cpu['ours_cpus']}, {others} {cpu['others_cpus']}"
    if report["stack"] == "own" and cpu["others_cpus"] > 0.1 * cpus:
        line += "\n  WARNING: other programs used the CPUs during the run; these numbers are not clean"
    return line


def render_table(report: JsonDict) -> str:
    def row(label: str, dist: dict[str, float | None]) -> str:
        return f"  {label:<30}" + "".join(f"{_ms(dist[k]):>9}" for k in ("p50", "p95", "p99", "max"))

    def mem(values: dict[str, float | None] | None) -> str:
        return "not measured" if values is None else f"idle {values['idle']} MB, peak {values['peak']} MB"

    m = report["machine"]
    verdict = {True: "PASS", False: "FAIL", None: "n/a"}
    stages = ", ".join(f"{k} {v:g}" for k, v in report["worker_stage_mean_ms"].items()) or "not available"
    lines = [
        f"Body measurement flow, open loop ({report['pairs_offered']} pairs, seed {report['seed']}, "
        f"stack: {report['stack']})",
        f"  {'offered rate':<30}{report['offered_rate']:g} pairs/s",
        f"  {'achieved rate':<30}{report['achieved_rate']} pairs/s (finished pairs per second)",
        f"  {'pairs':<30}{report['ready']} ready, {report['failed']} failed (refused by the pipeline: "
        f"{', '.join(report['failed_codes']) or 'none'}), {report['errors']} errors",
        f"  {'followed by':<30}" + ", ".join(f"{k} {v}" for k, v in report["follow"].items()),
        f"  {'':<30}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}  (ms)",
        row("upload → ready", report["upload_to_ready_ms"]),
        row("upload (202)", report["upload_202_ms"]),
        row("server created → completed", report["server_created_to_completed_ms"]),
        f"  {'worker stages, mean ms':<30}{stages}",
        f"  {'load generator max lag':<30}{report['max_send_lag_ms']} ms",
        f"  {'CPU during the run':<30}{cpu_line(report)}",
        f"  {'inference worker RSS':<30}{mem(report['inference_worker_rss_mb'])}",
        f"  {'API worker RSS':<30}{mem(report['api_rss_mb'])}",
        f"  {'machine':<30}{m['cpu_count']} CPUs, {m['cpu_model']}, {m['memory_gb']} GB",
        f"  {'versions':<30}Python {m['python']}, onnxruntime {m['onnxruntime']}",
        "  targets",
        *(f"    {verdict[t['pass']]:<5} {t['target']} (measured {t['value']})" for t in report["targets"]),
    ]
    lines += [f"  error: {e}" for e in report["error_samples"]]
    return "\n".join(lines)


def write_report(report: JsonDict) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    path = RESULTS_DIR / f"measurement_flow-{stamp}.json"
    path.write_text(text)
    (RESULTS_DIR / "measurement_flow-latest.json").write_text(text)
    return path


def finish(config: RunConfig, outcome: RunOutcome, settings: Settings | None, seed: int) -> None:
    report = build_report(config, outcome, settings, seed)
    path = write_report(report)
    print(render_table(report))
    print(f"  written to {path}")


# --- entry point ---------------------------------------------------------------------------------
@contextlib.contextmanager
def no_interrupts() -> Iterator[None]:
    """Shut down without being cut short by a second Ctrl-C."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_own_stack(args: argparse.Namespace, pairs: list[PhotoPair], warmup: list[PhotoPair]) -> int:
    data_dir = Path(tempfile.mkdtemp(prefix="fashionistar-bench-measure-"))
    data_dir.chmod(0o755)  # the embedded PostgreSQL runs as its own user when started by root
    os.environ.update(bench_environment(data_dir))
    stack = BenchStack(load_settings())
    try:
        try:
            settings = stack.start_services()
            log.info("applying migrations")
            migrate.upgrade(settings)
            asyncio.run(seed_demo_data(settings))
            stack.start_processes(settings)
            up = stack.wait_ready(settings, timeout=120) and stack.wait_for_log(
                INFERENCE_WORKER, ('"models loaded"', '"worker started"'), timeout=180
            )
        except Exception:
            log.exception("the stack could not start")
            up = False
        if not up:
            log.error("the stack did not become ready", data_dir=str(data_dir))
            stack.print_log_tails()
            return 2
        time.sleep(2)  # the worker settles after loading its models; then "idle" is measured
        config = RunConfig(
            base_url=f"http://{settings.api_host}:{settings.api_port}",
            pairs=pairs,
            warmup=warmup,
            rate=args.rate,
            follow=args.follow,
            timeout=args.timeout,
            email=args.email,
            password=args.password,
        )
        memory = {
            "inference_worker": RssSeries(stack.child(INFERENCE_WORKER).process.pid),
            "api": RssSeries(stack.child("api").process.pid),
        }
        postmaster = int((settings.data_dir / "pg" / "postmaster.pid").read_text().split()[0])
        outcome = asyncio.run(run(config, memory, CpuMeter([os.getpid(), postmaster])))
        attach_worker_timings(outcome.results, stack.log_text(INFERENCE_WORKER))
        finish(config, outcome, settings, args.seed)
    except KeyboardInterrupt:
        log.warning("interrupted")
        return 130
    else:
        return 0
    finally:
        with no_interrupts():
            stack.stop_processes()
            stack.stop_services()
            if args.keep_data:
                log.info("data and logs kept", data_dir=str(data_dir))
            else:
                shutil.rmtree(data_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=40, help="timed photo pairs (default 40)")
    parser.add_argument("--rate", type=float, default=2.0, help="offered pairs per second (default 2)")
    parser.add_argument(
        "--warmup", type=int, default=2, help="untimed pairs first, one at a time (default 2)"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the rendered photos (default 1)")
    parser.add_argument("--follow", choices=("sse", "poll"), default="sse",
                        help="server-sent events (polling where they fail) or polling only")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds a pair may take to finish")
    parser.add_argument("--base-url", help="use the stack running here (e.g. http://127.0.0.1:8000)")
    parser.add_argument("--email", default=DEMO_SHOPPER)
    parser.add_argument("--password", default=DEMO_PASSWORD)
    parser.add_argument("--keep-data", action="store_true", help="keep the throwaway data dir and its logs")
    args = parser.parse_args(argv)
    if args.pairs < 1 or args.rate <= 0:
        parser.error("--pairs and --rate must be positive")
    configure_logging(level="INFO", fmt="console", process="bench")
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop cleanly on SIGTERM as on Ctrl-C

    started = time.perf_counter()
    try:
        photos = render_pairs(args.seed, range(args.pairs + args.warmup))
    except KeyboardInterrupt:
        return 130
    pairs, warmup = photos[: args.pairs], photos[args.pairs :]
    log.info("photo pairs rendered", pairs=len(photos), seconds=round(time.perf_counter() - started, 1))
    if not args.base_url:
        return run_own_stack(args, pairs, warmup)
    config = RunConfig(args.base_url.rstrip("/"), pairs, warmup, args.rate, args.follow, args.timeout,
                       args.email, args.password)  # fmt: skip
    try:
        outcome = asyncio.run(run(config, {}, CpuMeter([os.getpid()])))
    except KeyboardInterrupt:
        return 130
    except (httpx.HTTPError, RuntimeError) as exc:
        print(f"could not run against {config.base_url}: {exc}", file=sys.stderr)
        return 2
    finish(config, outcome, None, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
