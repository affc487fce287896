"""Part 2: latency of the search endpoints under open-loop load through HTTP.

Each scenario offers a fixed rate: send times are fixed in advance (``rate`` per second for
``seconds``), every request is its own task that waits for its send time, and its latency is
measured from its *scheduled* send time to the end of the response body, so time spent waiting
anywhere (in the client's connection pool, in this load generator, in the server's accept queue)
counts. Before the timed run the same scenario runs for a warm-up period whose results are
dropped (only its errors are reported). Requests go through ``client.LoadClient``, a minimal
keep-alive HTTP/1.1 client that costs the shared CPU far less than httpx. Percentiles are
nearest-rank, over successful responses (200, or the scenario's ``ok_statuses``); errors are
counted apart (status, transport errors, and answers that break the contract: a similar-items
answer with fewer than ``limit`` items).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psutil

from benchmarks.measurement_flow import CpuMeter, RssSeries, distribution, percentile, sample_rss, tree_rss_mb
from benchmarks.search_quality.client import HttpError, LoadClient, Response

START_LEAD_SECONDS = 0.5
# Other programs using more than this share of the CPUs make a run's numbers not clean.
NOISY_SHARE = 0.1
# Checks a 200 response; returns what is wrong with it, or None.
Check = Callable[[Response], str | None]


@dataclass(frozen=True)
class Request:
    path: str
    params: dict[str, str | int] | None = None
    headers: dict[str, str] | None = None
    method: str = "GET"
    body: bytes | None = None


@dataclass
class Shot:
    status: int | None = None
    latency_ms: float | None = None  # scheduled send -> response read
    lag_ms: float = 0.0  # actual send - scheduled send
    done_at: float = 0.0  # seconds after the first scheduled send
    problem: str | None = None


@dataclass(frozen=True)
class Scenario:
    name: str
    endpoint: str
    requests: list[Request]
    rate: float
    target_p95_ms: float
    target_rate: float
    check: Check | None = None
    ok_statuses: tuple[int, ...] = (200,)


async def _shot(
    client: LoadClient,
    request: Request,
    scheduled: float,
    t0: float,
    check: Check | None,
    ok_statuses: tuple[int, ...] = (200,),
) -> Shot:
    await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
    shot = Shot(lag_ms=round((time.perf_counter() - scheduled) * 1000, 2))
    try:
        response = await client.request(
            request.method, request.path, params=request.params, headers=request.headers, body=request.body
        )
    except (HttpError, TimeoutError, OSError) as exc:
        shot.problem = f"{type(exc).__name__}: {exc}"[:200]
        return shot
    finished = time.perf_counter()
    shot.status, shot.done_at = response.status_code, finished - t0
    if response.status_code not in ok_statuses:
        shot.problem = f"{response.status_code}: {response.text[:160]}"
    elif check is not None:
        shot.problem = check(response)
    if shot.problem is None:
        shot.latency_ms = round((finished - scheduled) * 1000, 2)
    return shot


async def open_loop(
    client: LoadClient, scenario: Scenario, seconds: float, start: int = 0
) -> tuple[list[Shot], float]:
    """Every request of ``seconds`` at the scenario's rate, taking the scenario's requests in turn
    from index ``start``; returns them and the send window."""
    count = max(1, round(scenario.rate * seconds))
    t0 = time.perf_counter() + START_LEAD_SECONDS
    schedule = [t0 + i / scenario.rate for i in range(count)]
    requests = scenario.requests
    async with asyncio.TaskGroup() as group:
        tasks = [
            group.create_task(
                _shot(
                    client,
                    requests[(start + i) % len(requests)],
                    at,
                    t0,
                    scenario.check,
                    scenario.ok_statuses,
                )
            )
            for i, at in enumerate(schedule)
        ]
    return [t.result() for t in tasks], schedule[-1] - t0


async def run_scenario(
    client: LoadClient,
    scenario: Scenario,
    *,
    seconds: float,
    warmup_seconds: float,
    api_pid: int | None,
    postgres_pid: int | None,
    cpu_roots: list[int],
) -> dict[str, Any]:
    warmup, _ = await open_loop(client, scenario, warmup_seconds) if warmup_seconds > 0 else ([], 0.0)
    rss = RssSeries(api_pid) if api_pid is not None else None
    if rss is not None:
        rss.idle = tree_rss_mb(rss.pid)
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_rss([rss] if rss else [], stop))
    cpu = CpuMeter(cpu_roots)
    spent = {"api": tree_cpu_seconds(api_pid), "postgres": tree_cpu_seconds(postgres_pid)}
    cpu.start()
    try:
        # After the warm-up's requests: a scenario of one-off requests (unique keys) never repeats one.
        shots, window = await open_loop(client, scenario, seconds, start=len(warmup))
    finally:
        cpu.stop()
        stop.set()
        await sampler
    report = summarise(scenario, shots, window, seconds, warmup, cpu.report, rss)
    # CPU per request of the API process and of PostgreSQL (all backends): where the time goes. A
    # process that exits during the run takes its share with it, so these are lower bounds.
    report["cpu_ms_per_request"] = {
        name: round(_delta(before, tree_cpu_seconds(pid)) * 1000 / max(1, len(shots)), 2)
        for (name, before), pid in zip(spent.items(), (api_pid, postgres_pid), strict=True)
    }
    return report


def tree_cpu_seconds(pid: int | None) -> dict[int, float]:
    """User + system CPU seconds of a process and each of its children, by pid."""
    if pid is None:
        return {}
    try:
        parent = psutil.Process(pid)
        processes = [parent, *parent.children(recursive=True)]
    except psutil.Error:
        return {}
    seconds = {}
    for process in processes:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            seconds[process.pid] = times.user + times.system
    return seconds


def _delta(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(value - before.get(pid, 0.0) for pid, value in after.items())


def summarise(
    scenario: Scenario,
    shots: list[Shot],
    window: float,
    seconds: float,
    warmup: list[Shot],
    cpu: dict[str, float],
    rss: RssSeries | None,
) -> dict[str, Any]:
    ok = [s for s in shots if s.latency_ms is not None]
    failed = [s for s in shots if s.latency_ms is None]
    latencies = [s.latency_ms for s in ok if s.latency_ms is not None]
    span = max((s.done_at for s in ok), default=0.0)
    p95 = percentile(latencies, 95)
    applies = scenario.rate >= scenario.target_rate
    passed = None if not applies or p95 is None else (p95 < scenario.target_p95_ms and not failed)
    kinds = Counter((s.problem or "").split(":")[0] for s in failed)
    # Other programs on the machine (anything outside this process tree and PostgreSQL).
    noisy = cpu.get("others_cpus", 0.0) > NOISY_SHARE * (os.cpu_count() or 1)
    notes = [] if applies else [f"offered {scenario.rate:g} req/s, below the target's rate"]
    if noisy:
        notes.append(f"other programs used {cpu.get('others_cpus')} CPUs during the run")
    return {
        "scenario": scenario.name,
        "endpoint": scenario.endpoint,
        "offered_rate": scenario.rate,
        "seconds": seconds,
        "requests": len(shots),
        "distinct_requests": len(scenario.requests),
        "ok": len(ok),
        "errors": len(failed),
        "errors_by_kind": dict(kinds),
        "error_samples": sorted({s.problem or "" for s in failed})[:3],
        "warmup_requests": len(warmup),
        "warmup_errors": sum(s.latency_ms is None for s in warmup),
        "latency_ms": distribution(latencies),
        "achieved_rate": round(len(ok) / span, 1) if span > 0 else None,
        "send_window_seconds": round(window, 2),
        "load_generator_lag_ms": {
            "p99": percentile([s.lag_ms for s in shots], 99),
            "max": max((s.lag_ms for s in shots), default=None),
        },
        "cpu_during_run": cpu,
        "noisy": noisy,
        "api_rss_mb": None if rss is None else {"idle": rss.idle, "peak": rss.peak},
        "target": {
            "target": f"{scenario.endpoint} p95 < {scenario.target_p95_ms:g} ms at "
            f"{scenario.target_rate:g} req/s",
            "value": p95,
            "limit": scenario.target_p95_ms,
            "pass": passed,
            "note": "; ".join(notes) or None,
        },
    }
