# Fashionistar backend recipes. Run them through `python3 dev.py <recipe>` on a fresh machine
# (it prepares .venv first), or with `just <recipe>` once .venv/bin is on PATH.

set dotenv-load := false
set positional-arguments := true

py := justfile_directory() / ".venv/bin/python"

# List the recipes.
default:
    @just --list

# The whole stack: embedded PostgreSQL + pgvector and Redis (unless DATABASE_URL/REDIS_URL are set), migrations, worker, scheduler, API.
up *args:
    {{py}} -m devstack.up "$@"

# PostgreSQL, pgvector, pg_stat_statements and Redis versions of the running stack (or what the embedded packages bring).
versions:
    {{py}} -m devstack.versions

# The test suite against real PostgreSQL, Redis and taskiq workers (pytest arguments pass through).
test *args:
    {{py}} -m pytest "$@"

# The test suite under coverage (line and branch tracing makes it markedly slower), then the report.
test-cov *args:
    {{py}} -m coverage run -m pytest "$@"
    {{py}} -m coverage report

# Coverage of the last `test-cov` run.
coverage:
    {{py}} -m coverage report

# Lint, format check and strict type check.
lint:
    {{py}} -m ruff check .
    {{py}} -m ruff format --check .
    {{py}} -m mypy .

# Re-lock requirements/*.txt from pyproject.toml with uv: hash-pinned versions valid on every Python >= 3.11 and platform (dev.txt: what dev.py installs; runtime.txt: the image; api.txt: the API's image). Keeps today's pins; `just lock --upgrade` or `just lock --upgrade-package NAME` moves them.
lock *args:
    #!/usr/bin/env bash
    set -euo pipefail
    compile() {
        {{py}} -m uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes \
            --custom-compile-command "just lock" --quiet "$@"
    }
    compile --extra dev -o requirements/dev.txt "$@"
    compile --extra inference --extra otel -c requirements/dev.txt -o requirements/runtime.txt
    compile --extra otel -c requirements/dev.txt -o requirements/api.txt

# Apply ruff's fixes and formatting.
fmt:
    {{py}} -m ruff check --fix .
    {{py}} -m ruff format .

# Tests then lint, as CI runs them.
ci: lint test

# The API alone (DATABASE_URL and REDIS_URL must point at running servers).
api:
    {{py}} -m granian --interface asgi --factory api.app:create_app --host ${API_HOST:-127.0.0.1} --port ${API_PORT:-8000} --loop uvloop --no-ws

# A worker for some queues ("inference,critical") or all of them.
worker queues="all":
    {{py}} -m tasks.runtime.worker --queues {{queues}}

# The periodic-job scheduler (run exactly one).
scheduler:
    {{py}} -m tasks.runtime.worker --scheduler

# Alembic through advanced-alchemy's CLI, e.g. `just db upgrade --no-prompt`, `just db make-migrations`.
db *args:
    {{justfile_directory()}}/.venv/bin/alchemy --config db.config.alchemy "$@"

# Litestar's CLI on the API (it finds app.py), e.g. `just litestar routes`, `just litestar run`, `just litestar database upgrade --no-prompt`.
litestar *args:
    {{py}} -m litestar "$@"

# The deterministic demo catalog, e.g. `just seed --products 100000` for the benchmark catalog (needs DATABASE_URL, or run it after `up` created .data).
seed *args:
    {{py}} -m devstack.demo.catalog "$@"

# Check the ledger's invariants (balanced transactions, no negative available balance, captured = earnings + commission - promotions less refunds, ...); exit 1 on a breach.
ledger-check *args:
    {{py}} -m devstack.ledger_check "$@"

# Recount "shoppers like me" (sizes kept per product and body-shape cell) from orders and measurements; --check compares only.
shopper-sizes *args:
    {{py}} -m devstack.shopper_sizes "$@"

# Plans of the listing queries on the current database (add --analyze to run them).
explain *args:
    {{py}} -m benchmarks.explain_listing "$@"

# PostgreSQL time of a search page ranked in full and read from a kept ranking, on the current database.
explain-search:
    {{py}} -m benchmarks.explain_search

# Rebuild and verify the shipped ONNX models in throwaway venvs (~2 GB of build tools; CI never runs it).
models:
    python3 -m venv .data/build-embedding
    .data/build-embedding/bin/pip install --quiet -r training/build/requirements-embedding.txt
    .data/build-embedding/bin/python training/build/product_embedding.py
    python3 -m venv .data/build-body
    .data/build-body/bin/pip install --quiet -r training/build/requirements-body.txt
    .data/build-body/bin/python training/build/body_models.py
    git status --short inference/models

# Body measurement end to end through HTTP on a throwaway stack (or --base-url): open-loop photo pair uploads → ready, p50/p95/p99, worker RSS; results in benchmarks/results/.
bench-measure *args:
    {{py}} -m benchmarks.measurement_flow "$@"

# Fit the body-measurement calibration on rendered bodies and print the held-out errors (deterministic from --seed; ~10 min on 2 cores).
train-body *args:
    {{py}} -m training.body.train "$@"

