"""Fault injection in CI: the faults of ``benchmarks/chaos`` that no other test covers, at small
sizes, on a stack of their own (its own embedded PostgreSQL, which is restarted here, and Redis;
the API as a granian process; a worker per queue but inference; the scheduler).

- Redis stopped under HTTP load: 503 + Retry-After where Redis is needed, no other 5xx, no hang;
  recovery without restarting anything; every durable job accepted meanwhile sent and done.
- PostgreSQL restarted under load: the same, the pools of the API and the workers recovering.
- The API SIGKILLed with ``POST /orders`` in flight: retries with the same Idempotency-Key on a
  new API process make exactly one order per key; stock stays consistent.
- A poison message (a job that kills its worker every time) among new orders' jobs: parked in
  the dead letters after N deliveries, the restarted worker serves every other job, none lost.

Worker kills per queue and the payment webhook's duplicates, disorder and lateness run in
``just chaos`` (``tests/test_tasks_e2e.py``, ``test_measurements_e2e.py`` and
``test_orders_e2e.py`` cover their single cases).
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator

import pytest

from benchmarks.chaos.faults import ALIASES, CI, FAULTS, Chaos, FaultResult
from benchmarks.chaos.stack import ChaosStack, new_root

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.worker]


@pytest.fixture(scope="module")
def chaos_stack() -> Iterator[ChaosStack]:
    root = new_root()
    stack = ChaosStack(root)
    try:
        stack.start(("critical", "emails", "analytics"))
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def chaos(chaos_stack: ChaosStack) -> AsyncIterator[Chaos]:
    faults = Chaos(chaos_stack, CI)
    yield faults
    await faults.close()
    chaos_stack.heal()  # whatever a failed fault left stopped, for the next one


async def inject(chaos: Chaos, fault: str) -> FaultResult:
    name = ALIASES[fault]
    result = await chaos.run(name, FAULTS[name](chaos))
    failures = "\n".join(f"  {c.name}: {c.detail}" for c in result.failures())
    assert result.error is None, result.error
    assert result.injected > 0, "the fault was not injected"
    assert result.passed, f"{name} broke invariants:\n{failures}\nnotes: {result.notes}"
    return result


async def test_redis_down_under_load_is_503_then_recovers_and_loses_no_job(chaos: Chaos) -> None:
    result = await inject(chaos, "redis")
    assert result.statuses.get("503", 0) > 0  # logins and readiness while it was down
    assert result.jobs_accepted > 0
    assert result.jobs_completed == result.jobs_accepted


async def test_postgres_restart_under_load_is_503_then_the_pools_recover(chaos: Chaos) -> None:
    result = await inject(chaos, "postgres")
    assert result.notes["recovered_seconds_after_restart"] is not None
    assert result.jobs_completed == result.jobs_accepted > 0


async def test_api_killed_mid_order_then_one_order_per_key(chaos: Chaos) -> None:
    result = await inject(chaos, "api")
    assert result.notes["requests_cut_off"] > 0


async def test_a_poison_message_is_parked_and_the_worker_serves_every_other_job(chaos: Chaos) -> None:
    result = await inject(chaos, "poison")
    after = chaos.settings.task_dead_letter_after_deliveries
    assert result.notes["deliveries"] == after
    assert result.notes["worker_processes_killed"] == after
    assert result.jobs_completed == result.jobs_accepted > 0
