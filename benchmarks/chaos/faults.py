"""The faults, each injected into the running stack and judged by what the data says afterwards.

Every fault works on its own shoppers and products, records what it did (faults injected,
requests and answers, durable jobs accepted and completed) and returns the invariants it checked.
Each waits for a bounded time only: a fault that does not settle in time fails, it never hangs.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import anyio
import httpx
import msgspec
from redis.asyncio import Redis
from sqlalchemy import func, select, update

from benchmarks.chaos.data import (
    ADDRESS,
    Catalog,
    Check,
    Effects,
    JobTally,
    Seeder,
    Shopper,
    idempotency_checks,
    job_checks,
    ledger_check,
    notification_checks,
    payment_checks,
    photo,
    stock_checks,
)
from benchmarks.chaos.load import (
    API,
    Load,
    OrderAttempt,
    Sample,
    answer_checks,
    open_client,
    recovered_at,
    settle_orders,
    slowest_by_kind,
    statuses,
)
from benchmarks.chaos.stack import API as API_PROCESS
from benchmarks.chaos.stack import ChaosStack, worker_name
from core.adapters.payments import sign
from core.ids import new_id
from db.engine import create_database
from db.models import IdempotencyKey, Order, OrderEvent, Payment, PaymentEvent, ProductImage
from tasks.runtime.queues import stream_name

CONSUMER_GROUP = "fashionistar"
REDELIVERED = "redelivering a message a worker did not finish"


@dataclass(frozen=True)
class Sizes:
    """How big each fault is; ``--quick`` and the CI subset use smaller ones."""

    clients: int = 6  # closed-loop HTTP clients during an outage
    warmup: float = 3.0  # seconds of load before the outage
    down: float = 6.0  # seconds the service stays down
    settled: float = 3.0  # seconds every request must have succeeded to call it recovered
    burst: int = 60  # orders whose mail and analytics jobs a killed worker was running
    payments: int = 30  # orders paid while the critical worker is killed
    expiries: int = 15  # orders expiring while the critical worker is killed
    images: int = 24  # product images embedded while the inference worker is killed
    in_flight: int = 40  # POST /orders open when the API is killed
    webhook_orders: int = 6  # orders per webhook case


FULL = Sizes()
QUICK = Sizes(clients=4, warmup=2.0, down=4.0, settled=2.0, burst=30, payments=16, expiries=8, images=16,
              in_flight=24, webhook_orders=3)  # fmt: skip
CI = Sizes(clients=3, warmup=1.5, down=3.0, settled=1.5, burst=20, payments=10, expiries=5, images=8,
           in_flight=16, webhook_orders=2)  # fmt: skip


@dataclass
class FaultResult:
    fault: str
    injected: int = 0
    injected_detail: str = ""
    requests: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    jobs_accepted: int = 0
    jobs_completed: int = 0
    checks: list[Check] = field(default_factory=list)
    seconds: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def passed(self) -> bool:
        return (
            self.error is None and self.injected > 0 and bool(self.checks) and all(c.ok for c in self.checks)
        )

    def add_jobs(self, tally: JobTally) -> None:
        self.jobs_accepted += tally.accepted
        self.jobs_completed += tally.completed
        for task, (accepted, completed) in tally.by_task.items():
            seen = self.notes.setdefault("jobs_by_task", {}).setdefault(task, [0, 0])
            seen[0] += accepted
            seen[1] += completed
        self.checks += job_checks(tally)

    def add_samples(self, samples: list[Sample]) -> None:
        self.requests += len(samples)
        merged = Counter(self.statuses) + Counter(statuses(samples))
        self.statuses = dict(sorted(merged.items()))

    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]


async def eventually(
    check: Callable[[], Awaitable[bool]], *, within: float, step: float = 0.2, what: str = "condition"
) -> float:
    """Seconds until ``check()`` held.

    Raises:
        TimeoutError: it did not within ``within`` seconds.
    """
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > within:
            raise TimeoutError(f"{what} not reached within {within:g} s")
        await asyncio.sleep(step)
    return round(time.monotonic() - started, 2)


class Chaos:
    """The faults against one running :class:`ChaosStack`."""

    def __init__(self, stack: ChaosStack, sizes: Sizes) -> None:
        self.stack = stack
        self.sizes = sizes
        self.settings = stack.settings
        self.db = create_database(self.settings, "cli")
        self.seeder = Seeder(self.db, self.settings)
        self.effects = Effects(self.db, self.settings.mail_dir, stack.log_dir)
        self.redis = Redis.from_url(
            self.settings.require_redis_url(), socket_timeout=3, socket_connect_timeout=3
        )
        self.secret = self.settings.paystack_secret_key.reveal()
        # Answers to the requests a fault sends itself (placing orders, paying, uploading).
        self.answers: Counter[str] = Counter()

    async def close(self) -> None:
        await self.redis.aclose()
        await self.db.dispose()

    async def run(self, name: str, fault: Callable[[FaultResult], Awaitable[None]]) -> FaultResult:
        """Run one fault; an exception is recorded as its failure, not raised."""
        result = FaultResult(name)
        self.answers = Counter()
        started = time.monotonic()
        try:
            await fault(result)
        except Exception as exc:  # the run goes on to the next fault and reports this one failed
            result.error = f"{type(exc).__name__}: {exc}"
        # Whatever the fault did, the money must still add up (just ledger-check's invariants).
        result.checks.append(await ledger_check(self.db))
        result.seconds = round(time.monotonic() - started, 1)
        result.requests += sum(self.answers.values())
        result.statuses = dict(sorted((Counter(result.statuses) + self.answers).items()))
        return result

    def answered(self, response: httpx.Response) -> httpx.Response:
        self.answers[str(response.status_code)] += 1
        return response

    # --- helpers ----------------------------------------------------------------------------------
    async def drain(self, since: UUID, within: float = 90.0) -> JobTally:
        """The outbox rows written after ``since`` once all are sent and done (or time is up)."""
        deadline = time.monotonic() + within
        while True:
            tally = await self.effects.tally(since)
            if (tally.undispatched == 0 and tally.completed == tally.accepted) or time.monotonic() > deadline:
                return tally
            await asyncio.sleep(0.5)

    async def place(
        self, client: httpx.AsyncClient, shopper: Shopper, variant: UUID, quantity: int = 1
    ) -> str:
        """An order through the API (201), its id."""
        response = self.answered(
            await client.post(
                f"{API}/orders",
                json={
                    "shipping_address": ADDRESS,
                    "items": [{"variant_id": str(variant), "quantity": quantity}],
                },
                headers={**shopper.headers, "Idempotency-Key": str(new_id())},
            )
        )
        if response.status_code != 201:
            raise RuntimeError(f"placing an order answered {response.status_code}: {response.text[:300]}")
        return str(response.json()["id"])

    async def pay_start(self, client: httpx.AsyncClient, shopper: Shopper, order_id: str) -> dict[str, Any]:
        response = self.answered(
            await client.post(f"{API}/orders/{order_id}/payments", headers=shopper.headers)
        )
        if response.status_code != 201:
            raise RuntimeError(f"starting a payment answered {response.status_code}: {response.text[:300]}")
        started: dict[str, Any] = response.json()
        return started

    def charge(self, started: dict[str, Any], amount: int | None = None) -> bytes:
        """The shopper pays ``started`` at the provider (``amount``: charged instead of what was
        asked); the ``charge.success`` webhook it sends, for :meth:`deliver`.

        Raises:
            RuntimeError: the stand-in is dropping webhooks (a fault forgot to switch it back).
        """
        webhook = self.stack.paystack.pay(started["reference"], amount=amount)
        if webhook is None:
            raise RuntimeError("the Paystack stand-in dropped a webhook this fault wanted to deliver")
        return webhook.body

    def replay(self, started: dict[str, Any]) -> bytes:
        """The webhook of a charge already made, again."""
        return self.stack.paystack.webhook(started["reference"]).body

    async def deliver(self, client: httpx.AsyncClient, body: bytes) -> httpx.Response:
        headers = {"x-paystack-signature": sign(body, self.secret), "content-type": "application/json"}
        return self.answered(await client.post(f"{API}/webhooks/paystack", content=body, headers=headers))

    async def upload(self, client: httpx.AsyncClient, catalog: Catalog, product: UUID, image: bytes) -> UUID:
        """A product photo through the vendor API (202); the image's id."""
        response = self.answered(
            await client.post(
                f"{API}/vendor/products/{product}/images",
                files={"image": ("photo.jpg", image, "image/jpeg")},
                headers=catalog.vendor_headers,
            )
        )
        if response.status_code != 202:
            raise RuntimeError(f"uploading a photo answered {response.status_code}: {response.text[:300]}")
        return UUID(response.json()["id"])

    async def order_statuses(self, ids: list[str]) -> dict[str, str]:
        async with self.db.session_maker() as session:
            rows = await session.execute(
                select(Order.id, Order.status).where(Order.id.in_([UUID(i) for i in ids]))
            )
            return {str(i): s for i, s in rows}

    async def backdate(self, ids: list[str]) -> None:
        """Reservations of these orders ran out a second ago (the expiry job may now take them)."""
        async with self.db.session_maker() as session, session.begin():
            await session.execute(
                update(Order)
                .where(Order.id.in_([UUID(i) for i in ids]))
                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )

    async def pending(self, queue: str) -> int:
        summary = await self.redis.xpending(stream_name(queue), CONSUMER_GROUP)
        return int(summary["pending"])

    # --- 1. a worker killed mid-task, for each queue -----------------------------------------------
    async def kill_mid_burst(
        self,
        result: FaultResult,
        queue: str,
        burst: Callable[[], Awaitable[None]],
        progress: Callable[[], Awaitable[int]],
        total: int,
    ) -> None:
        """Queue ``total`` units of work while ``queue``'s worker is stopped, start it, SIGKILL it as
        soon as the first unit is done, start another and wait until all are done."""
        name = worker_name(queue)
        await anyio.to_thread.run_sync(self.stack.stop_process, name)
        await burst()
        self.stack.spawn_worker(queue)
        await eventually(lambda: _at_least(progress, 1), within=240, step=0.01, what=f"{queue} work started")
        processes = self.stack.kill(name)
        in_flight = await self.pending(queue)
        done_at_kill = await progress()
        log_offset = len(self.stack.log_text(name))
        self.stack.spawn_worker(queue)  # from this thread (see stack.py), then wait elsewhere
        await anyio.to_thread.run_sync(self.stack.wait_worker, queue)
        finished_in = await eventually(
            lambda: _at_least(progress, total), within=120, what=f"all {queue} work done"
        )
        # Room for a third delivery of anything, which would show as a duplicate below.
        await asyncio.sleep(self.settings.task_redelivery_idle_seconds + 1)
        redelivered = self.stack.log_text(name)[log_offset:].count(REDELIVERED)
        result.injected += 1
        result.injected_detail = (
            f"SIGKILL of {processes} processes with {in_flight} messages in flight "
            f"({done_at_kill}/{total} done)"
        )
        result.notes |= {
            "messages_in_flight": in_flight,
            "done_at_kill": done_at_kill,
            "total": total,
            "redelivered_messages": redelivered,
            "finished_after_restart_seconds": finished_in,
        }
        result.checks.append(
            Check("killed while messages were in flight", in_flight > 0, f"{in_flight} pending")
        )
        result.checks.append(
            Check(
                "the new worker took the dead one's messages", redelivered > 0, f"{redelivered} redelivered"
            )
        )
        result.checks.append(
            Check(
                "nothing left pending", await self.pending(queue) == 0, f"{await self.pending(queue)} pending"
            )
        )

    async def worker_killed_inference(self, result: FaultResult) -> None:
        since = new_id()
        catalog = await self.seeder.catalog(max(1, (self.sizes.images + 9) // 10), 100)
        image_ids: list[UUID] = []

        async def burst() -> None:
            async with open_client(self.stack.base_url) as client:
                for index in range(self.sizes.images):
                    product = catalog.product_ids[index // 10]
                    image_ids.append(await self.upload(client, catalog, product, photo(index)))

        async def progress() -> int:
            async with self.db.session_maker() as session:
                return int(
                    await session.scalar(
                        select(func.count()).where(
                            ProductImage.id.in_(image_ids), ProductImage.embedding_status != "pending"
                        )
                    )
                    or 0
                )

        await self.kill_mid_burst(result, "inference", burst, progress, self.sizes.images)
        tally = await self.drain(since)
        result.add_jobs(tally)
        async with self.db.session_maker() as session:
            rows = (
                await session.execute(
                    select(ProductImage.embedding_status, ProductImage.embedding_model).where(
                        ProductImage.id.in_(image_ids)
                    )
                )
            ).all()
        embedded = sum(1 for status, model in rows if status == "ready" and model)
        result.checks.append(
            Check(
                "every image embedded once", embedded == len(image_ids), f"{embedded}/{len(image_ids)} ready"
            )
        )

    async def worker_killed_critical(self, result: FaultResult) -> None:
        since = new_id()
        paying, expiring = self.sizes.payments, self.sizes.expiries
        shoppers = await self.seeder.shoppers(paying + expiring)
        catalog = await self.seeder.catalog(4, 1000)
        payments: list[dict[str, Any]] = []
        paid_ids: list[str] = []
        expiring_ids: list[str] = []
        async with open_client(self.stack.base_url) as client:
            for index, shopper in enumerate(shoppers):
                variant = catalog.variant_ids[index % len(catalog.variant_ids)]
                order_id = await self.place(client, shopper, variant, quantity=1 + index % 2)
                if index < paying:
                    payments.append(await self.pay_start(client, shopper, order_id))
                    paid_ids.append(order_id)
                else:
                    expiring_ids.append(order_id)

            async def burst() -> None:
                # Each shopper pays now and the webhook follows at once (reconciliation, which runs
                # on the stopped worker, cannot get there first).
                bodies = [self.charge(started) for started in payments]
                acks = await asyncio.gather(*(self.deliver(client, body) for body in bodies))
                if any(a.status_code != 200 for a in acks):
                    raise RuntimeError(f"webhook answers {Counter(a.status_code for a in acks)}")
                await self.backdate(expiring_ids)

            async def progress() -> int:
                found = await self.order_statuses(paid_ids + expiring_ids)
                return sum(1 for i in paid_ids if found[i] == "paid") + sum(
                    1 for i in expiring_ids if found[i] == "expired"
                )

            await self.kill_mid_burst(result, "critical", burst, progress, paying + expiring)
        tally = await self.drain(since)
        result.add_jobs(tally)
        order_ids = [UUID(i) for i in paid_ids + expiring_ids]
        result.checks += await payment_checks(self.db, order_ids)
        result.checks.append(await self.one_move_each(expiring_ids, "expired"))
        result.checks += await stock_checks(self.db, catalog)
        result.checks += self.effects.duplicate_checks(order_ids)

    async def one_move_each(self, ids: list[str], status: str) -> Check:
        async with self.db.session_maker() as session:
            moves = Counter(
                await session.scalars(
                    select(OrderEvent.order_id).where(
                        OrderEvent.order_id.in_([UUID(i) for i in ids]), OrderEvent.to_status == status
                    )
                )
            )
        wrong = [str(i) for i in ids if moves[UUID(i)] != 1]
        return Check(
            f"one move to {status} per order", not wrong, ", ".join(wrong[:3]) or f"{len(ids)} orders"
        )

    async def worker_killed_orders(self, result: FaultResult, queue: str) -> None:
        """Order mail (``emails``) or analytics (``analytics``) of a burst of new orders."""
        since = new_id()
        shoppers = await self.seeder.shoppers(min(self.sizes.burst, 20))
        catalog = await self.seeder.catalog(4, 10_000)
        order_ids: list[str] = []

        async def burst() -> None:
            async with open_client(self.stack.base_url) as client:
                for index in range(self.sizes.burst):
                    variant = catalog.variant_ids[index % len(catalog.variant_ids)]
                    order_ids.append(await self.place(client, shoppers[index % len(shoppers)], variant))

        async def progress() -> int:
            if queue == "emails":
                mails = self.effects.mail_keys()
                return sum(1 for i in order_ids if f"order-{i}-confirmation" in mails)
            wanted = {f"order:{i}:order_placed" for i in order_ids}
            return len(wanted & {str(r.get("event_key")) for r in self.effects.analytics()})

        await self.kill_mid_burst(result, queue, burst, progress, self.sizes.burst)
        tally = await self.drain(since)
        result.add_jobs(tally)
        ids = [UUID(i) for i in order_ids]
        result.checks += self.effects.duplicate_checks(ids)
        if queue == "emails":
            mails = self.effects.mail_keys()
            confirmations = sum(1 for i in order_ids if f"order-{i}-confirmation" in mails)
            result.checks.append(
                Check("one confirmation .eml per order", confirmations == len(order_ids), f"{confirmations}")
            )
            result.checks += await notification_checks(self.db, ids)
        result.checks += await stock_checks(self.db, catalog)

    # --- 2 and 3. Redis or PostgreSQL down under load ------------------------------------------------
    async def outage(
        self,
        result: FaultResult,
        service: str,
        stop: Callable[[], None],
        start: Callable[[], Awaitable[None]],
        visible_in: set[str],
    ) -> None:
        shoppers = await self.seeder.shoppers(8)
        catalog = await self.seeder.catalog(6, 1_000_000)
        since = new_id()
        pids = self.stack.pids()
        sizes = self.sizes
        async with open_client(self.stack.base_url) as client:
            load = Load(client, shoppers, catalog, shoppers[0].email)
            stop_load = asyncio.Event()
            runner = asyncio.create_task(load.run(stop_load, sizes.clients))
            try:
                await asyncio.sleep(sizes.warmup)
                went_down = load.now()
                await anyio.to_thread.run_sync(stop)
                result.injected += 1
                await asyncio.sleep(sizes.down)
                came_up = load.now()
                await start()
                back = load.now()
                kinds = set(load.MIX_KINDS)
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    ok_after = recovered_at(load.samples, back, kinds)
                    if ok_after is not None and load.now() - (back + ok_after) >= sizes.settled:
                        break
                    await asyncio.sleep(0.25)
            finally:
                stop_load.set()
                await runner
            answers = await settle_orders(load, load.orders)
        recovered = recovered_at(load.samples, back, kinds)
        down_samples = [s for s in load.samples if went_down <= s.at < came_up]
        seen_503 = sorted({s.kind for s in down_samples if s.status == 503})
        result.injected_detail = (
            f"{service} down for {came_up - went_down:.1f} s under {sizes.clients} clients"
        )
        result.add_samples(load.samples)
        result.notes |= {
            "down_seconds": round(came_up - went_down, 2),
            "restart_seconds": round(back - came_up, 2),
            "recovered_seconds_after_restart": recovered,
            "answers_while_down": statuses(down_samples),
            "slowest_seconds_by_request": slowest_by_kind(load.samples),
            "orders_retried_with_same_key": sum(1 for o in load.orders if len(o.answers) > 1),
        }
        result.checks += answer_checks(load.samples)
        result.checks.append(
            Check(
                f"503 + Retry-After while {service} was down",
                set(seen_503) >= visible_in,
                f"503 on {', '.join(seen_503) or 'nothing'}",
            )
        )
        same = self.stack.pids() == pids
        result.checks.append(
            Check(
                "recovered by itself (no process restarted)",
                recovered is not None and same,
                f"every request succeeds {recovered} s after {service} was back"
                + ("" if same else f"; processes changed: {pids} -> {self.stack.pids()}"),
            )
        )
        result.checks += await idempotency_checks(self.db, answers)
        result.checks += await stock_checks(self.db, catalog)
        tally = await self.drain(since)
        result.add_jobs(tally)
        ids = [UUID(v) for v in answers.values() if v is not None]
        result.checks += self.effects.duplicate_checks(ids)
        result.checks += await notification_checks(self.db, ids)

    async def redis_outage(self, result: FaultResult) -> None:
        async def start() -> None:
            self.stack.start_redis()  # a child of ours: started from this thread (see stack.py)

        # Logins count attempts in Redis; readiness checks it. Orders keep working (their jobs wait
        # in the outbox), the catalog too.
        await self.outage(result, "Redis", self.stack.stop_redis, start, {"login", "readiness"})

    async def postgres_restart(self, result: FaultResult) -> None:
        async def start() -> None:
            # pg_ctl starts the server detached (not our child), so it may run in another thread.
            await anyio.to_thread.run_sync(self.stack.start_postgres)

        everything = {
            "catalog page",
            "product detail",
            "profile",
            "order list",
            "order",
            "login",
            "readiness",
        }
        await self.outage(result, "PostgreSQL", self.stack.stop_postgres, start, everything)

    # --- 4. the API killed in the middle of POST /orders ------------------------------------------------
    async def api_killed(self, result: FaultResult) -> None:
        count = self.sizes.in_flight
        shoppers = await self.seeder.shoppers(count)
        catalog = await self.seeder.catalog(4, 100_000)
        since = new_id()
        all_attempts: list[OrderAttempt] = []
        cut_off: list[OrderAttempt] = []
        samples: list[Sample] = []
        for _ in range(3):  # until a kill caught requests in flight (each round is a real kill)
            async with open_client(self.stack.base_url, connections=count + 4) as client:
                load = Load(client, shoppers, catalog, shoppers[0].email)
                attempts = [
                    OrderAttempt(
                        key=str(new_id()),
                        shopper=shopper,
                        body={
                            "shipping_address": ADDRESS,
                            "items": [{"variant_id": str(catalog.variant_ids[i % 4]), "quantity": 1 + i % 3}],
                        },
                    )
                    for i, shopper in enumerate(shoppers)
                ]
                tasks = [asyncio.create_task(load.send_order(a, "order")) for a in attempts]
                keys = [a.key for a in attempts]

                async def committed_with_some_open(keys: list[str] = keys, tasks: list[Any] = tasks) -> bool:
                    if all(t.done() for t in tasks):
                        return True
                    async with self.db.session_maker() as session:
                        made = await session.scalar(select(func.count()).where(IdempotencyKey.key.in_(keys)))
                    return bool(made)

                await eventually(committed_with_some_open, within=60, step=0.005, what="a committed order")
                result.injected += 1
                self.stack.kill(API_PROCESS)
                await asyncio.gather(*tasks)
                self.stack.spawn_api()
                await anyio.to_thread.run_sync(self.stack.wait_api)
                all_attempts += attempts
                first = [a for a in attempts if a.answers == [0]]
                cut_off += first
                # Answers before the kill are what they are; the cut-off ones are retried below.
                samples += load.samples
                load.samples = []
                answers = await settle_orders(load, attempts)
                samples += load.samples
                if first:
                    break
        committed_unanswered = [a for a in cut_off if 200 in a.answers]
        result.injected_detail = (
            f"SIGKILL of the API with {len(cut_off)} POST /orders cut off, "
            f"{len(committed_unanswered)} of them "
            "committed before it died"
        )
        result.add_samples(samples)
        result.notes |= {
            "requests_cut_off": len(cut_off),
            "cut_off_but_committed": len(committed_unanswered),
            "retry_answers": statuses([s for s in samples if s.kind == "order retry"]),
        }
        answers = {a.key: a.order_id for a in all_attempts}
        result.checks.append(
            Check("requests were in flight when it died", bool(cut_off), f"{len(cut_off)} cut off")
        )
        result.checks += answer_checks(samples, allow_no_answer=True)
        result.checks += await idempotency_checks(self.db, answers)
        result.checks += await stock_checks(self.db, catalog)
        tally = await self.drain(since)
        result.add_jobs(tally)
        ids = [UUID(v) for v in answers.values() if v is not None]
        result.checks += self.effects.duplicate_checks(ids)
        result.checks += await notification_checks(self.db, ids)

    # --- 5. the payment webhook twice at once, out of order, and late ------------------------------------
    async def webhooks(self, result: FaultResult) -> None:
        n = self.sizes.webhook_orders
        shoppers = await self.seeder.shoppers(5 * n)
        catalog = await self.seeder.catalog(3, 1000)
        scarce = await self.seeder.catalog(n, 1)  # one unit each: sold to someone else after expiry
        since = new_id()
        async with open_client(self.stack.base_url) as client:
            run = WebhookRun(self, client)
            await run.duplicates(shoppers[:n], catalog.variant_ids[0])
            await run.two_attempts(shoppers[n : 2 * n], catalog.variant_ids[1])
            await run.late(shoppers[2 * n : 3 * n], [catalog.variant_ids[2]] * n, sold_meanwhile=None)
            await run.late(shoppers[3 * n : 4 * n], scarce.variant_ids, sold_meanwhile=shoppers[4 * n :])
        expected = run.expected
        await self.processed(list(expected))
        outcomes = await self.outcomes(list(expected))
        wrong = [
            f"{r}: {outcomes.get(r)} (expected {want})"
            for r, want in expected.items()
            if outcomes.get(r) != want
        ]
        result.add_jobs(await self.drain(since))
        acks = Counter(a.json().get("status") if a.status_code == 200 else a.status_code for a in run.acks)
        deliveries = len(run.acks)
        result.injected = deliveries - len(expected)
        result.injected_detail = (
            f"{deliveries} deliveries for {len(expected)} charges: the same one three times at once, "
            "a failure "
            "after a success, two attempts' events together, successes after expiry"
        )
        result.notes |= {"acknowledgements": dict(acks), "outcomes": dict(Counter(outcomes.values()))}
        refunds = [r for r, want in expected.items() if want == "refunded_expired"]
        async with self.db.session_maker() as session:
            refunded = await session.scalar(
                select(func.count()).where(Payment.reference.in_(refunds), Payment.status == "refunded")
            )
        stored = acks["queued"] + acks["stored"]
        acknowledged = set(acks) <= {"queued", "stored", "duplicate"}
        result.checks += [
            Check("every delivery acknowledged 200", acknowledged, str(dict(acks))),
            Check(
                "each event stored once, repeats acknowledged as duplicates",
                stored + acks["duplicate"] == deliveries and acks["duplicate"] > 0,
                f"{stored} stored, {acks['duplicate']} duplicates",
            ),
            Check(
                "each charge had its outcome", not wrong, "; ".join(wrong[:3]) or f"{len(expected)} charges"
            ),
            Check(
                "late charge for a sold-out order refunded",
                refunded == len(refunds),
                f"{refunded}/{len(refunds)}",
            ),
        ]
        ids = [UUID(i) for i in run.order_ids]
        result.checks += await payment_checks(self.db, ids)
        result.checks += await stock_checks(self.db, catalog)
        result.checks += await stock_checks(self.db, scarce)
        result.checks += self.effects.duplicate_checks(ids)
        result.checks += await notification_checks(self.db, ids)

    # --- 6. the payment webhook never comes: reconciliation settles the charge ------------------------
    async def webhooks_dropped(self, result: FaultResult) -> None:
        """Shoppers pay at the provider but its webhooks are lost; others never pay. The scheduled
        reconciliation verifies the waiting attempts with the provider and settles the paid ones
        through the webhook's own processing; a webhook that turns up afterwards is a duplicate."""
        paying = 2 * self.sizes.webhook_orders
        shoppers = await self.seeder.shoppers(paying + self.sizes.webhook_orders)
        catalog = await self.seeder.catalog(2, 1000)
        since = new_id()
        paid_ids, abandoned_ids, references = [], [], []
        self.stack.paystack.drop_webhooks = True
        try:
            async with open_client(self.stack.base_url) as client:
                for index, shopper in enumerate(shoppers):
                    order_id = await self.place(client, shopper, catalog.variant_ids[index % 2])
                    started = await self.pay_start(client, shopper, order_id)
                    if index < paying:
                        self.stack.paystack.pay(started["reference"])  # charged; its webhook is lost
                        paid_ids.append(order_id)
                        references.append(started["reference"])
                    else:
                        abandoned_ids.append(order_id)
                result.injected = paying
                settled_in = await eventually(
                    lambda: self.all_status(paid_ids, "paid"), within=90, what="paid orders settled"
                )
                late = [self.stack.paystack.webhook(r).body for r in references[: max(1, paying // 3)]]
                acks = await asyncio.gather(*(self.deliver(client, body) for body in late))
        finally:
            self.stack.paystack.drop_webhooks = False
        await self.processed(references)
        result.injected_detail = (
            f"{paying} charges whose webhook was dropped, {len(abandoned_ids)} attempts never paid, "
            f"{len(late)} webhooks delivered late"
        )
        result.notes["settled_seconds"] = settled_in
        result.add_jobs(await self.drain(since))
        result.checks += await self.reconciled_checks(paid_ids, abandoned_ids, references, acks)
        ids = [UUID(i) for i in paid_ids + abandoned_ids]
        result.checks += await payment_checks(self.db, ids)
        result.checks += await stock_checks(self.db, catalog)
        result.checks += self.effects.duplicate_checks(ids)
        result.checks += await notification_checks(self.db, ids)

    async def reconciled_checks(
        self, paid_ids: list[str], abandoned_ids: list[str], references: list[str], acks: list[httpx.Response]
    ) -> list[Check]:
        outcomes = await self.outcomes(references)
        async with self.db.session_maker() as session:
            sources = Counter(
                (payload.get("source") or "webhook")
                for payload in await session.scalars(
                    select(PaymentEvent.payload).where(PaymentEvent.reference.in_(references))
                )
            )
            abandoned_events = await session.scalar(
                select(func.count())
                .select_from(PaymentEvent)
                .join(Payment, Payment.reference == PaymentEvent.reference)
                .where(Payment.order_id.in_([UUID(i) for i in abandoned_ids]))
            )
        left = await self.order_statuses(abandoned_ids)
        late = Counter(a.json().get("status") if a.status_code == 200 else a.status_code for a in acks)
        return [
            Check(
                "every order paid at the provider settled once, by reconciliation",
                set(outcomes.values()) == {"paid"} and sources == {"reconciliation": len(references)},
                f"outcomes {dict(Counter(outcomes.values()))}, recorded by {dict(sources)}",
            ),
            Check(
                "attempts never paid left awaiting payment, nothing recorded for them",
                set(left.values()) == {"pending_payment"} and abandoned_events == 0,
                f"{dict(Counter(left.values()))}, {abandoned_events} events",
            ),
            Check("late webhooks acknowledged as duplicates", set(late) == {"duplicate"}, str(dict(late))),
        ]

    async def all_status(self, ids: list[str], status: str) -> bool:
        return all(s == status for s in (await self.order_statuses(ids)).values())

    async def outcomes(self, references: list[str]) -> dict[str, str | None]:
        async with self.db.session_maker() as session:
            rows = await session.execute(
                select(PaymentEvent.reference, PaymentEvent.outcome).where(
                    PaymentEvent.reference.in_(references), PaymentEvent.event_type == "charge.success"
                )
            )
            return dict(rows.all())

    async def processed(self, references: list[str], within: float = 60) -> None:
        async def done() -> bool:
            async with self.db.session_maker() as session:
                left = await session.scalar(
                    select(func.count()).where(
                        PaymentEvent.reference.in_(references),
                        PaymentEvent.event_type == "charge.success",
                        PaymentEvent.processed_at.is_(None),
                    )
                )
            return left == 0

        await eventually(done, within=within, what="payment events processed")


class WebhookRun:
    """Orders paid through signed webhooks delivered in awkward ways; what each charge should do."""

    def __init__(self, chaos: Chaos, client: httpx.AsyncClient) -> None:
        self.chaos = chaos
        self.client = client
        self.acks: list[httpx.Response] = []
        self.expected: dict[str, str] = {}  # payment reference -> outcome of its charge.success
        self.order_ids: list[str] = []

    async def deliver(self, bodies: list[bytes]) -> None:
        """All at once."""
        self.acks += await asyncio.gather(*(self.chaos.deliver(self.client, body) for body in bodies))

    async def payment(self, shopper: Shopper, variant: UUID) -> tuple[str, dict[str, Any]]:
        order_id = await self.chaos.place(self.client, shopper, variant)
        self.order_ids.append(order_id)
        return order_id, await self.chaos.pay_start(self.client, shopper, order_id)

    def success(self, started: dict[str, Any], amount: int | None = None) -> bytes:
        """The shopper pays now (``amount`` instead of what was asked); the webhook of that charge."""
        return self.chaos.charge(started, amount)

    @staticmethod
    def failure(started: dict[str, Any]) -> bytes:
        data = {"reference": started["reference"], "status": "failed", "gateway_response": "Declined"}
        return msgspec.json.encode({"event": "charge.failed", "data": data})

    async def duplicates(self, shoppers: list[Shopper], variant: UUID) -> None:
        """The same success three times at once, then a failure for the same charge (out of order)."""
        started = [(s, (await self.payment(s, variant))[1]) for s in shoppers]
        bodies = [self.success(p) for _, p in started]
        await self.deliver([body for body in bodies for _ in range(3)])
        await self.deliver([self.failure(p) for _, p in started])
        self.expected |= {p["reference"]: "paid" for _, p in started}

    async def two_attempts(self, shoppers: list[Shopper], variant: UUID) -> None:
        """The first attempt charged the wrong amount (flagged); the shopper pays again; then both
        attempts' events arrive together: the second's success twice, the first's again and a
        failure for it."""
        firsts = []
        for shopper in shoppers:
            order_id, first = await self.payment(shopper, variant)
            await self.deliver([self.success(first, amount=first["amount"]["amount"] - 100)])
            firsts.append((order_id, first, shopper))
        await self.chaos.processed([p["reference"] for _, p, _ in firsts])
        seconds = [await self.chaos.pay_start(self.client, s, o) for o, _, s in firsts]
        together = []
        for (_, first, _), second in zip(firsts, seconds, strict=True):
            body = self.success(second)
            together += [body, body, self.failure(first), self.chaos.replay(first)]
        await self.deliver(together)
        self.expected |= {p["reference"]: "amount_mismatch" for _, p, _ in firsts}
        self.expected |= {p["reference"]: "paid" for p in seconds}

    async def late(
        self, shoppers: list[Shopper], variants: list[UUID], sold_meanwhile: list[Shopper] | None
    ) -> None:
        """The success arrives (twice at once) after the order expired: its stock is free again
        (paid after expiry), or ``sold_meanwhile`` bought it first (refunded, stays expired)."""
        started = [(s, *(await self.payment(s, v))) for s, v in zip(shoppers, variants, strict=True)]
        ids = [order_id for _, order_id, _ in started]
        await self.chaos.backdate(ids)
        await eventually(lambda: self.chaos.all_status(ids, "expired"), within=30, what="orders expired")
        if sold_meanwhile is not None:
            for buyer, variant in zip(sold_meanwhile, variants, strict=True):
                self.order_ids.append(await self.chaos.place(self.client, buyer, variant))
        # Paid only now, after expiry: the webhook and reconciliation may race for it.
        bodies = [self.success(p) for _, _, p in started]
        await self.deliver([body for body in bodies for _ in range(2)])
        outcome = "paid_after_expiry" if sold_meanwhile is None else "refunded_expired"
        self.expected |= {p["reference"]: outcome for _, _, p in started}


async def _at_least(progress: Callable[[], Awaitable[int]], wanted: int) -> bool:
    with contextlib.suppress(Exception):
        return await progress() >= wanted
    return False


def _poison_message(chaos: Chaos) -> Callable[[FaultResult], Awaitable[None]]:
    from benchmarks.chaos.poison import poison_message  # noqa: PLC0415  # it builds on this module

    return lambda result: poison_message(chaos, result)


FAULTS: dict[str, Callable[[Chaos], Callable[[FaultResult], Awaitable[None]]]] = {
    "worker-killed: inference (product image embedding)": lambda c: c.worker_killed_inference,
    "worker-killed: critical (payments, order expiry)": lambda c: c.worker_killed_critical,
    "worker-killed: emails (order confirmation)": lambda c: lambda r: c.worker_killed_orders(r, "emails"),
    "worker-killed: analytics (order events)": lambda c: lambda r: c.worker_killed_orders(r, "analytics"),
    "redis-down under load": lambda c: c.redis_outage,
    "postgres-restart under load": lambda c: c.postgres_restart,
    "api-killed mid POST /orders": lambda c: c.api_killed,
    "webhook: twice, out of order, late": lambda c: c.webhooks,
    "webhooks dropped: the reconciliation job settles every paid order": lambda c: c.webhooks_dropped,
    "poison message: a job that kills its worker is parked": _poison_message,
}
# Short names for --faults.
ALIASES = {
    "inference": "worker-killed: inference (product image embedding)",
    "critical": "worker-killed: critical (payments, order expiry)",
    "emails": "worker-killed: emails (order confirmation)",
    "analytics": "worker-killed: analytics (order events)",
    "redis": "redis-down under load",
    "postgres": "postgres-restart under load",
    "api": "api-killed mid POST /orders",
    "webhooks": "webhook: twice, out of order, late",
    "dropped": "webhooks dropped: the reconciliation job settles every paid order",
    "poison": "poison message: a job that kills its worker is parked",
}
