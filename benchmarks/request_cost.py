"""What one request costs the API itself, next to the floor app (``just bench-request-cost``).

``just bench`` judges latency and throughput, which need a quiet machine. This measures the API's
own work per request, which other load barely moves, so a change to the request path can be
judged on a busy machine too:

- **served**: granian (the command every stack here uses, one worker, pinned with ``taskset`` to
  the last CPU when there are several) serving the API or ``suite/floor.py``; a lean asyncio client
  sends N keep-alive GETs over C connections (random listed products for the product page).
  ``product_detail_signed_in`` is the product page again with the access token of one of
  ``SIGNED_IN_USERS`` shoppers on each request: its cost over ``product_detail`` is what
  authentication costs, the check of the user's standing (token version, role, suspension;
  ``api/standing.py``) included, with each user's standing read again every second as in
  production.
  Reported: the server's CPU time (user + system of granian's process tree) per request, and
  requests per second (context only: it moves with other load).
- **instructions** (``--callgrind``, needs valgrind): the app's ASGI callable driven in-process
  (no HTTP server, no sockets) under callgrind, counting only around the request loop:
  instructions per request are deterministic, whatever else runs.

The floor ratio of the product page (``just bench``'s target: at least 0.6) is estimated here as
floor cost / API cost. Works on the database of ``DATABASE_URL`` (any catalog with listed products)
or, without it, an embedded PostgreSQL under ``.data/bench-request-cost`` with a 2,000-product
demo catalog built on first use (about a minute); Redis from ``REDIS_URL`` or an embedded one.
Results: ``benchmarks/results/request_cost-<UTC time>.json`` and ``request_cost-latest.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import psutil

from benchmarks.search_quality.stack import asyncpg_dsn
from core.adapters.tokens import TokenSigner
from core.ids import new_id
from core.settings import load_settings
from db import migrate
from devstack.embedded_redis import EmbeddedRedis
from devstack.services import EmbeddedPostgres, free_port

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
APPS = {"api": "api.app:create_app", "floor": "benchmarks.suite.floor:create_app"}
# (name, path template, apps, signed in): the floor app has a handler for each it serves
# (``suite/floor.py``).
PATHS = [
    ("product_detail", "/api/v1/products/{id}", ("api", "floor"), False),
    ("product_detail_signed_in", "/api/v1/products/{id}", ("api",), True),
    ("listing", "/api/v1/products?limit=20&sort=newest", ("api", "floor"), False),
    ("search", "/api/v1/products?q=floral%20dress&limit=20", ("api", "floor"), False),
]
SIGNED_IN_USERS = 50
# A request: its path and its extra header lines (b"" or an Authorization line).
Get = tuple[str, bytes]


# --- the services -------------------------------------------------------------------------------
@contextlib.contextmanager
def services(data_dir: Path) -> Iterator[dict[str, str]]:
    """DATABASE_URL / REDIS_URL as given, or embedded ones (the database seeded once)."""
    env: dict[str, str] = {}
    redis: EmbeddedRedis | None = None
    redis_dir: str | None = None
    try:
        if os.environ.get("DATABASE_URL"):
            env["DATABASE_URL"] = os.environ["DATABASE_URL"]
        else:
            data_dir.mkdir(parents=True, exist_ok=True)
            data_dir.chmod(0o755)  # the embedded PostgreSQL runs as its own user when started by root
            pg = EmbeddedPostgres(data_dir / "pg")
            pg.start()
            pg.ensure_database("request_cost")
            env["DATABASE_URL"] = pg.url("request_cost")
        if os.environ.get("REDIS_URL"):
            env["REDIS_URL"] = os.environ["REDIS_URL"]
        else:
            redis_dir = tempfile.mkdtemp(prefix="fashionistar-request-cost-")
            redis = EmbeddedRedis(Path(redis_dir), free_port(), persistent=False)
            redis.start()
            env["REDIS_URL"] = redis.url
        yield env
    finally:
        if redis is not None:
            redis.stop()
        if redis_dir is not None:
            shutil.rmtree(redis_dir, ignore_errors=True)


def app_environment(base: dict[str, str], data_dir: Path) -> dict[str, str]:
    """Production settings, as ``just bench`` runs the API (see benchmarks/suite/stack.py)."""
    return {
        **os.environ,
        **base,
        "APP_ENV": "production",
        "SECRET_KEY": secrets.token_hex(32),
        "PAYMENT_PROVIDER": "paystack",
        "PAYSTACK_SECRET_KEY": secrets.token_hex(32),
        "PAYSTACK_BASE_URL": "http://127.0.0.1:9",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        "DATA_DIR": str(data_dir),
        "MEDIA_DIR": str(data_dir / "media"),
        "PRIVATE_MEDIA_DIR": str(data_dir / "private"),
        "MAIL_BACKEND": "file",
        "MAIL_DIR": str(data_dir / "mail"),
        "PYTHONUNBUFFERED": "1",
    }


async def listed_products(database_url: str, limit: int = 2000) -> list[str]:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await conn.fetch("SELECT id FROM products WHERE is_listed ORDER BY id LIMIT $1", limit)
    finally:
        await conn.close()
    return [str(r["id"]) for r in rows]


async def _shoppers(database_url: str, count: int) -> list[asyncpg.Record]:
    """``count`` verified shoppers for signed-in requests (made once; they never log in)."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        emails = [f"request-cost-{i}@example.com" for i in range(count)]
        await conn.executemany(
            "INSERT INTO users (id, email, password_hash, full_name, role, is_verified,"
            " created_at, updated_at)"
            " VALUES ($1, $2, 'not-a-hash', 'Request Cost', 'client', true, now(), now())"
            " ON CONFLICT (email) DO NOTHING",
            [(new_id(), email) for email in emails],
        )
        return await conn.fetch(
            "SELECT id, role, token_version FROM users WHERE email = ANY($1::text[])", emails
        )
    finally:
        await conn.close()


