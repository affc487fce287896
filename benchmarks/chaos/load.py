"""HTTP load while a fault happens, and what every answer was.

A few closed-loop clients cycle through a mix of requests (catalog page, product detail, your
profile, your orders, a login, a new order with its own ``Idempotency-Key``, readiness) until
told to stop. Every answer is recorded with its latency, status, whether a 503 carried
``Retry-After`` and was problem+json, and when it was sent relative to the fault. A request
that gets no answer within ``REQUEST_BOUND_SECONDS`` counts as a hang.

Orders refused with 503 (or cut off) are what a real client retries later with the same key;
:func:`settle_orders` does so after the fault and returns which order each key finally made.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from benchmarks.chaos.data import ADDRESS, PASSWORD, Catalog, Check, Shopper

API = "/api/v1"
# A request without an answer after this long is a hang (the API's own timeouts are shorter:
# Redis 2 s, a pool checkout 5 s, a statement 5 s on the fault stack).
REQUEST_BOUND_SECONDS = 10.0


@dataclass(frozen=True)
class Sample:
    kind: str
    status: int  # 0: no answer (connection refused, reset or timed out)
    seconds: float
    at: float  # send time, seconds since the load started
    retry_after: str | None
    problem: bool
    error: str | None = None


@dataclass
class OrderAttempt:
    key: str
    shopper: Shopper
    body: dict[str, Any]
    answers: list[int] = field(default_factory=list)
    order_id: str | None = None
    refused: bool = False  # a final 4xx: no order for this key


@dataclass
class Load:
    """The load generator: samples and orders, shared by its clients."""

    client: httpx.AsyncClient
    shoppers: list[Shopper]
    catalog: Catalog
    login_email: str
    samples: list[Sample] = field(default_factory=list)
    orders: list[OrderAttempt] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    def now(self) -> float:
        return time.monotonic() - self.started

    async def timed(self, kind: str, send: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response | None:
        at = self.now()
        started = time.perf_counter()
        try:
            response = await send()
        except httpx.HTTPError as exc:
            self.samples.append(
                Sample(kind, 0, time.perf_counter() - started, at, None, False, type(exc).__name__)
            )
            return None
        problem = response.headers.get("content-type", "").startswith("application/problem+json")
        self.samples.append(
            Sample(
                kind,
                response.status_code,
                time.perf_counter() - started,
                at,
                response.headers.get("retry-after"),
                problem,
            )
        )
        return response

    # --- requests ------------------------------------------------------------------------------
    def _shopper(self) -> Shopper:
        return self.shoppers[next(self._counter) % len(self.shoppers)]

    async def browse(self) -> None:
        await self.timed("catalog page", lambda: self.client.get(f"{API}/products", params={"limit": 10}))

    async def detail(self) -> None:
        product = self.catalog.product_ids[next(self._counter) % len(self.catalog.product_ids)]
        await self.timed("product detail", lambda: self.client.get(f"{API}/products/{product}"))

    async def me(self) -> None:
        headers = self._shopper().headers
        await self.timed("profile", lambda: self.client.get(f"{API}/me", headers=headers))

    async def my_orders(self) -> None:
        headers = self._shopper().headers
        await self.timed("order list", lambda: self.client.get(f"{API}/orders", headers=headers))

    async def login(self) -> None:
        body = {"email": self.login_email, "password": PASSWORD}
        await self.timed("login", lambda: self.client.post(f"{API}/auth/login", json=body))

    async def ready(self) -> None:
        await self.timed("readiness", lambda: self.client.get("/health/ready"))

    async def order(self) -> None:
        shopper = self._shopper()
        variant = self.catalog.variant_ids[next(self._counter) % len(self.catalog.variant_ids)]
        attempt = OrderAttempt(
            key=str(uuid.uuid4()),
            shopper=shopper,
            body={"shipping_address": ADDRESS, "items": [{"variant_id": str(variant), "quantity": 1}]},
        )
        self.orders.append(attempt)
        await self.send_order(attempt, "order")

    async def send_order(self, attempt: OrderAttempt, kind: str) -> httpx.Response | None:
        headers = {**attempt.shopper.headers, "Idempotency-Key": attempt.key}
        response = await self.timed(
            kind, lambda: self.client.post(f"{API}/orders", json=attempt.body, headers=headers)
        )
        attempt.answers.append(response.status_code if response is not None else 0)
        if response is not None and response.status_code in (200, 201):
            attempt.order_id = str(response.json()["id"])
        elif response is not None and 400 <= response.status_code < 500 and response.status_code != 409:
            attempt.refused = True
        return response

    MIX: tuple[str, ...] = (
        "browse",
        "detail",
        "me",
        "order",
        "my_orders",
        "browse",
        "order",
        "login",
        "ready",
    )
    # What each request of the mix is recorded as.
    MIX_KINDS: tuple[str, ...] = (
        "catalog page", "product detail", "profile", "order", "order list", "login", "readiness"
    )  # fmt: skip

    async def client_loop(self, stop: asyncio.Event, offset: int, pause: float) -> None:
        for step in itertools.count(offset):
            if stop.is_set():
                return
            await getattr(self, self.MIX[step % len(self.MIX)])()
            await asyncio.sleep(pause)

    async def run(self, stop: asyncio.Event, clients: int, pause: float = 0.02) -> None:
        await asyncio.gather(*(self.client_loop(stop, index * 2, pause) for index in range(clients)))


def open_client(base_url: str, connections: int = 64) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(REQUEST_BOUND_SECONDS, connect=5.0),
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )


async def settle_orders(
    load: Load, attempts: list[OrderAttempt], within: float = 60.0
) -> dict[str, str | None]:
    """Retry every order without a final answer with its own key and body, as the client would
    (a 409 "in use" or a 503 is retried after a pause), until each has one; returns key ->
    order id (None: refused).

    Raises:
        TimeoutError: some key got no final answer within ``within`` seconds.
    """
    deadline = time.monotonic() + within
    pending = [a for a in attempts if a.order_id is None and not a.refused]
    clients = asyncio.Semaphore(8)  # a few clients retrying at a time, not a stampede

    async def retry(attempt: OrderAttempt) -> None:
        async with clients:
            await load.send_order(attempt, "order retry")

    while pending:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} orders without a final answer")
        await asyncio.gather(*(retry(a) for a in pending))
        pending = [a for a in pending if a.order_id is None and not a.refused]
        if pending:
            await asyncio.sleep(0.5)
    return {a.key: a.order_id for a in attempts}


# --- what the answers say --------------------------------------------------------------------
def statuses(samples: list[Sample]) -> dict[str, int]:
    counts = Counter("no answer" if s.status == 0 else str(s.status) for s in samples)
    return dict(sorted(counts.items()))


def slowest_by_kind(samples: list[Sample]) -> dict[str, float]:
    slowest: dict[str, float] = {}
    for sample in samples:
        slowest[sample.kind] = round(max(slowest.get(sample.kind, 0.0), sample.seconds), 3)
    return dict(sorted(slowest.items()))


def answer_checks(samples: list[Sample], *, allow_no_answer: bool = False) -> list[Check]:
    """No 5xx but 503, every 503 with Retry-After (problem+json outside the probes), no hang."""
    errors = [s for s in samples if s.status >= 500 and s.status != 503]
    unavailable = [s for s in samples if s.status == 503]
    bare = [s for s in unavailable if not s.retry_after or (s.kind != "readiness" and not s.problem)]
    slowest = max((s.seconds for s in samples), default=0.0)
    hung = [
        s for s in samples if s.status == 0 and (not allow_no_answer or s.seconds >= REQUEST_BOUND_SECONDS)
    ]
    return [
        Check(
            "no 5xx other than 503",
            not errors,
            ", ".join(f"{s.kind} {s.status}" for s in errors[:3]) or f"{len(samples)} answers",
        ),
        Check(
            "503 with Retry-After, problem+json",
            not bare,
            ", ".join(f"{s.kind} at {s.at:.1f}s" for s in bare[:3]) or f"{len(unavailable)} answers were 503",
        ),
        Check(
            f"every request answered within {REQUEST_BOUND_SECONDS:g} s",
            not hung and slowest < REQUEST_BOUND_SECONDS,
            ", ".join(f"{s.kind}: {s.error}" for s in hung[:3]) or f"slowest {slowest:.2f} s",
        ),
    ]


def recovered_at(samples: list[Sample], since: float, kinds: set[str]) -> float | None:
    """Seconds after ``since`` from which every request of ``kinds`` succeeded (None: never)."""
    relevant = sorted((s for s in samples if s.kind in kinds), key=lambda s: s.at)
    last_failure = since
    seen_success = False
    for sample in relevant:
        if sample.at < since:
            continue
        if sample.status == 0 or sample.status >= 500:
            last_failure = sample.at
            seen_success = False
        else:
            seen_success = True
    return round(last_failure - since, 2) if seen_success else None
