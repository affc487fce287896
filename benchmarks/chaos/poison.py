"""The poison-message fault: a job that kills every worker process that runs it.

A chaos-only job (``poison_task.py``) that SIGKILLs its own worker process is sent to the
``analytics`` queue in the middle of a burst of new orders, whose analytics events (and mail)
the same worker runs. Each delivery kills the process; taskiq's supervisor starts another, which
takes the dead one's messages over. After ``TASK_DEAD_LETTER_AFTER_DELIVERIES`` deliveries the
job must be parked in the dead letters, never delivered again, while every other job is done once
in effect and nothing is left pending.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from taskiq.kicker import AsyncKicker

from benchmarks.chaos.data import Check, stock_checks
from benchmarks.chaos.faults import Chaos, FaultResult, eventually
from benchmarks.chaos.load import open_client
from benchmarks.chaos.poison_task import POISON_TASK
from benchmarks.chaos.stack import worker_name
from core.ids import new_id
from tasks.runtime.deadletters import DeadLetter, discard, list_dead_letters
from tasks.runtime.factory import build_broker
from tasks.runtime.queues import stream_name

QUEUE = "analytics"


async def _send_poison(chaos: Chaos, key: str) -> str:
    broker = build_broker(chaos.settings)
    try:
        kicker: AsyncKicker[Any, Any] = AsyncKicker(
            task_name=POISON_TASK, broker=broker, labels={"queue_name": stream_name(QUEUE)}
        )
        task = await kicker.with_task_id(uuid.uuid4().hex).kiq(key)
        return task.task_id
    finally:
        await broker.shutdown()


async def _parked(chaos: Chaos, task_id: str) -> DeadLetter | None:
    cursor = None
    while True:
        page = await list_dead_letters(chaos.redis, after=cursor, limit=100)
        for letter in page.items:
            if letter.task_id == task_id:
                return letter
        if page.next_cursor is None:
            return None
        cursor = page.next_cursor


async def poison_message(chaos: Chaos, result: FaultResult) -> None:
    settings = chaos.settings
    after = settings.task_dead_letter_after_deliveries
    since = new_id()
    shoppers = await chaos.seeder.shoppers(min(chaos.sizes.burst, 20))
    catalog = await chaos.seeder.catalog(4, 10_000)
    key = f"chaos:poison:{uuid.uuid4().hex}"
    order_ids: list[str] = []
    task_id = ""
    async with open_client(chaos.stack.base_url) as client:
        for index in range(chaos.sizes.burst):
            if index == chaos.sizes.burst // 2:
                task_id = await _send_poison(chaos, key)
            variant = catalog.variant_ids[index % len(catalog.variant_ids)]
            order_ids.append(await chaos.place(client, shoppers[index % len(shoppers)], variant))
    result.injected += 1
    result.injected_detail = f"a job that SIGKILLs its worker, sent among {len(order_ids)} orders' jobs"

    found: list[DeadLetter] = []

    async def parked() -> bool:
        letter = await _parked(chaos, task_id)
        if letter is not None:
            found.append(letter)
        return letter is not None

    per_delivery = settings.task_redelivery_idle_seconds + 30  # idle time, then a restarted worker
    parked_in = await eventually(parked, within=after * per_delivery, what="the poison job parked")
    tally = await chaos.drain(since)
    result.add_jobs(tally)
    # Room for one more delivery, which must not come.
    await asyncio.sleep(settings.task_redelivery_idle_seconds + 1)
    pids = await chaos.redis.lrange(key, 0, -1)
    letter = found[-1]
    placed = {f"order:{i}:order_placed" for i in order_ids}
    recorded = len(placed & {str(r.get("event_key")) for r in chaos.effects.analytics()})
    pending = await chaos.pending(QUEUE)
    result.notes |= {
        "deliveries": len(pids),
        "worker_processes_killed": len(set(pids)),
        "parked_after_seconds": parked_in,
        "dead_letter": {"id": letter.id, "reason": letter.reason, "consumers": letter.consumers},
    }
    result.checks += [
        Check(
            f"parked after {after} deliveries",
            (letter.reason, letter.deliveries) == ("deliveries", after),
            f"{letter.reason} after {letter.deliveries}",
        ),
        Check(f"delivered {after} times, never again", len(pids) == after, f"{len(pids)} deliveries"),
        Check(
            "each delivery killed its process and a restarted one went on",
            len(set(pids)) == after and chaos.stack.running(worker_name(QUEUE)) is not None,
            f"{len(set(pids))} processes",
        ),
        Check("an analytics event per order", recorded == len(order_ids), f"{recorded}/{len(order_ids)}"),
        Check("nothing left pending", pending == 0, f"{pending} pending"),
    ]
    result.checks += chaos.effects.duplicate_checks([uuid.UUID(i) for i in order_ids])
    result.checks += await stock_checks(chaos.db, catalog)
    await discard(chaos.redis, letter.id)  # handled: the next run starts with no dead letters