# Per-band offsets and intervals of the body calibration (and its linear models with --refit-models) on rendered shoppers stratified by waist-to-height band; writes calibration.json and the model card's note.
fit-body-bands *args:
    {{py}} -m training.body.bands "$@"

# The shipped body-measurement calibration on held-out shoppers per body band: refusals per failure code, MAE, interval coverage (deterministic from --seed; --card writes the model card).
eval-body *args:
    {{py}} -m training.body.evaluate "$@"

# Compute embeddings for every pending product image in this process; prints images/s.
embed-catalog *args:
    {{py}} -m devstack.embed_catalog "$@"

# A real inference worker's throughput and RSS on the current catalog's images.
bench-inference *args:
    {{py}} -m benchmarks.inference_worker "$@"

# Fit and similarity search quality and latency on the benchmark's own stack (datasets built once into .data/bench-search): HNSW recall vs exact, open-loop p95 of similar/fit endpoints, precision@10, fit-advice agreement; results in benchmarks/results/.
bench-search *args:
    {{py}} -m benchmarks.search_quality "$@"

# Which dimension to store product image embeddings at: recall@10 and precision@10 of PCA/SVD/random projections (128-512) against 1280-d on held-out real photo embeddings, then table and HNSW size, build time and search latency on 100k rows (`--no-database` skips that part); results in benchmarks/results/embedding_dimension-*.json.
bench-dimension *args:
    {{py}} -m benchmarks.embedding_dimension "$@"

# The benchmark suite: every latency, throughput and memory target on a 100k-product dataset (built once into .data/bench-search), with the physical floor in the same run; results in benchmarks/results/latest.{json,md} and plots. `just bench --quick` runs a ~2-minute subset.
bench *args:
    {{py}} -m benchmarks.suite "$@"

# What a request costs the API itself next to the floor app: server CPU per request under granian and (--callgrind) instructions per request in-process; steady on a busy machine. product_detail_signed_in against product_detail is what authentication (the revocation check included) costs. Results in benchmarks/results/request_cost-*.json.
bench-request-cost *args:
    {{py}} -m benchmarks.request_cost "$@"

# Per-scenario deltas between two result files of `just bench`, e.g. `just bench-compare old.json benchmarks/results/latest.json`.
bench-compare a b:
    {{py}} -m benchmarks.suite compare "$@"

# Jobs parked in the dead letters (REDIS_URL, else the embedded Redis): `list [--limit N] [--after ID]`, `show ID`, `replay ID` (send it to its queue again), `drop ID` (discard it).
dead-letters *args:
    {{py}} -m tasks.runtime.deadletters "$@"

# Fault injection on a throwaway stack: a worker SIGKILLed mid-task per queue, Redis and PostgreSQL restarted under load, the API killed mid POST /orders, payment webhooks duplicated, out of order and late, a poison message (a job that kills its worker) parked in the dead letters; prints a summary table, writes benchmarks/results/chaos-*.json, exits non-zero when an invariant breaks (`--quick` ~2 min, `--faults redis,postgres,api`).
chaos *args:
    {{py}} -m benchmarks.chaos "$@"

# Mixed shopper load (browse, fit, similar, order, pay, cancel, measure; marketplace checkout, fulfilment and returns) for 10 minutes on its own stack while the workers are restarted twice (SIGTERM, then SIGKILL); errors by type, p95 drift, jobs accepted vs done, data invariants and RSS slopes; writes benchmarks/results/soak-*.{json,md}, exits non-zero on a broken invariant, an unexpected error or a leak (`--minutes N`, `--quick` ~2 min, `--no-marketplace`).
soak *args:
    {{py}} -m benchmarks.soak "$@"

# Fuzz the API from its OpenAPI document for longer than CI does: random examples, FUZZ_MAX_EXAMPLES per operation (default 200), on its own test database.
fuzz *args:
    FUZZ_RANDOM=1 FUZZ_MAX_EXAMPLES=${FUZZ_MAX_EXAMPLES:-200} PYTEST_XDIST_WORKER=${PYTEST_XDIST_WORKER:-fuzz} {{py}} -m pytest -p no:cacheprovider tests/test_api_fuzz.py "$@"

# Known vulnerabilities in the installed dependencies (pip-audit; needs PyPI's or OSV's advisory data over the network). Fails when one is vulnerable or could not be checked.
audit *args:
    #!/usr/bin/env bash
    set -euo pipefail
    mkdir -p .data
    {{py}} -m pip_audit --skip-editable --progress-spinner off --desc on -f json -o .data/pip-audit.json "$@" || found=$?
    {{py}} - <<'REPORT'
    import json, sys
    deps = json.load(open(".data/pip-audit.json"))["dependencies"]
    unchecked = [d["name"] for d in deps if "skip_reason" in d]
    vulnerable = [d for d in deps if d.get("vulns")]
    for d in vulnerable:
        print(f"{d['name']} {d['version']}: " + ", ".join(v["id"] for v in d["vulns"]))
    print(f"{len(deps)} packages: {len(vulnerable)} vulnerable, {len(unchecked)} could not be checked")
    if unchecked:
        print("not checked (no advisory data reachable?): " + ", ".join(unchecked[:20]))
    sys.exit(1 if vulnerable or unchecked else 0)
    REPORT
    exit ${found:-0}

