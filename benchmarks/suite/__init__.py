"""The benchmark suite: every latency, throughput and memory target in one run (``just bench``).

    python -m benchmarks.suite [--quick] [--scenarios a,b] [--rebuild] [--no-profile]
    python -m benchmarks.suite compare A.json B.json        (just bench-compare A B)
    python -m benchmarks.suite plots benchmarks/results/latest.json

1. **Dataset** (``dataset.py``, ``people.py``): 100k products with variants, size charts, fit
   profiles and image embeddings (``benchmarks.search_quality``'s similarity dataset), 10k shoppers
   with ready body profiles and ~30k past orders; built once into ``.data/bench-search`` and reused
   while its version and parameters match; every run works on a fresh copy (``bench_run``).
2. **Stack** (``stack.py``): production settings, one granian API worker pinned to the last CPU
   with ``taskset``; PostgreSQL, Redis, one inference worker, one worker for the other queues and
   the load generators on the other CPU.
3. **A floor per endpoint, in the same run** (``floor.py``, ``measure.py``): pgbench with the
   product page's primary query, and a bare Litestar + asyncpg + msgspec app with one handler per
   HTTP scenario at the API's path, sending the SQL the API sends for that request (the API's own
   text for the raw read paths, the ORM paths' statements captured once and written out) and
   answering the API's JSON (``tests/test_bench_floor.py``). Served by the same granian command on
   the same CPU before the API starts; every scenario is built against it and runs closed loop
   against it with the same requests it then sends the API. A scenario's ``floor_ratio`` is its
   throughput over its own floor's; both closed loops record the server's CPU per request and
   PostgreSQL's time per request (``pg_stat_statements``, reset before each run).
4. **Scenarios** (``scenarios.py``, ``checks.py``): product detail, listing, full-text search,
   similar items (+ recall@10 through the endpoint against exact search), products that fit me,
   size advice, logins, order creation (+ stock integrity and a contention burst), search by
   photo (catalog photos, and as 12-megapixel phone JPEGs), photo pair upload -> ready
   (``benchmarks.measurement_flow``), memory. Each HTTP scenario runs open loop at fixed offered
   rates (latency from each request's scheduled send time, so queueing delay counts) and closed
   loop with wrk (maximum throughput).
5. **Verdicts** (``targets.py``) against ``benchmarks/targets.toml``; **evidence** for misses in
   full runs (``profile.py``): py-spy over the API during an extra closed-loop run per scenario,
   EXPLAIN ANALYZE of the hot queries.
6. **Outputs** (``report.py``, ``plots.py``): ``benchmarks/results/bench-<UTC time>.json`` and
   ``.md`` with its plots, for every run; a run that completed (not interrupted, not stopped by an
   error) then replaces ``latest.json``, ``latest.md``, ``latest-percentiles.png`` and
   ``latest-rates.png``, the committed results.

``--quick`` runs a subset (7 scenarios, 5 s per run, only the target's rate, no profiling) in about
two minutes once the dataset exists. The exit code is 0 when the suite ran (targets are reported,
not enforced), 2 when it could not, 130 when interrupted.
"""
