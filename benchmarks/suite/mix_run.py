"""The browsing mix on the stack: its requests, the ETags fetched just before, open loop, CPU split.

The suite's other scenarios run the API with ``PAGE_CACHE_MAX_PAGES=0`` (each endpoint against its
floor doing the same work); the session restarts the API with the page cache at its default (same
pinning, same settings otherwise) before this scenario. Each offered rate is one open-loop run
(``load.open_loop``: latency from each request's scheduled send time, a warm-up at the same rate
first, dropped) taking the mix's requests in turn from where the last run stopped, so no order
request is sent twice. Besides the suite's figures each run reports its answers by status, the
share of 304s (of all requests and of those sent with ``If-None-Match``) and the CPU split:
user + system seconds of each process tree over the timed run, from its first send to its last
answer (API, PostgreSQL, Redis, workers, the load generator itself), and the rest of the
machine's busy time (other programs), as CPUs (seconds over the wall time) and ms per request.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from typing import Any

import psutil

from benchmarks.search_quality import load
from benchmarks.search_quality.client import LoadClient
from benchmarks.search_quality.load import Request
from benchmarks.search_quality.stack import Timer
from benchmarks.suite import mix
from benchmarks.suite import scenarios as sc
from benchmarks.suite.runs import Plan
from benchmarks.suite.stack import API, INFERENCE_WORKER, OTHER_WORKER, SuiteStack

NAME = "browsing_mix"
ENDPOINT = (
    "browsing mix (45% product page, 30% listing, 10% similar, 8% size advice, 5% cart/orders, 2% search)"
)
ETAG_CONCURRENCY = 16
KEPT_UP = 0.9
GROUPS = ("api", "postgres", "redis", "workers", "load_generator")


def sources(
    built: dict[str, sc.HttpScenario], headers: list[dict[str, str]], orders: sc.HttpScenario
) -> dict[str, list[Request]]:
    """Each kind of the mix's requests: the suite's scenarios', and the shoppers' cart and orders."""
    own = {
        kind: built[kind].requests
        for kind in ("product_detail", "listing", "similar", "product_fit", "search")
    }
    return own | {
        "cart": [Request(f"{sc.API}/cart", None, h) for h in headers],
        "order_list": [Request(f"{sc.API}/orders", None, h) for h in headers],
        "order_create": orders.requests,
    }


def requests_needed(rates: list[float], plan: Plan) -> int:
    return sum(round(rate * (plan.seconds + plan.warmup_seconds)) + 2 for rate in rates)


async def fetch_etags(client: LoadClient, requests: list[Request]) -> dict[str, str]:
    """The current ETag of each request's page (as a shopper who saw it has it).

    Raises:
        RuntimeError: a page did not answer 200 with an ETag.
    """
    gate = asyncio.Semaphore(ETAG_CONCURRENCY)

    async def one(request: Request) -> tuple[str, str]:
        async with gate:
            response = await client.request(request.method, request.path, params=request.params)
        etag = response.headers.get("etag")
        if response.status_code != 200 or not etag:
            raise RuntimeError(f"{mix.url_key(request)}: {response.status_code}, ETag {etag!r}")
        return mix.url_key(request), etag

    return dict(await asyncio.gather(*(one(r) for r in requests)))


class CpuSplit:
    """CPU seconds of each process tree of the stack over a run, and of the rest of the machine."""

    def __init__(self, stack: SuiteStack) -> None:
        redis = stack.redis.process if stack.redis is not None else None
        self.roots: dict[str, list[int | None]] = {
            "api": [stack.pid_of(API)],
            "postgres": [stack.postmaster_pid()],
            "redis": [redis.pid if redis is not None else None],
            "workers": [stack.pid_of(INFERENCE_WORKER), stack.pid_of(OTHER_WORKER)],
        }
        self._start: tuple[float, float, dict[str, float]] = (0.0, 0.0, {})

    def _now(self) -> tuple[float, float, dict[str, float]]:
        t = psutil.cpu_times()
        busy = t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)
        used = {
            group: sum(sum(load.tree_cpu_seconds(pid).values()) for pid in pids)
            for group, pids in self.roots.items()
        }
        own = psutil.Process().cpu_times()  # this process alone: its children are the stack
        used["load_generator"] = own.user + own.system
        return time.monotonic(), busy, used

    def start(self) -> None:
        self._start = self._now()

    def stop(self, requests: int) -> dict[str, Any]:
        (w0, b0, u0), (w1, b1, u1) = self._start, self._now()
        wall = max(w1 - w0, 1e-9)
        spent = {group: max(0.0, u1.get(group, 0.0) - u0.get(group, 0.0)) for group in GROUPS}
        spent["others"] = max(0.0, (b1 - b0) - sum(spent.values()))
        return {
            "seconds": round(wall, 1),
            "machine_cpus": os.cpu_count(),
            "cpus": {group: round(value / wall, 3) for group, value in spent.items()},
            "ms_per_request": {
                group: round(value * 1000 / max(1, requests), 3) for group, value in spent.items()
            },
        }


def fell_behind(achieved: float | None, offered: float) -> str | None:
    """A note when the run's successful answers came at under ``KEPT_UP`` of the offered rate: the
    backlog (and every latency) then grows with the run's length. There is no closed loop for the
    mix, so this is said after the run rather than the run being cut short."""
    if achieved is not None and achieved >= KEPT_UP * offered:
        return None
    return (
        f"answered {achieved or 0:g} req/s successfully of {offered:g} offered: the server fell behind, "
        "latency grows with the run's length"
    )


def statuses(shots: list[load.Shot], requests: list[Request], start: int) -> dict[str, Any]:
    """Answers by status, and the share of 304s of all requests and of the revalidating ones."""
    by_status = Counter(str(shot.status) for shot in shots)
    revalidating = [
        shot
        for i, shot in enumerate(shots)
        if "If-None-Match" in (requests[(start + i) % len(requests)].headers or {})
    ]
    not_modified = by_status.get("304", 0)
    return {
        "by_status": dict(sorted(by_status.items())),
        "revalidating_requests": len(revalidating),
        "not_modified": not_modified,
        "not_modified_share": round(not_modified / len(shots), 4) if shots else None,
        "not_modified_share_of_revalidating": round(not_modified / len(revalidating), 4)
        if revalidating
        else None,
    }


async def run_once(client: LoadClient, stack: SuiteStack, spec: load.Scenario, plan: Plan) -> dict[str, Any]:
    warmup, _ = (
        await load.open_loop(client, spec, plan.warmup_seconds) if plan.warmup_seconds > 0 else ([], 0.0)
    )
    split = CpuSplit(stack)
    split.start()
    shots, window = await load.open_loop(client, spec, plan.seconds, start=len(warmup))
    cpu = split.stop(len(shots))
    others = {"seconds": cpu["seconds"], "others_cpus": cpu["cpus"]["others"]}
    result = load.summarise(spec, shots, window, plan.seconds, warmup, others, None)
    result.pop("target", None)  # targets.toml judges the run
    result.pop("api_rss_mb", None)
    note = fell_behind(result.get("achieved_rate"), spec.rate)
    result |= {"overloaded": note is not None, "note": note}
    per_request = {group: cpu["ms_per_request"][group] for group in ("api", "postgres")}
    return result | {
        "answers": statuses(shots, spec.requests, len(warmup)),
        "cpu_split": cpu,
        "cpu_ms_per_request": per_request,  # as the other scenarios' open-loop runs report it
    }


async def browsing_mix(
    stack: SuiteStack,
    base_url: str,
    slots: list[mix.Slot],
    rates: list[float],
    plan: Plan,
    timer: Timer,
) -> dict[str, Any]:
    """ETags of the revalidating URLs, then the mix at each offered rate, lowest first."""
    client = LoadClient(base_url, max_connections=512)
    result: dict[str, Any] = {"endpoint": ENDPOINT, "composition": mix.composition(slots), "page_cache": "on"}
    try:
        wanted = mix.to_revalidate(slots)
        with timer.step(f"{NAME}: ETags of {len(wanted)} pages"):
            etags = await fetch_etags(client, wanted)
        requests = mix.attach(slots, etags)
        result["distinct_requests"] = len({(r.method, mix.url_key(r)) for r in requests})
        runs, offset = [], 0
        for rate in sorted(rates):
            turn = requests[offset:] + requests[:offset]
            offset = (offset + round(rate * (plan.seconds + plan.warmup_seconds)) + 2) % len(requests)
            spec = load.Scenario(NAME, ENDPOINT, turn, rate, 0.0, 0.0, ok_statuses=mix.OK_STATUSES)
            with timer.step(f"open loop: {NAME} at {rate:g} req/s for {plan.seconds:g} s"):
                runs.append(await run_once(client, stack, spec, plan))
        result["open_loop"] = runs
    finally:
        await client.aclose()
    return result
