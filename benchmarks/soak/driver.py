"""The soak's load: mixed shopper flows sent open loop with httpx, worker faults, RSS samples.

Flows start at fixed times, ``rate`` per second (``1 / rate`` apart), each of a kind drawn from
``MIX`` by a seeded generator, each its own task, whatever the server's state: a slow answer
delays nothing else (open loop). The first request of a flow is timed from the flow's
*scheduled* start, so time it waited anywhere (this process, the connection pool, the server's
accept queue) counts; a flow's later requests depend on earlier answers and are timed from
their own send. More than ``MAX_IN_FLIGHT`` unfinished flows means the stack has stopped keeping
up: the flow is not started and counts as an error (``backlog``).

Flows (request kinds in brackets):

* **browse**: a listing page with filters or its keyset second page [listing], a product page
  [detail] or a full-text search [search] (4:3:2), from ``benchmarks.suite.scenarios``' pools;
* **fit**: products that fit me [fit_products] or size advice on a product [size_advice];
* **similar**: ``/products/{id}/similar?limit=10`` [similar]; fewer than 10 items is an error;
* **order**: add one variant to the cart [cart_add], ``POST /orders`` from the cart with a fresh
  ``Idempotency-Key`` [order]; one in ten is sent again with the same key and must answer 200
  with the same order [order_retry]; an order refused for stock (409) takes the line back out of
  the cart [cart_remove];
* **pay**: the oldest unpaid order the soak placed: ``POST /orders/{id}/payments`` [payment]
  (the API initializes the transaction with the Paystack stand-in), the shopper pays at its
  ``authorization_url`` (the stand-in's checkout page; not timed), then the provider's
  ``charge.success`` webhook, signed with the run's secret as Paystack signs it [webhook]:
  ``queued``; one in ten is delivered twice (the second must be ``duplicate``);
* **cancel**: the newest unpaid order: ``POST /orders/{id}/cancel`` [cancel];
* **measure**: a rendered photo pair [measure_upload] (202), then ``GET /measurements/{id}``
  every 0.5 s [measure_poll] until ``ready`` or ``failed``; upload-to-finished is recorded as
  [measure_ready] (a pipeline refusal of the photos is an answer, not an error).

The marketplace's flows (checkout, fulfil, returns) live in ``marketplace.py``: the driver runs
them as ``extra_flows`` at the mix it is given, and their checkout pays as the pay flow does
(``settle``).

Variants sold: ``ORDER_VARIANTS`` listed variants, stock set at the start: ``HOT_VARIANTS`` of them
with ``HOT_STOCK`` units and picked for ``HOT_SHARE`` of orders (they sell out: 409s are part of
the load), the rest with ``COLD_STOCK``. Each shopper's cart is used by one flow at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import psutil

from benchmarks.measurement_flow import PhotoPair, tree_rss_mb
from benchmarks.search_quality.load import Request
from benchmarks.search_quality.stack import _tree
from benchmarks.soak.report import PIPELINE_REFUSALS, Call, CpuSample, RssSample
from benchmarks.soak.stack import WORKERS, SoakStack
from benchmarks.suite.scenarios import ADDRESS, API
from benchmarks.suite.stack import INFERENCE_WORKER as INFERENCE
from core.adapters.payments import sign
from core.adapters.payments.sandbox import charge_success_event

MIX = {
    "browse": 0.465,
    "fit": 0.18,
    "similar": 0.12,
    "order": 0.14,
    "pay": 0.075,
    "cancel": 0.01,
    "measure": 0.01,
}
BROWSE = {"listing": 3, "detail": 4, "search": 2}
ORDER_VARIANTS = 200
HOT_VARIANTS = 10
HOT_STOCK = 4
HOT_SHARE = 0.05
COLD_STOCK = 60
RETRY_SHARE = 0.1
DUPLICATE_WEBHOOK_SHARE = 0.1
MAX_IN_FLIGHT = 1_000
POLL_SECONDS = 0.5
MEASURE_DEADLINE_SECONDS = 300.0
REQUEST_TIMEOUT_SECONDS = 30.0
CPU_EVERY_SECONDS = 5.0
WEBHOOK_PATH = f"{API}/webhooks/paystack"
PAY_KINDS = ("payment", "webhook")
FAULTS = ((1 / 3, signal.SIGTERM), (2 / 3, signal.SIGKILL))
FLOW_NOTE = (
    f"browse = listing, product page or full-text search ({BROWSE['listing']}:{BROWSE['detail']}:"
    f"{BROWSE['search']}); fit = products that fit me or size advice (1:1); order = cart add + POST /orders "
    f"from the cart, {RETRY_SHARE:.0%} retried with the same Idempotency-Key; pay = the oldest unpaid order: "
    f"payment + signed charge.success webhook ({DUPLICATE_WEBHOOK_SHARE:.0%} delivered twice); cancel = the "
    f"newest unpaid order; measure = photo pair upload + polling until ready; {HOT_VARIANTS} of the "
    f"{ORDER_VARIANTS} variants sold have {HOT_STOCK} units and get {HOT_SHARE:.0%} of orders (they sell "
    f"out), the rest {COLD_STOCK}"
)


@dataclass(frozen=True)
class Shopper:
    email: str
    headers: dict[str, str]


@dataclass
class Pools:
    """What the flows draw from (built from the working copy's rows before the load)."""

    requests: dict[str, list[Request]]  # listing, detail, search, similar, fit_products, size_advice
    order_shoppers: list[Shopper]
    measure_shoppers: list[Shopper]
    hot_variants: list[str]
    cold_variants: list[str]
    photos: list[PhotoPair]


@dataclass
class Placed:
    id: str
    shopper: Shopper


@dataclass
class Ledger:
    """What the API told the driver: the figures the invariants are checked against."""

    created: dict[str, Placed] = field(default_factory=dict)
    unpaid: deque[str] = field(default_factory=deque)
    retries: int = 0
    retries_same_order: int = 0
    webhooks_queued: set[str] = field(default_factory=set)
    cancelled: set[str] = field(default_factory=set)
    measurements: dict[str, str | None] = field(default_factory=dict)  # id -> last status seen
    pay_skipped: int = 0  # pay/cancel flows that found no unpaid order


class CpuMeter:
    """CPU seconds used since the last reading by the stack's process groups, by this process
    and by the whole machine (the rest is other programs')."""

    def __init__(self, stack: SoakStack) -> None:
        self.stack = stack
        self.last: dict[int, float] = {}  # pid -> CPU seconds at the last reading
        self.last_busy: float | None = None
        self.last_at = 0.0

    @staticmethod
    def busy() -> float:
        t = psutil.cpu_times()
        return float(t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0))

    def read(self, at: float) -> CpuSample | None:
        groups: dict[str, list[int]] = {**self.stack.cpu_groups(), "driver": []}
        now: dict[int, float] = {}
        used: dict[str, float] = {}
        for group, roots in groups.items():
            processes = [psutil.Process()] if group == "driver" else [p for r in roots for p in _tree(r)]
            total = 0.0
            for process in processes:
                with contextlib.suppress(psutil.Error):
                    times = process.cpu_times()
                    now[process.pid] = times.user + times.system
                    total += now[process.pid] - self.last.get(process.pid, now[process.pid])
            used[group] = round(total, 3)
        busy, previous, since = self.busy(), self.last_busy, self.last_at
        self.last, self.last_busy, self.last_at = now, busy, at
        if previous is None:
            return None
        others = max(0.0, busy - previous - sum(used.values()))
        return CpuSample(at, round(at - since, 3), {**used, "others": round(others, 3)})


