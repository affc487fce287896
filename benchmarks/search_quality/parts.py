"""The parts that need a dataset and the API: recall and latency on the similarity dataset,
precision on the demo dataset. Each returns its section of the report."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
import numpy as np
from sqlalchemy import select

from benchmarks.measurement_flow import CpuMeter
from benchmarks.search_quality import filtered, halfvec, load, precision, recall
from benchmarks.search_quality.client import LoadClient, Response
from benchmarks.search_quality.dataset import Dataset, category_tree
from benchmarks.search_quality.shoppers import ensure_shoppers, log_in
from benchmarks.search_quality.stack import SearchStack, Timer, connect
from db.engine import create_database
from db.models import Product
from db.services.catalog.listing import filter_conditions
from db.services.catalog.taxonomy import CategoryTree

API = "/api/v1"
LOAD_PRODUCTS = 2_000  # distinct products a load scenario cycles through
TARGET_SIMILAR = (15.0, 200.0)  # SPEC: p95 < 15 ms at 200 req/s
TARGET_FIT = (25.0, 300.0)  # SPEC: p95 < 25 ms at 300 req/s
_EMBEDDED = "EXISTS (SELECT 1 FROM product_images i WHERE i.product_id = p.id AND i.embedding IS NOT NULL)"
_EMBEDDED_PER_CATEGORY = (
    f"SELECT category_id, count(*) AS n FROM products p WHERE is_listed AND {_EMBEDDED} GROUP BY category_id"  # noqa: S608
)


@dataclass(frozen=True)
class Config:
    parts: frozenset[str]
    seed: int
    k: int
    queries: int
    ef_values: list[int]
    filters: list[str]  # query strings; "auto" = the category closest to filter_share
    filter_share: float
    filtered_queries: int
    similar_rate: float
    fit_rate: float
    seconds: float
    warmup_seconds: float
    shoppers: int
    pin_cpus: bool = False
    scan_per_row: tuple[int, ...] = (10, 25, 50, 100)


def http_client(base_url: str) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    return httpx.AsyncClient(base_url=base_url, limits=limits, timeout=httpx.Timeout(30.0))


async def similarity_parts(
    config: Config, stack: SearchStack, dataset: Dataset, base_url: str, timer: Timer
) -> dict[str, Any]:
    settings = stack.dataset_settings(dataset.spec.name)
    url = settings.require_database_url()
    tree = await category_tree(settings)
    database = create_database(settings, "cli")
    out: dict[str, Any] = {}
    try:
        async with connect(url) as conn, http_client(base_url) as client:
            if "recall" in config.parts:
                queries = await recall.pick_queries(conn, config.queries, config.seed)
                cpu = CpuMeter([pid for pid in (os.getpid(), stack.postmaster_pid()) if pid is not None])
                with timer.step(f"recall in the database ({len(queries)} queries, ef {config.ef_values})"):
                    cpu.start()
                    out["recall_database"] = await recall.database_recall(
                        conn, queries, config.ef_values, config.k
                    )
                    cpu.stop()
                out["recall_database"]["cpu_during_run"] = cpu.report
                out["recall_http"] = []
                for params in await _filters(conn, tree, config):
                    picked = await _filter_queries(conn, database, tree, params, config)
                    with timer.step(f"recall through HTTP, filter {params or 'none'}"):
                        out["recall_http"].append(
                            await recall.http_recall(
                                client, database.session_maker, tree, params, picked, config.k
                            )
                        )
            if "filtered" in config.parts:
                out["filtered"] = await _filtered(config, conn, database, tree, timer)
            if "halfvec" in config.parts:
                out["halfvec"] = await _halfvec(config, conn, database, tree, timer)
            if "latency" in config.parts:
                out["latency"] = await _latency(config, stack, conn, client, settings, timer, base_url)
    finally:
        await database.dispose()
    return out


async def _filtered(
    config: Config, conn: Any, database: Any, tree: CategoryTree, timer: Timer
) -> dict[str, Any]:
    """The search's own code path per filter, then the scan limit on the category filters."""
    out: dict[str, Any] = {"per_filter": [], "scan_limits": []}
    for params in await _filters(conn, tree, config):
        picked = await _filter_queries(conn, database, tree, params, config)
        with timer.step(f"filtered search in the database, filter {params or 'none'}"):
            out["per_filter"] += await filtered.filtered_search(
                database.session_maker, tree, params, picked, config.k
            )
        if out["per_filter"][-1]["nearest_rows_plan"].get("hnsw"):
            with timer.step(f"scan limits per row {list(config.scan_per_row)}, filter {params or 'none'}"):
                out["scan_limits"].append(
                    await filtered.scan_limits(
                        database.session_maker, tree, params, picked, config.k, list(config.scan_per_row)
                    )
                )
    return out


async def _halfvec(
    config: Config, conn: Any, database: Any, tree: CategoryTree, timer: Timer
) -> dict[str, Any]:
    """The halfvec expression index next to the vector index: size, recall, latency."""
    with timer.step("halfvec(1280) expression index (built unless present)"):
        out: dict[str, Any] = {"index": await halfvec.ensure_index(conn)}
    queries = await recall.pick_queries(conn, config.queries, config.seed)
    with timer.step(f"exact ranking by half-precision distance ({len(queries)} queries)"):
        out["rounding"] = await halfvec.rounding_recall(conn, queries, config.k)
    with timer.step(f"halfvec vs vector in the database ({len(queries)} queries, ef {config.ef_values})"):
        out["recall_database"] = await halfvec.index_recall(conn, queries, config.ef_values, config.k)
    filters = [
        (params, await _filter_queries(conn, database, tree, params, config))
        for params in await _filters(conn, tree, config)
    ]
    with timer.step("halfvec vs vector through the search's code path, per filter"):
        out["search"] = await halfvec.service_path(database.session_maker, tree, filters, config.k)
    return out


