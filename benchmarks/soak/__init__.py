"""The soak (``just soak``): mixed shopper load for 10 minutes while the workers are restarted
twice, then errors, latency drift, work accepted vs done, data invariants and memory growth.

    python -m benchmarks.soak [--minutes 10] [--rate 20] [--quick] [--out DIR] [--rebuild]
                              [--no-marketplace]

1. **Dataset**, built once into ``.data/soak`` and reused (the benchmark suite's builders,
   ``benchmarks.suite.dataset``, small): 3,000 products with variants, size charts, fit profiles
   and image embeddings (300 real photos embedded by the model, the rest look-alike embeddings),
   300 shoppers with ready body profiles and ~2 past orders each. Building it takes a minute or
   two; each run works on a fresh copy, ``soak_run``.
2. **Stack** (``stack.py``): production settings, the API (granian, one worker), one inference
   worker, one worker for the other queues, the scheduler, PostgreSQL, Redis and a stand-in for
   Paystack's API on loopback (``devstack/paystack.py``), so payments take the production path.
   Nothing is pinned to a CPU.
3. **Load** (``driver.py``): open loop, ``--rate`` flows per second (default 20) of browse, fit,
   similar, order, pay, cancel and measure at the mix in ``driver.MIX``, sent with httpx, and the
   marketplace's flows (``marketplace.py``, unless ``--no-marketplace``): four stores with shipping
   profiles (set up before the load); shoppers checking out across them with a shipping method
   per store and paying; stores packing, shipping with tracking, delivering and cancelling units
   or whole parts; shoppers returning delivered units, stores approving and receiving them
   (restocked or not) or rejecting them. They take 4.3% of the flows from browse, so every other
   kind keeps its rate. At 1/3 of the load both workers get SIGTERM (they finish their running
   tasks and stop), at 2/3 both get SIGKILL (every process at once); each time they are started
   again straight away. RSS of the API and of each worker is sampled every second.
4. **Drain and checks** (``checks.py``): once the load is over, the workers finish what was
   accepted (up to ``--drain-seconds``: payments, mails, refunds sent to the provider), then the
   invariants are read from the database: stock conserved through sales, cancellations and
   restocked returns; reserved units; one order per request and one payment per paid order;
   refunds adding up per payment and never above what was captured, every one sent; each paid
   order's status what its fulfilments add up to; tracking on every shipped part; each received
   return refunded its lines' paid amount; measurements, mails and the outbox
   (``report.evaluate_invariants`` lists them).
5. **Report** (``report.py``): requests per kind, errors by type and status, p50/p95/p99 per kind
   per minute and the p95 drift (last minute against the first), jobs accepted vs completed,
   invariants, RSS slopes; printed, and written to ``benchmarks/results/soak-<UTC time>.json``,
   ``soak-latest.json`` and ``soak-latest.md``.

**Pass/fail** (exit code 1 on a fail, 2 when the soak could not run, 130 when interrupted): every
invariant holds; no error other than the expected ones (409 ``out_of_stock``: the soak sells a few
variants out on purpose; any 429); and no RSS slope over the bound. Latency and its drift are
reported, not judged: the machine is shared, so absolute latencies are noise; the soak is about
errors, invariants and leaks.

**Memory: RSS may grow at most 2 MB/min after warm-up.** RSS of the API's granian worker and of
each taskiq worker process is sampled every second. The slope is a least-squares line through
the *low-water marks* (the lowest RSS of each 20 s window) from 60 s after each process started
(the API: after the load started), pooled over a restarted worker's incarnations (one intercept
each, so a restart is neither growth nor shrinkage); ``report.py`` says exactly how. Low-water
marks, because leaked memory is never given back and lifts them, while memory that work in
flight takes and frees (a photo pair in the inference worker: ~100 MB) only moves the peaks; the
inference worker's marks use only the samples taken while no photo pair was in flight. Why
2 MB/min:

* it is what a 10-minute run can resolve: the API's series after warm-up is 9 minutes long, so
  a 2 MB/min leak adds ~18 MB, several times the few-MB steps its RSS takes without any leak
  (connection pools and statement caches filling); the standard errors measured here are
  0.04-0.06 MB/min for the API and 0.02-0.03 for the other worker;
* a leak at that rate is one that matters in production: the API pod's memory limit is 768 MiB
  (``k8s/base/api.yaml``) for a worker measured at ~180-230 MB, so 2 MB/min exhausts the
  ~500 MB of headroom in ~4 hours, and the inference worker's (768 MiB against ~250-350 MB)
  in a similar time: pods restarting every few hours for no reason;
* a slower leak needs a longer run (``--minutes 60`` resolves ~0.3 MB/min).

A series shorter than 5 minutes after warm-up is not judged (caches still filling dominate it, so
``--quick`` judges no memory). A longer one fails where the slope is over the bound by more than
two standard errors and passes where it is under by more than that, however noisy; in between,
the slope decides where the run resolves the bound (two standard errors within it), and the
series is otherwise reported as too noisy to judge.

**The inference worker needs ``--minutes 30``.** Its heap grows while it meets its first few
dozen photo pairs: at the soak's ~0.2 pairs/s its low-water mark climbs from ~200 to ~250-300 MB
over the first ~3 minutes of each incarnation, in 20-60 MB steps as glibc keeps or returns freed
heap, so its warm-up is 180 s. In a 10-minute soak its incarnations last 200 s between the
restarts, which leaves nothing to judge: it is reported as not judged. ``--minutes 30`` gives it
three 10-minute incarnations, 7 minutes each after warm-up (a 30-minute run here: -0.8 +- 1.2
MB/min, so under the bound beyond noise; per incarnation +5.0, -5.2 and -2.2: the heap wanders,
it does not climb).
"""