def problem_code(response: httpx.Response) -> str:
    with contextlib.suppress(ValueError, AttributeError):
        kind = response.json().get("type")
        if isinstance(kind, str):
            return kind.rsplit("/", 1)[-1]
    return response.reason_phrase.lower().replace(" ", "_") or "error"


class Driver:
    def __init__(
        self,
        stack: SoakStack,
        database: str,
        base_url: str,
        pools: Pools,
        *,
        rate: float,
        seconds: float,
        seed: int,
        rss_interval: float,
        mix: dict[str, float] | None = None,
    ) -> None:
        self.stack, self.database, self.base_url, self.pools = stack, database, base_url, pools
        self.rate, self.seconds, self.rss_interval = rate, seconds, rss_interval
        self.mix = dict(MIX if mix is None else mix)
        # Flows of kinds this class does not define (the marketplace's), by kind.
        self.extra_flows: dict[str, Callable[[float], Awaitable[None]]] = {}
        self.rng = random.Random(seed)  # noqa: S311  # a load mix, not a secret
        self.calls: list[Call] = []
        self.rss: list[RssSample] = []
        self.cpu: list[CpuSample] = []
        self.measuring = 0  # photo pairs between upload and finished (the inference worker is busy)
        self.faults: list[dict[str, Any]] = []
        self.ledger = Ledger()
        self.flows_started: dict[str, int] = dict.fromkeys(self.mix, 0)
        self.locks: dict[str, asyncio.Lock] = {}
        self.in_flight: set[asyncio.Task[None]] = set()
        self.t0 = 0.0
        self.load_seconds = 0.0
        self.client: httpx.AsyncClient | None = None

    # --- recording ---------------------------------------------------------------------------------
    def now(self) -> float:
        return time.monotonic() - self.t0

    def record(self, kind: str, due: float, status: int = 0, error: str | None = None) -> None:
        self.calls.append(
            Call(kind, round(due - self.t0, 3), round((time.monotonic() - due) * 1000, 2), status, error)
        )

    async def call(
        self,
        kind: str,
        method: str,
        path: str,
        *,
        due: float | None = None,
        ok: tuple[int, ...] = (200,),
        check: Callable[[httpx.Response], str | None] | None = None,
        **kwargs: Any,
    ) -> httpx.Response | None:
        """One request, recorded; the response when its status is one of ``ok`` (and ``check``
        finds nothing wrong), else None."""
        assert self.client is not None
        started = due if due is not None else time.monotonic()
        try:
            response = await self.client.request(method, path, **kwargs)
        except httpx.TimeoutException:
            self.record(kind, started, 0, "timeout")
            return None
        except httpx.HTTPError as exc:
            self.record(kind, started, 0, type(exc).__name__)
            return None
        if response.status_code not in ok:
            self.record(
                kind, started, response.status_code, f"{response.status_code} {problem_code(response)}"
            )
            return None
        problem = check(response) if check is not None else None
        if problem is not None:
            self.record(kind, started, response.status_code, f"check: {problem}")
            return None
        self.record(kind, started, response.status_code)
        return response

    async def send(self, kind: str, request: Request, due: float, **kw: Any) -> httpx.Response | None:
        return await self.call(
            kind,
            request.method,
            request.path,
            due=due,
            params=request.params,
            headers=request.headers,
            content=request.body,
            **kw,
        )

    # --- flows -------------------------------------------------------------------------------------
    def lock(self, name: str) -> asyncio.Lock:
        """The lock of a shopper's cart (by email) or of anything else flows must not share."""
        return self.locks.setdefault(name, asyncio.Lock())

    def pick(self, pool: str) -> Request:
        return self.rng.choice(self.pools.requests[pool])

    async def browse(self, due: float) -> None:
        kind = self.rng.choices(list(BROWSE), weights=list(BROWSE.values()))[0]
        await self.send(kind, self.pick(kind), due)

    async def fit(self, due: float) -> None:
        kind = "fit_products" if self.rng.random() < 0.5 else "size_advice"
        await self.send(kind, self.pick(kind), due)

    async def similar(self, due: float) -> None:
        def full(response: httpx.Response) -> str | None:
            items = len(response.json()["items"])
            return None if items >= 10 else f"short: {items} of 10 items"

        await self.send("similar", self.pick("similar"), due, check=full)

    async def order(self, due: float) -> None:
        shopper = self.rng.choice(self.pools.order_shoppers)
        hot = self.rng.random() < HOT_SHARE
        variant = self.rng.choice(self.pools.hot_variants if hot else self.pools.cold_variants)
        quantity = 1 if self.rng.random() < 0.8 else 2
        retry = self.rng.random() < RETRY_SHARE
        async with self.lock(shopper.email):  # one flow at a time uses a shopper's cart
            added = await self.call(
                "cart_add",
                "POST",
                f"{API}/cart/items",
                due=due,
                ok=(201,),
                headers=shopper.headers,
                json={"variant_id": variant, "quantity": quantity},
            )
            if added is None:
                return
            line = next((i["id"] for i in added.json()["items"] if i["variant_id"] == variant), None)
            body = {"shipping_address": ADDRESS}
            headers = {**shopper.headers, "Idempotency-Key": str(uuid.uuid4())}
            placed = await self.call("order", "POST", f"{API}/orders", ok=(201,), headers=headers, json=body)
            if placed is None:
                if line is not None:  # refused (409 out of stock): the line leaves the cart
                    await self.call(
                        "cart_remove",
                        "DELETE",
                        f"{API}/cart/items/{line}",
                        ok=(204,),
                        headers=shopper.headers,
                    )
                return
            order_id = str(placed.json()["id"])
            self.ledger.created[order_id] = Placed(order_id, shopper)
            self.ledger.unpaid.append(order_id)
            if retry:
                self.ledger.retries += 1

                def same(response: httpx.Response) -> str | None:
                    return None if str(response.json()["id"]) == order_id else "another order"

                again = await self.call(
                    "order_retry", "POST", f"{API}/orders", ok=(200,), check=same, headers=headers, json=body
                )
                self.ledger.retries_same_order += again is not None

    async def pay(self, due: float) -> None:
        if not self.ledger.unpaid:
            self.ledger.pay_skipped += 1
            return
        await self.settle(self.ledger.created[self.ledger.unpaid.popleft()], due)

    async def settle(self, placed: Placed, due: float | None, kinds: tuple[str, str] = PAY_KINDS) -> None:
        """Pay ``placed``: start the payment [``kinds[0]``], pay at the provider's checkout page,
        deliver its signed ``charge.success`` webhook [``kinds[1]``] (one in ten twice)."""
        started = await self.call(
            kinds[0],
            "POST",
            f"{API}/orders/{placed.id}/payments",
            due=due,
            ok=(201,),
            headers=placed.shopper.headers,
        )
        if started is None:
            return
        payment = started.json()
        # The shopper pays at the provider's checkout page (a failure is the flow's error).
        assert self.client is not None
        paid = await self.client.get(payment["authorization_url"], timeout=REQUEST_TIMEOUT_SECONDS)
        if paid.status_code != 200:
            raise RuntimeError(f"the Paystack stand-in's checkout answered {paid.status_code}: {paid.text}")
        body = charge_success_event(
            payment["reference"],
            payment["amount"]["amount"],
            payment["amount"]["currency"],
            placed.shopper.email,
        )
        headers = {
            "x-paystack-signature": sign(body, self.stack.paystack_secret),
            "content-type": "application/json",
        }
        for answer in ("queued", "duplicate") if self.rng.random() < DUPLICATE_WEBHOOK_SHARE else ("queued",):

            def acked(response: httpx.Response, answer: str = answer) -> str | None:
                got = response.json().get("status")
                return None if got == answer else f"webhook answered {got}, not {answer}"

            delivered = await self.call(
                kinds[1], "POST", WEBHOOK_PATH, check=acked, content=body, headers=headers
            )
            if delivered is not None and answer == "queued":
                self.ledger.webhooks_queued.add(placed.id)

    async def cancel(self, due: float) -> None:
        if not self.ledger.unpaid:
            self.ledger.pay_skipped += 1
            return
        placed = self.ledger.created[self.ledger.unpaid.pop()]
        if await self.call(
            "cancel", "POST", f"{API}/orders/{placed.id}/cancel", due=due, headers=placed.shopper.headers
        ):
            self.ledger.cancelled.add(placed.id)

    async def measure(self, due: float) -> None:
        shopper = self.rng.choice(self.pools.measure_shoppers)
        pair = self.rng.choice(self.pools.photos)
        self.measuring += 1
        try:
            await self._measure(due, shopper, pair)
        finally:
            self.measuring -= 1

    async def _measure(self, due: float, shopper: Shopper, pair: PhotoPair) -> None:
        uploaded = await self.call(
            "measure_upload",
            "POST",
            f"{API}/measurements",
            due=due,
            ok=(202,),
            headers=shopper.headers,
            files={
                "front": ("front.jpg", pair.front, "image/jpeg"),
                "side": ("side.jpg", pair.side, "image/jpeg"),
            },
            data={"height_cm": f"{pair.height_cm:.1f}"},
        )
        if uploaded is None:
            return
        measurement = str(uploaded.json()["id"])
        self.ledger.measurements[measurement] = "pending"
        deadline = due + MEASURE_DEADLINE_SECONDS
        while time.monotonic() < deadline:
            await asyncio.sleep(POLL_SECONDS)
            polled = await self.call(
                "measure_poll", "GET", f"{API}/measurements/{measurement}", headers=shopper.headers
            )
            if polled is None:
                continue
            body = polled.json()
            status = self.ledger.measurements[measurement] = str(body["status"])
            if status == "ready":
                self.record("measure_ready", due, 200)
                return
            if status == "failed":
                code = str((body.get("error") or {}).get("code"))
                self.record(
                    "measure_ready", due, 200, None if code in PIPELINE_REFUSALS else f"failed {code}"
                )
                return
        self.record("measure_ready", due, 0, f"not finished in {MEASURE_DEADLINE_SECONDS:g} s")

    # --- the run -----------------------------------------------------------------------------------
    async def flow(self, kind: str, due: float) -> None:
        try:
            await (self.extra_flows.get(kind) or getattr(self, kind))(due)
        except Exception as exc:  # a broken answer (bad JSON, missing field) is an error, not a crash
            self.record(kind, due, 0, f"flow failed: {type(exc).__name__}: {exc}"[:200])

    async def run(self) -> None:
        """The load, the faults at 1/3 and 2/3 of it and the RSS sampler; returns when the load
        is over and every flow it started has finished."""
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
        async with httpx.AsyncClient(
            base_url=self.base_url, timeout=REQUEST_TIMEOUT_SECONDS, limits=limits
        ) as client:
            self.client = client
            self.t0 = time.monotonic() + 0.5
            stop = asyncio.Event()
            sampler = asyncio.create_task(self.sample_rss(stop))
            faults = asyncio.create_task(self.inject_faults())
            kinds, weights = list(self.mix), list(self.mix.values())
            try:
                for index in range(int(self.seconds * self.rate)):
                    due = self.t0 + index / self.rate
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
                    kind = self.rng.choices(kinds, weights=weights)[0]
                    if len(self.in_flight) >= MAX_IN_FLIGHT:
                        self.record(kind, due, 0, "backlog: flow not started")
                        continue
                    self.flows_started[kind] += 1
                    task = asyncio.create_task(self.flow(kind, due))
                    self.in_flight.add(task)
                    task.add_done_callback(self.in_flight.discard)
                self.load_seconds = time.monotonic() - self.t0
                stop.set()
                await faults
                if self.in_flight:
                    await asyncio.wait(set(self.in_flight))
            finally:
                stop.set()
                faults.cancel()
                await sampler
                for task in list(self.in_flight):
                    task.cancel()

    async def sample_rss(self, stop: asyncio.Event) -> None:
        """RSS of the API and each worker every ``rss_interval``; CPU by group every
        ``CPU_EVERY_SECONDS``."""
        cpu = CpuMeter(self.stack)
        next_cpu = 0.0
        while not stop.is_set():
            at = self.now()
            for role, (name, pid) in self.stack.rss_targets().items():
                rss = tree_rss_mb(pid)
                if rss is not None:
                    started = max(0.0, self.stack.started_at[name] - self.t0)
                    busy = role == INFERENCE and self.measuring > 0
                    self.rss.append(RssSample(round(at, 2), role, name, round(started, 2), rss, busy))
            if at >= next_cpu:
                next_cpu = at + CPU_EVERY_SECONDS
                reading = cpu.read(round(at, 2))
                if reading is not None:
                    self.cpu.append(reading)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.rss_interval)

    async def inject_faults(self) -> None:
        """Both workers stopped at once, SIGTERM at 1/3 of the load and SIGKILL at 2/3, each
        started again at once (as a supervisor would); records when each was back (ready)."""
        for share, sig in FAULTS:
            await asyncio.sleep(max(0.0, self.t0 + share * self.seconds - time.monotonic()))
            at = self.now()
            retired = [self.stack.retire(role) for role in WORKERS]
            stopped = await asyncio.gather(
                *(asyncio.to_thread(self.stack.stop_worker, n, sig) for n in retired)
            )
            for role, outcome in zip(WORKERS, stopped, strict=True):
                # Started from the event loop's thread (no other thread is forking then).
                name = self.stack.spawn_worker(role, self.database)
                fault = {
                    "at_s": round(at, 1),
                    "signal": sig.name,
                    "role": role,
                    **outcome,
                    "new_process": name,
                }
                self.faults.append(fault)
            deadline = time.monotonic() + 240
            pending = {f["new_process"]: f for f in self.faults if "back_in_s" not in f}
            while pending and time.monotonic() < deadline:
                for name, fault in list(pending.items()):
                    if self.stack.worker_ready(name):
                        fault["back_in_s"] = round(self.now() - fault["at_s"], 1)
                        del pending[name]
                await asyncio.sleep(0.25)
            for fault in pending.values():
                fault["back_in_s"] = None  # not ready within 240 s: the invariants will show what it cost