async def _filters(conn: Any, tree: CategoryTree, config: Config) -> list[dict[str, str]]:
    """The filters of the HTTP recall check: no filter first, then each given one."""
    counts = {r["category_id"]: r["n"] for r in await conn.fetch(_EMBEDDED_PER_CATEGORY)}
    out: list[dict[str, str]] = [{}]
    for spec in config.filters:
        if spec == "auto":
            slug, _ = recall.category_near_share(tree, counts, config.filter_share)
            out.append({"category": slug})
        elif spec:
            out.append(recall.parse_filter(spec))
    return out


async def _filter_queries(
    conn: Any, database: Any, tree: CategoryTree, params: dict[str, str], config: Config
) -> list[recall.Query]:
    """Query products for a filter: half inside it, half outside (all of them when no filter)."""
    listed = [r["id"] for r in await conn.fetch("SELECT id FROM products WHERE is_listed ORDER BY id")]
    rng = np.random.default_rng([config.seed, 6, len(params)])
    count = config.filtered_queries
    if not params:
        chosen = [listed[i] for i in rng.choice(len(listed), size=min(count, len(listed)), replace=False)]
        return await recall.queries_for(conn, chosen)
    async with database.session_maker() as session:
        conditions = await filter_conditions(session, tree, recall.listing_filters(params)) or []
        inside: list[UUID] = list(
            await session.scalars(select(Product.id).where(*conditions).order_by(Product.id))
        )
    inside_set = set(inside)
    outside = [p for p in listed if p not in inside_set]
    half = min(count // 2, len(inside))
    chosen = [inside[i] for i in rng.choice(len(inside), size=half, replace=False)]
    chosen += [
        outside[i] for i in rng.choice(len(outside), size=min(count - half, len(outside)), replace=False)
    ]
    return await recall.queries_for(conn, chosen)


async def _latency(
    config: Config,
    stack: SearchStack,
    conn: Any,
    client: httpx.AsyncClient,
    settings: Any,
    timer: Timer,
    base_url: str,
) -> list[dict[str, Any]]:
    rng = np.random.default_rng([config.seed, 7])
    with timer.step(f"shoppers with ready body profiles ({config.shoppers}) and their logins"):
        emails = await ensure_shoppers(settings, config.shoppers, config.seed)
        headers = await log_in(client, emails)
    embedded = [
        r["id"]
        for r in await conn.fetch(
            f"SELECT id FROM products p WHERE is_listed AND {_EMBEDDED} ORDER BY id"  # noqa: S608  # a constant
        )
    ]
    charted = [
        r["id"]
        for r in await conn.fetch(
            "SELECT id FROM products p WHERE is_listed AND EXISTS"
            " (SELECT 1 FROM size_chart_rows r WHERE r.product_id = p.id) ORDER BY id"
        )
    ]
    similar_ids = [embedded[i] for i in rng.permutation(len(embedded))[:LOAD_PRODUCTS]]
    fit_ids = [charted[i] for i in rng.permutation(len(charted))[:LOAD_PRODUCTS]]
    k = config.k

    def full_page(response: Response) -> str | None:
        items = len(response.json()["items"])
        return None if items >= k else f"short: {items} of {k} items"

    scenarios = [
        load.Scenario(
            "similar",
            "GET /products/{id}/similar",
            [load.Request(f"{API}/products/{p}/similar", {"limit": k}) for p in similar_ids],
            config.similar_rate,
            *TARGET_SIMILAR,
            check=full_page,
        ),
        load.Scenario(
            "fit_products",
            "GET /fit/products",
            [load.Request(f"{API}/fit/products", None, h) for h in headers],
            config.fit_rate,
            *TARGET_FIT,
        ),
        load.Scenario(
            "product_fit",
            "GET /products/{id}/fit",
            [
                load.Request(f"{API}/products/{p}/fit", None, headers[i % len(headers)])
                for i, p in enumerate(fit_ids)
            ],
            config.fit_rate,
            *TARGET_FIT,
        ),
    ]
    # This process's tree holds the API and Redis; PostgreSQL runs detached (pg_ctl).
    roots = [pid for pid in (os.getpid(), stack.postmaster_pid()) if pid is not None]
    results = []
    load_client = LoadClient(base_url)
    pinned = stack.pin_cpus() if config.pin_cpus else None
    for scenario in scenarios:
        with timer.step(f"load: {scenario.endpoint} at {scenario.rate:g} req/s for {config.seconds:g} s"):
            results.append(
                await load.run_scenario(
                    load_client,
                    scenario,
                    seconds=config.seconds,
                    warmup_seconds=config.warmup_seconds,
                    api_pid=stack.api_pid(),
                    postgres_pid=stack.postmaster_pid(),
                    cpu_roots=roots,
                )
            )
    await load_client.aclose()
    if pinned is not None:
        stack.unpin_cpus()
    for result in results:
        result["cpu_pinning"] = pinned
    return results


async def precision_part(stack: SearchStack, dataset: Dataset, base_url: str, k: int) -> dict[str, Any]:
    settings = stack.dataset_settings(dataset.spec.name)
    tree = await category_tree(settings)
    async with connect(settings.require_database_url()) as conn:
        items = await precision.load_items(conn, tree)
    async with http_client(base_url) as client:
        return await precision.precision_at_k(client, items, k)
