"""Fault injection on a stack of real processes (``just chaos``).

    python -m benchmarks.chaos [--quick] [--faults redis,postgres,api] [--out DIR] [--keep-data]

Starts a throwaway stack (``stack.py``: embedded PostgreSQL + pgvector and Redis in a temporary
directory, migrations, the API on granian, a ``tasks.runtime.worker`` process per queue, the scheduler,
a stand-in for Paystack's API) and injects, one after the other, each bounded in time:

1. **a worker SIGKILLed mid-task, for each queue**: work is queued while the queue's worker is
   stopped (product image embeddings; webhook-paid and expiring orders; order confirmation mail;
   order analytics), a worker is started and killed with its whole process tree as soon as the
   first unit is done, so messages are in flight; a new worker must take them over (redelivery)
   and finish everything exactly once in effect.
2. **Redis stopped and restarted under HTTP load** (a closed-loop mix of catalog pages, product
   pages, profile, order list, logins, new orders, readiness): answers while it is down are
   200/201 or 503 with ``Retry-After`` (never another 5xx, never slower than a bound), everything
   works again afterwards without restarting a process, and every durable job accepted meanwhile
   (outbox) is sent and done.
3. **PostgreSQL restarted under load**: the same, with the pools recovering on their own.
4. **the API SIGKILLed with several ``POST /orders`` in flight**, once one of them committed: the
   clients retry with the same ``Idempotency-Key`` on a new API process and get exactly one
   order per key.
5. **the payment webhook** delivered three times at once, a failure after a success, events of two
   attempts (the first charged the wrong amount) together, and successes after the order expired
   (stock free again: paid; stock sold to someone else: refunded).
6. **webhooks dropped**: shoppers pay at the Paystack stand-in, whose webhooks are lost; others
   never pay. The scheduled reconciliation must settle every order paid at the provider exactly
   once (recorded by it, applied by the webhook's processing), leave the unpaid attempts awaiting
   payment with nothing recorded, and a webhook delivered afterwards must be a duplicate.

7. **a poison message**: a chaos-only job that SIGKILLs the worker process running it
   (``poison_task.py``, registered only in the chaos stack's workers) is sent to ``analytics``
   among a burst of new orders' jobs. Each delivery kills the process and the supervisor starts
   another; after ``TASK_DEAD_LETTER_AFTER_DELIVERIES`` (3 here) deliveries the job must be parked
   in the dead letters and never delivered again, while every order's jobs are done once and
   nothing is left pending (``poison.py``).

After each fault the data is checked: stock = initial - sold - unpaid units, reserved = units of
unpaid orders, one move to paid and one succeeded payment per paid order, one Idempotency-Key
per order, one confirmation ``.eml`` and one notice per order and kind, no mail sent twice,
analytics repeats identical, every outbox row dispatched and its job's effect there.

The summary table (faults injected, requests, answers by status, jobs done/accepted, invariants,
PASS/FAIL) is printed and written to ``benchmarks/results/chaos-<UTC time>.json`` and
``chaos-latest.json``; the exit code is 1 when any invariant failed, 2 when the stack could not
start. ``tests/test_chaos.py`` runs faults 2-4 and 7 at small sizes in CI.
"""
