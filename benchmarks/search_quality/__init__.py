"""Quality and latency of fit and similarity search (``just bench-search``).

    python -m benchmarks.search_quality [--parts recall,filtered,halfvec,latency,precision,fit]
                                        [--quick] [--rebuild]

Six parts, each selectable with ``--parts`` (default: recall, latency, precision, fit);
``--quick`` shrinks every number (20k products, fewer queries, 5 s loads) so the whole run takes
a few minutes once its datasets exist.

1. **recall** (``recall.py``): recall@10 of the HNSW index against exact search on the
   similarity dataset (100,000 products), for ~200 query products at several ``hnsw.ef_search``
   values (40, 64, 100, 200, 400), with per-ef p50/p95 query time measured in the database
   (EXPLAIN ANALYZE) and as a round trip. Exact means ``SET LOCAL enable_indexscan = off``
   (a sequential scan), HNSW means ``ORDER BY embedding <=> q LIMIT 10`` under ``SET LOCAL
   hnsw.ef_search``; both plans are verified with EXPLAIN. Then the same recall through HTTP,
   ``GET /api/v1/products/{id}/similar?<filter>&limit=10`` against the exact filtered top-10:
   with no filter and with a category filter (by default the category whose share of products
   is closest to 2%; the demo tree's leaves each hold ~3%), which also checks that the endpoint
   returns the full ``limit``.
   **filtered** (``filtered.py``): the similarity search's own code path
   (``db.services.vector_search``) in the database, per filter of the HTTP recall check: recall,
   round-trip time, which statements ran, whether the planner served the nearest rows from the
   HNSW index, next to the exact statement's time; then recall and time at several
   ``hnsw.max_scan_tuples`` per row asked (``--scan-per-row``), inside and outside each filter
   the planner served from the index. **halfvec** (``halfvec.py``): a ``halfvec(1280)``
   expression index next to the ``vector(1280)`` one on the same rows: size, build time, recall
   and query time at each ``hnsw.ef_search`` against exact full-precision search, and the search's
   code path per filter through each index.
2. **latency** (``load.py``): p50/p95/p99 of ``GET /products/{id}/similar`` (200 req/s),
   ``GET /fit/products`` and ``GET /products/{id}/fit`` (300 req/s each) on the same dataset,
   open loop for 20 s after a 3 s warm-up, latency measured from each request's *scheduled*
   send time; errors, achieved rate, load-generator lag, CPU use and API RSS; pass/fail against
   SPEC.md (similar: p95 < 15 ms at 200 req/s; fit: p95 < 25 ms at 300 req/s). The fit
   endpoints are called by shoppers with ready body profiles written straight into the
   database (``shoppers.py``), each logged in once through POST /auth/login before timing.
3. **precision** (``precision.py``): precision@10 of "more like this" on the demo catalog
   (1,000 products, every one photographed and embedded by the real model): relevant = same
   garment kind and the same colour family or pattern; with a random-ranking baseline and an
   exact-ranking reference.
4. **fit** (``fit_agreement.py``): 40 rendered bodies designed to wear women's or men's tops
   sizes XS-XL, measured through the real body pipeline, advised by ``core.rules.fit.advise``:
   exact and within-one-size agreement, and how many the pipeline refused.

**The similarity dataset is partly synthetic.** Embedding 100k generated photos with the real
model is too slow for a benchmark build (this script's build embeds 2,000 in about 20 s on two
cores, so 100k would take ~15 min plus rendering; ``--base-photos 100000`` does it), so: the demo
catalog generator writes 100,000 products (``devstack.demo.catalog.seed_catalog``, with variants,
size charts and fit profiles); the first 2,000 get real generated photos embedded by the real ONNX
model (in this process; the API never loads a model, but this script is not the API); every other
product gets ONE image whose embedding is the embedding of a base photo of the same garment kind,
colour and pattern (else kind + colour, else kind) plus Gaussian noise, renormalised, sized so a
copy's cosine to its base is ~0.9 (``--noise-cosine``), reusing the base photo's stored files. The
noise lies in one random 16-dimensional subspace shared by all copies (``--noise-rank``): photos
of a product differ along a few shared directions (pose, light, background). ``--noise-rank 0``
makes it isotropic (all 1280 dimensions), as first tried: then all ~50 copies of a base are
mutually equidistant (cosine 0.81 +- 0.015, a regular simplex real photo embeddings are unlikely
to form), and HNSW's neighbour pruning strands many of them (a run of this benchmark on 100k
products with isotropic noise: 40 of 200 query images not found as their own nearest neighbour at
ef_search 40, recall@10 0.952 at ef_search 40 and stuck at 0.962 from 64 to 400), which says more
about the construction than about the index. Copies of one base are each other's nearest
neighbours, well apart from other photos (cosine between base photos ~0.5), so the top-10 is
meaningful. The report's ``datasets`` section states the construction and the measured cosines.

**Datasets are built once** into ``.data/bench-search`` (an embedded PostgreSQL data directory,
one database per dataset, named after its parameters, plus a JSON marker with the parameters,
build steps and statistics) and reused by later runs (migrated to the current head first);
``--rebuild`` forces a rebuild. Building is bulk work: the catalog is COPYed, vectors are COPYed
in pgvector's binary format, and the HNSW index is built after loading with
``maintenance_work_mem`` raised and parallel workers. Every step's duration is printed and
reported.

**The stack** (``stack.py``): that PostgreSQL, a throwaway Redis on a free port, and the API on
granian with one worker, ``APP_ENV=production``, JSON logs at INFO, started for one dataset at a
time (the login rate limit per IP is raised so every benchmark shopper can log in). With
``--pin-cpus`` the load runs in SPEC.md's topology: the API alone on one CPU, PostgreSQL, Redis
and the load generator on the other. CPU used by other programs during a load is reported, and a
run where they used more than 10% of the machine is flagged as not clean. Everything started is
stopped at the end, also on an error or Ctrl-C; a PostgreSQL that was already running on the data
directory is left running.

The table is printed and the report written as JSON to
``benchmarks/results/search_quality-<UTC time>.json`` and ``search_quality-latest.json``. The
exit code is 0 when the benchmark ran (targets are reported, not enforced), 2 when it could not.
"""
