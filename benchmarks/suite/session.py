"""One run against the working copy: the floor, then the stack and every chosen scenario."""

from __future__ import annotations

import argparse
import asyncio
import math
import secrets
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from benchmarks.measurement_flow import tree_rss_mb
from benchmarks.search_quality import recall
from benchmarks.search_quality.dataset import category_tree
from benchmarks.search_quality.stack import Timer, connect, log
from benchmarks.suite import checks, mix, mix_run, people
from benchmarks.suite import scenarios as sc
from benchmarks.suite.measure import measured_closed_loop, track_planning
from benchmarks.suite.profile import explain_plans, profile_scenario
from benchmarks.suite.runs import Plan, open_loop_runs, prepare_pgbench, run_pgbench
from benchmarks.suite.stack import API, FLOOR, INFERENCE_WORKER, SuiteStack
from benchmarks.suite.targets import load_targets
from core.adapters.tokens import TokenSigner
from core.settings import Settings, load_settings
from db.engine import create_database
from devstack.services import free_port

HTTP = ("product_detail", "listing", "search", "similar", "fit_products", "product_fit", "login", "orders")
# The scenarios the floor app serves (a login is Argon2 on the API's CPU: its target is latency).
FLOORED = tuple(name for name in HTTP if name != "login")
LOGINS = 64
HTTP_LOGINS = 4
RECALL_QUERIES = {True: 20, False: 50}  # quick, full
MEASURE_PAIRS = {True: 8, False: 40}
PROFILE_SECONDS = 8.0


async def signed_headers(settings: Settings, url: str, count: int) -> list[dict[str, str]]:
    """An Authorization header for each of the first ``count`` shoppers: a token from the API's own
    signer (``core.adapters.tokens``, the run's SECRET_KEY), the same token a login returns. Made
    before the API starts, so the floor app and the API are sent the very same requests."""
    emails = [people.shopper_email(i) for i in range(count)]
    signer = TokenSigner(settings)
    async with connect(url) as conn:
        rows = await conn.fetch(
            "SELECT id, role, token_version FROM users WHERE email = ANY($1::text[]) ORDER BY email", emails
        )
    return [
        {"Authorization": f"Bearer {signer.issue(r['id'], r['role'], version=r['token_version'])}"}
        for r in rows
    ]


async def log_in(base_url: str, settings: Settings, url: str, count: int) -> list[dict[str, str]]:
    """An Authorization header for each of the first ``count`` shoppers (the soak test's way): the
    first ``HTTP_LOGINS`` log in through POST /auth/login, the others get a token from the API's
    signer (:func:`signed_headers`).

    Raises:
        RuntimeError: a login was refused.
    """
    logged_in = await check_logins(base_url, min(count, HTTP_LOGINS))
    signed = await signed_headers(settings, url, count)
    return logged_in + signed[len(logged_in) :]


async def check_logins(base_url: str, count: int) -> list[dict[str, str]]:
    """The first ``count`` shoppers log in through POST /auth/login, the real path (an Argon2id
    verify each on the API's CPU; the ``login`` scenario measures it); the Authorization headers
    their logins give.

    Raises:
        RuntimeError: a login was refused.
    """
    headers = []
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        for index in range(count):
            body = {"email": people.shopper_email(index), "password": people.SHOPPER_PASSWORD}
            response = await client.post(f"{sc.API}/auth/login", json=body)
            if response.status_code != 200:
                raise RuntimeError(f"login as {body['email']}: {response.status_code} {response.text[:200]}")
            headers.append({"Authorization": f"Bearer {response.json()['access_token']}"})
    return headers