def signed_in_headers(env: dict[str, str], count: int = SIGNED_IN_USERS) -> list[bytes]:
    """An ``Authorization`` line per shopper, signed with the run's SECRET_KEY as a login would."""
    signer = TokenSigner(load_settings({**env, "APP_ENV": "dev"}, dotenv=None))
    rows = asyncio.run(_shoppers(env["DATABASE_URL"], count))
    return [
        f"Authorization: Bearer {signer.issue(r['id'], r['role'], version=r['token_version'])}\r\n".encode()
        for r in rows
    ]


def prepare_catalog(env: dict[str, str]) -> list[str]:
    """Migrate, and seed the demo catalog when the database has no listed product."""
    settings = load_settings({**env, "APP_ENV": "dev"}, dotenv=None)
    migrate.upgrade(settings)
    ids = asyncio.run(listed_products(env["DATABASE_URL"]))
    if not ids:
        print("seeding a 2,000-product demo catalog (once) ...", flush=True)
        subprocess.run(  # our own module
            [sys.executable, "-m", "devstack.demo.catalog", "--products", "2000"],
            cwd=ROOT,
            env={**env, "APP_ENV": "dev", "MEDIA_DIR": str(Path(env["DATA_DIR"]) / "media")},
            check=True,
        )
        ids = asyncio.run(listed_products(env["DATABASE_URL"]))
    if not ids:
        raise SystemExit("the catalog has no listed products")
    return ids