class Session:
    """One run's state; ``run`` does the steps in order."""

    def __init__(
        self,
        stack: SuiteStack,
        database: str,
        args: argparse.Namespace,
        plan: Plan,
        report: dict[str, Any],
        timer: Timer,
    ) -> None:
        self.stack, self.database, self.args, self.plan = stack, database, args, plan
        self.report, self.timer = report, timer
        self.settings = stack.dataset_settings(database)
        self.url = self.settings.require_database_url()
        self.targets = load_targets()
        self.rng = np.random.default_rng([args.seed, 9])
        self.chosen = set(args.scenarios)
        self.results: dict[str, Any] = report["scenarios"]
        self.built: dict[str, sc.HttpScenario] = {}
        self.base_url = ""
        self.headers: list[dict[str, str]] = []
        # Each HTTP scenario's floor (closed loop against the floor app, same requests).
        self.floors: dict[str, dict[str, Any]] = {}

    def rates(self, name: str) -> list[float]:
        return [round(float(self.targets[name]["rate"]) * f, 2) for f in self.plan.rate_factors]

    def failed(self, name: str, exc: Exception) -> None:
        log.exception("scenario failed", scenario=name)
        self.report["failures"][name] = f"{type(exc).__name__}: {exc}"

    async def run(self) -> None:
        async with connect(self.url) as conn:
            detail, self.product_ids = await sc.product_detail(conn, self.rng)
            await prepare_pgbench(conn, self.product_ids)
            buys = {"orders", mix_run.NAME} & self.chosen
            self.variants = await sc.order_variants(conn, self.rng) if buys else []
            self.photos = await checks.photo_keys(conn, 50)
            self.report["pg_planning_tracked"] = await track_planning(conn, self.database)
        self.built["product_detail"] = detail
        api_settings = load_settings(self.stack.environment(self.database), dotenv=None)
        self.headers = await signed_headers(api_settings, self.url, LOGINS)
        await self.floor(detail)
        with self.timer.step("start the workers (models loaded) and the API"):
            self.stack.start_workers(self.database)
            self.base_url = self.stack.start_api_pinned(self.database)
        with self.timer.step(f"log in {HTTP_LOGINS} shoppers through the API"):
            await check_logins(self.base_url, HTTP_LOGINS)
        for name in [n for n in HTTP if n in self.chosen]:
            await self.http(name)
        for name in ("photo_search", "photo_search_phone"):
            if name in self.chosen:
                await self.photo_search(name)
        worker_pid = self.stack.pid_of(INFERENCE_WORKER)
        if "photo_measurement" in self.chosen:
            await self.photo_measurement(worker_pid)
        # Memory after the whole run, before profiling adds load of its own.
        flow = (self.results.get("photo_measurement") or {}).get("flow") or {}
        api_pid = self.stack.pid_of("api")
        self.report["memory"] = {
            "api_rss_mb": tree_rss_mb(api_pid) if api_pid else None,
            "inference_worker_rss_mb": tree_rss_mb(worker_pid) if worker_pid else None,
            "inference_worker_peak_rss_mb_during_uploads": (flow.get("inference_worker_rss_mb") or {}).get(
                "peak"
            ),
        }
        if self.args.profile:
            await self.evidence(self.args.results_dir / "profiles")
        if mix_run.NAME in self.chosen:
            await self.browsing_mix()

    async def floor(self, detail: sc.HttpScenario) -> None:
        """pgbench, then the floor app (before the API exists): the scenarios are built against it
        (the listing's second pages from its cursors, which are the API's), and each chosen HTTP
        scenario runs closed loop against it, then the product page's open loop."""
        floor: dict[str, Any] = {}
        self.report["floor"] = floor
        stack, plan = self.stack, self.plan
        floor["pgbench"] = run_pgbench(
            stack, self.database, len(self.product_ids), plan.closed_seconds, 8, self.timer
        )
        floor_url = stack.start_floor(self.database, free_port())
        try:
            await self.build(floor_url)
            floor["scenarios"] = self.floors
            for name in [n for n in FLOORED if n in self.chosen or n == "product_detail"]:
                try:
                    self.floors[name] = await measured_closed_loop(
                        stack,
                        self.built[name],
                        floor_url,
                        plan,
                        self.timer,
                        server=FLOOR,
                        database_url=self.url,
                    )
                except Exception as exc:
                    self.failed(f"floor {name}", exc)
            floor["closed_loop"] = self.floors.get("product_detail") or {}
            capacity = floor["closed_loop"].get("ok_rate")
            floor["open_loop"] = await open_loop_runs(
                stack, detail, floor_url, self.rates("product_detail"), plan, self.timer, FLOOR, capacity
            )
            await self.floor_at_targets(floor_url)
        finally:
            stack.stop(FLOOR)

    async def floor_at_targets(self, floor_url: str) -> None:
        """Each floored read scenario's floor open loop at its target's rate: where the API misses a
        latency target, the report shows whether the bare handler running the same SQL on this
        machine meets it. Order creation is left out: its requests are one-off (stock and keys)."""
        for name, floor in self.floors.items():
            if name in ("product_detail", "orders") or name not in self.chosen:
                continue
            try:
                floor["open_loop"] = await open_loop_runs(
                    self.stack, self.built[name], floor_url, [max(self.rates(name))], self.plan,
                    self.timer, FLOOR, floor.get("ok_rate"),
                )  # fmt: skip
            except Exception as exc:
                self.failed(f"floor {name} open loop", exc)

    async def build(self, base_url: str) -> None:
        async with connect(self.url) as conn, httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            self.built["search"] = await sc.search(conn, self.rng)
            self.built["listing"] = await sc.listing(conn, self.rng, client)
            self.built["similar"] = await sc.similar(conn, self.rng, 10)
            for one in await sc.fit(conn, self.rng, self.headers):
                self.built[one.name] = one
            if "login" in self.chosen:
                # Past the shoppers with tokens and the one the photo upload flow logs in as.
                self.built["login"] = await sc.login(conn, self.rng, LOGINS + 1)
        if "orders" in self.chosen:
            needed = sum(r * (self.plan.seconds + self.plan.warmup_seconds) + 2 for r in self.rates("orders"))
            count = math.ceil(needed) + 100
            self.built["orders"] = sc.orders(self.variants, self.headers, count, secrets.token_hex(4))

    async def http(self, name: str) -> None:
        scenario = self.built[name]
        result: dict[str, Any] = {"endpoint": scenario.endpoint, "distinct_requests": len(scenario.requests)}
        self.results[name] = result
        try:
            # Closed loop first: its maximum tells which offered rates overload the server.
            closed = await measured_closed_loop(
                self.stack,
                scenario,
                self.base_url,
                self.plan,
                self.timer,
                server="api",
                database_url=self.url,
            )
            ok_rate = closed.get("ok_rate") or 0.0
            own = (self.floors.get(name) or {}).get("ok_rate")
            closed["floor_ok_rate"] = own
            closed["floor_ratio"] = round(ok_rate / own, 3) if own else None
            result["closed_loop"] = closed
            result["open_loop"] = await open_loop_runs(
                self.stack, scenario, self.base_url, self.rates(name), self.plan, self.timer, "api", ok_rate
            )
        except Exception as exc:
            self.failed(name, exc)
        if name == "orders":
            await asyncio.sleep(1.0)  # answers wrk stopped waiting for are committed by now
            async with connect(self.url) as conn:
                result["integrity"] = await checks.verify_stock(conn, self.variants, sc.ORDER_STOCK)
                with self.timer.step("orders: contention burst"):
                    result["contention"] = await checks.contention(conn, self.base_url, self.headers)
        if name == "similar":
            with self.timer.step("similar: recall@10 through the endpoint"):
                queries = RECALL_QUERIES[self.args.quick]
                result["recall"] = await _recall(self.settings, self.base_url, queries, self.args.seed)

    async def browsing_mix(self) -> None:
        """Last, as it changes the API: restarted with its page cache at the default size."""
        name, rates = mix_run.NAME, self.rates(mix_run.NAME)
        total = mix_run.requests_needed(rates, self.plan)
        try:
            needed = mix.counts(total)["order_create"]
            orders = sc.orders(self.variants, self.headers, needed, secrets.token_hex(4))
            slots = mix.plan_mix(mix_run.sources(self.built, self.headers, orders), total, self.args.seed)
            with self.timer.step("restart the API with its page cache on"):
                self.stack.stop(API)
                self.base_url = self.stack.start_api_pinned(self.database, page_cache=True)
            self.results[name] = await mix_run.browsing_mix(
                self.stack, self.base_url, slots, rates, self.plan, self.timer
            )
        except Exception as exc:
            self.failed(name, exc)

    async def photo_search(self, name: str) -> None:
        make = checks.photo_search_scenario if name == "photo_search" else checks.phone_photo_search_scenario
        scenario = await asyncio.to_thread(make, self.stack.media_dir(self.database), self.photos, 10)
        result: dict[str, Any] = {"endpoint": scenario.endpoint, "distinct_requests": len(scenario.requests)}
        self.results[name] = result
        try:
            rate = float(self.targets[name]["rate"])
            result["open_loop"] = await open_loop_runs(
                self.stack, scenario, self.base_url, [rate], self.plan, self.timer, "api"
            )
        except Exception as exc:
            self.failed(name, exc)

    async def photo_measurement(self, worker_pid: int | None) -> None:
        rate, pairs = float(self.targets["photo_measurement"]["rate"]), MEASURE_PAIRS[self.args.quick]
        email = people.shopper_email(LOGINS)  # a shopper no other scenario logs in as
        try:
            with self.timer.step(f"photo pair upload -> ready at {rate:g} pairs/s ({pairs} pairs)"):
                flow = await checks.measurement_run(
                    self.base_url,
                    email,
                    people.SHOPPER_PASSWORD,
                    pairs,
                    rate,
                    self.args.seed,
                    worker_pid,
                    lambda: self.stack.log_text(INFERENCE_WORKER),
                )
        except Exception as exc:
            self.failed("photo_measurement", exc)
            return
        run = {
            "offered_rate": rate,
            "achieved_rate": flow.get("achieved_rate"),
            "errors": flow.get("errors"),
            "requests": flow.get("pairs_offered"),
            "latency_ms": flow.get("upload_to_ready_ms"),
        }
        self.results["photo_measurement"] = {
            "endpoint": "POST /measurements -> ready",
            "flow": flow,
            "open_loop": [run],
        }

    async def evidence(self, out_dir: Path) -> None:
        """py-spy per HTTP scenario (orders excepted: more orders add nothing) and query plans."""
        profiles: dict[str, Any] = {}
        for name in [n for n in HTTP if n in self.chosen and n != "orders"]:
            with self.timer.step(f"py-spy: {name}"):
                found = await asyncio.to_thread(
                    profile_scenario, self.stack, self.built[name], self.base_url, PROFILE_SECONDS, out_dir
                )
            if found is not None:
                profiles[name] = found
        self.report["profiles"] = profiles
        database = create_database(self.settings, "cli")
        try:
            tree = await category_tree(self.settings)
            async with connect(self.url) as conn:
                with self.timer.step("EXPLAIN ANALYZE of the hot queries"):
                    self.report["plans"] = await explain_plans(
                        conn, database.session_maker, tree, self.product_ids[0]
                    )
        finally:
            await database.dispose()


async def run_session(
    stack: SuiteStack,
    database: str,
    args: argparse.Namespace,
    plan: Plan,
    report: dict[str, Any],
    timer: Timer,
) -> None:
    await Session(stack, database, args, plan, report, timer).run()


async def _recall(settings: Any, base_url: str, queries: int, seed: int) -> dict[str, Any]:
    tree = await category_tree(settings)
    database = create_database(settings, "cli")
    try:
        async with connect(settings.require_database_url()) as conn:
            picked = await recall.pick_queries(conn, queries, seed)
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            found = await recall.http_recall(client, database.session_maker, tree, {}, picked, 10)
    finally:
        await database.dispose()
    found.pop("worst_queries", None)
    return found