# --- served by granian ----------------------------------------------------------------------------
async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, get: Get) -> int:
    path, headers = get
    writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n".encode() + headers + b"\r\n")
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def _drive(port: int, paths: list[Get], requests: int, connections: int) -> dict[int, int]:
    statuses: dict[int, int] = {}

    async def one_connection(count: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for _ in range(count):
                status = await _get(reader, writer, random.choice(paths))  # noqa: S311  # load mix
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    await asyncio.gather(*(one_connection(requests // connections) for _ in range(connections)))
    return statuses


def _cpu_seconds(root: psutil.Process) -> float:
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def served(
    app: str, paths: list[Get], env: dict[str, str], requests: int, connections: int
) -> dict[str, Any]:
    port = free_port()
    cpus = sorted(os.sched_getaffinity(0))
    pin = ["taskset", "-c", str(cpus[-1])] if len(cpus) > 1 and shutil.which("taskset") else []
    granian = str(Path(sys.executable).with_name("granian"))
    command = [
        *pin, granian, "--interface", "asgi", "--factory", APPS[app], "--host", "127.0.0.1",
        "--port", str(port), "--workers", "1", "--loop", "uvloop", "--no-ws", "--no-access-log",
        "--log-level", "warning",
    ]  # fmt: skip
    log_path = Path(env["DATA_DIR"]) / f"request-cost-{app}.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                asyncio.run(_drive(port, paths[:1], connections, connections))
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit(f"{app} did not start; see {log_path}") from None
                time.sleep(0.3)
        asyncio.run(_drive(port, paths, max(requests // 5, connections), connections))  # warm-up
        root = psutil.Process(server.pid)
        cpu_before, started = _cpu_seconds(root), time.perf_counter()
        statuses = asyncio.run(_drive(port, paths, requests, connections))
        cpu_after, elapsed = _cpu_seconds(root), time.perf_counter() - started
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
    count = sum(statuses.values())
    return {
        "requests": count,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "server_cpu_us_per_request": round((cpu_after - cpu_before) / count * 1e6, 1),
        "requests_per_second": round(count / elapsed, 1),
        "connections": connections,
        "pinned_to_cpu": pin[-1] if pin else None,
    }


# --- instructions, in-process under callgrind ------------------------------------------------------
async def _asgi_get(app: Any, get: Get) -> int:
    path, extra = get
    raw_path, _, query = path.partition("?")
    headers = [(b"host", b"bench")]
    if extra:
        name, _, value = extra.strip().partition(b": ")
        headers.append((name.lower(), value))
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": raw_path, "raw_path": raw_path.encode(), "query_string": query.encode(),
        "root_path": "", "headers": headers, "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }  # fmt: skip
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


def _instrument(state: str) -> None:
    """Switch callgrind's counting for this process (blocking on purpose: nothing else runs)."""
    command = ["callgrind_control", "-i", state, str(os.getpid())]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)  # noqa: S603


async def _in_process(app_name: str, paths: list[Get], requests: int) -> None:
    """The child under valgrind: start the app, warm up, count the request loop only."""
    import importlib  # noqa: PLC0415  # the app is chosen at run time

    module, _, factory = APPS[app_name].partition(":")
    app = getattr(importlib.import_module(module), factory)()
    startup: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    started = asyncio.Event()
    await startup.put({"type": "lifespan.startup"})

    async def lifespan_send(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.startup.complete":
            started.set()

    lifespan = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, startup.get, lifespan_send)
    )
    await started.wait()
    for _ in range(200):
        await _asgi_get(app, random.choice(paths))  # noqa: S311
    _instrument("on")
    statuses = [await _asgi_get(app, random.choice(paths)) for _ in range(requests)]  # noqa: S311
    _instrument("off")
    print(json.dumps({"statuses": {str(s): statuses.count(s) for s in set(statuses)}}))
    await startup.put({"type": "lifespan.shutdown"})
    await asyncio.wait_for(lifespan, 30)


def instructions(app: str, paths: list[Get], env: dict[str, str], requests: int) -> dict[str, Any]:
    out_dir = Path(tempfile.mkdtemp(prefix="fashionistar-callgrind-"))
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as spec:
            spec_paths = [[path, extra.decode()] for path, extra in paths]
            json.dump({"app": app, "paths": spec_paths, "requests": requests}, spec)
        done = subprocess.run(  # noqa: S603
            ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out_dir}/out.%p",  # noqa: S607
             sys.executable, "-m", "benchmarks.request_cost", "--in-process", spec.name],
            cwd=ROOT, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        Path(spec.name).unlink(missing_ok=True)
        if done.returncode != 0:
            raise SystemExit(f"callgrind run of {app} failed:\n{done.stderr[-3000:]}")
        counted = max(
            int(value)
            for path in out_dir.iterdir()
            for value in re.findall(r"^(?:summary|totals): (\d+)", path.read_text(errors="replace"), re.M)
        )
        statuses = json.loads(done.stdout.strip().splitlines()[-1])["statuses"]
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    return {
        "requests": requests,
        "statuses": statuses,
        "instructions_per_request": counted // requests,
    }


# --- the run --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=6000, help="per app and path (served)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--callgrind", action="store_true", help="also count instructions per request")
    parser.add_argument("--callgrind-requests", type=int, default=300)
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".data" / "bench-request-cost")
    parser.add_argument("--in-process", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.in_process:
        spec = json.loads(Path(args.in_process).read_text())
        paths = [(path, extra.encode()) for path, extra in spec["paths"]]
        asyncio.run(_in_process(spec["app"], paths, spec["requests"]))
        return 0

    data_dir = args.data_dir.resolve()
    with services(data_dir) as base:
        env = app_environment(base, data_dir)
        ids = prepare_catalog(env)
        tokens = signed_in_headers(env)
        results: dict[str, Any] = {}
        for name, template, apps, signed_in in PATHS:
            urls = [template.replace("{id}", i) for i in ids] if "{id}" in template else [template]
            rng = random.Random(name)  # noqa: S311  # a load mix, the same every run
            paths = [(url, rng.choice(tokens) if signed_in else b"") for url in urls]
            for app in apps:
                key = f"{name}/{app}"
                results[key] = {"served": served(app, paths, env, args.requests, args.connections)}
                if args.callgrind:
                    results[key]["callgrind"] = instructions(app, paths, env, args.callgrind_requests)
                print(key, json.dumps(results[key]), flush=True)
    api, floor = results["product_detail/api"], results["product_detail/floor"]
    ratios = {
        "served_cpu": round(
            floor["served"]["server_cpu_us_per_request"] / api["served"]["server_cpu_us_per_request"], 3
        )
    }
    if args.callgrind:
        ratios["instructions"] = round(
            floor["callgrind"]["instructions_per_request"] / api["callgrind"]["instructions_per_request"], 3
        )
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "system": platform.platform(),
        },
        "catalog_products": len(ids),
        "results": results,
        "product_detail_floor_over_api": ratios,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for name in (f"request_cost-{stamp}.json", "request_cost-latest.json"):
        (RESULTS / name).write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(f"{'scenario/app':<26} {'server CPU us/req':>18} {'req/s':>8} {'instr/req':>12}")
    for key, value in results.items():
        instr = value.get("callgrind", {}).get("instructions_per_request")
        print(
            f"{key:<26} {value['served']['server_cpu_us_per_request']:>18,.0f} "
            f"{value['served']['requests_per_second']:>8,.0f} {f'{instr:,}' if instr else '-':>12}"
        )
    print(f"product page, floor cost / API cost: {ratios}")
    signed_in = results["product_detail_signed_in/api"]["served"]["server_cpu_us_per_request"]
    extra = signed_in - api["served"]["server_cpu_us_per_request"]
    print(f"product page signed in over anonymous (authentication, standing check): {extra:+,.0f} us/request")
    return 0


if __name__ == "__main__":
    sys.exit(main())
