"""Part 1: recall@k of the HNSW index against exact search, in the database and through HTTP.

**In the database** (asyncpg, the API idle): for each query image (the first photo of a random
listed product) the exact top-k is ``ORDER BY embedding <=> q LIMIT k`` with ``SET LOCAL
enable_indexscan = off`` (a sequential scan with a top-N sort), the HNSW top-k the same query
with ``SET LOCAL hnsw.ef_search = ef``; the query image itself is excluded (``id <> q``). Both
plans are checked with EXPLAIN before anything is measured: exact must read ``product_images``
by a sequential scan and touch no index, every HNSW query must be an Index Scan of the HNSW
index (checked on every timed query). Query time "in the database" is EXPLAIN (ANALYZE, TIMING
OFF)'s execution time of the same statement right after it ran; the round trip (asyncpg over the
Unix socket) is reported next to it.

**Through HTTP**: ``GET /products/{id}/similar?<filter>&limit=k`` against the exact top-k of
the same filter, computed with the listing's own filter conditions (``filter_conditions``:
listed products, category with its descendants, price, stock), one result per product (its
nearest image), never the query product. Half the queries come from inside the filter, half from
outside it (the hard case: nothing near the query passes the filter). Also counted: answers with
fewer than ``min(k, matching products)`` items.

Also counted per ef_search: queries whose own image the index does not return first when asked
for the single nearest vector (``LIMIT 1``, self included). Such an image sits in a part of the
graph the search cannot reach from the entry point; isotropic noise copies of one photo form
tight, isolated clusters, which is where HNSW graphs (m=16) are known to leave such islands.

Recall is tie-tolerant: a returned item counts when its distance is at most the exact k-th
distance (so an equally distant neighbour is not a miss); strict id-overlap recall is reported
next to it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl
from uuid import UUID

import asyncpg
import httpx
import numpy as np
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.expression import Executable

from benchmarks.measurement_flow import percentile
from benchmarks.search_quality.vectors import HNSW_INDEX
from db.models import Product, ProductImage
from db.services.catalog.listing import ListingFilters, filter_conditions
from db.services.catalog.taxonomy import CategoryNode, CategoryTree

API = "/api/v1"
_TOP_K = (
    "SELECT id, embedding <=> $1 AS distance FROM product_images WHERE id <> $2 "
    "ORDER BY embedding <=> $1 LIMIT $3"
)
_NEAREST = "SELECT id FROM product_images ORDER BY embedding <=> $1 LIMIT 1"
TIE = 1e-6


@dataclass(frozen=True)
class Query:
    image_id: UUID
    product_id: UUID
    category_id: UUID
    vector: np.ndarray


async def pick_queries(conn: asyncpg.Connection, count: int, seed: int) -> list[Query]:
    """The first embedded photo of ``count`` random listed products (deterministic from seed)."""
    ids = [r["id"] for r in await conn.fetch("SELECT id FROM products WHERE is_listed ORDER BY id")]
    rng = np.random.default_rng([seed, 4])
    chosen = [ids[i] for i in rng.choice(len(ids), size=min(count, len(ids)), replace=False)]
    return await queries_for(conn, chosen)


async def queries_for(conn: asyncpg.Connection, product_ids: list[UUID]) -> list[Query]:
    rows = await conn.fetch(
        "SELECT DISTINCT ON (i.product_id) i.id, i.product_id, p.category_id, i.embedding"
        " FROM product_images i JOIN products p ON p.id = i.product_id"
        " WHERE i.product_id = ANY($1) AND i.embedding IS NOT NULL AND i.embedding_status = 'ready'"
        " ORDER BY i.product_id, i.position, i.id",
        product_ids,
    )
    by_product = {
        r["product_id"]: Query(r["id"], r["product_id"], r["category_id"], r["embedding"]) for r in rows
    }
    return [by_product[p] for p in product_ids if p in by_product]


# --- plans ------------------------------------------------------------------------------------
def plan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    out, stack = [], [plan]
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(node.get("Plans", []))
    return out


def describe(plan: dict[str, Any]) -> list[str]:
    return [
        " ".join(str(x) for x in (n["Node Type"], n.get("Index Name") or n.get("Relation Name") or "") if x)
        for n in plan_nodes(plan)
    ]


def uses_hnsw(plan: dict[str, Any]) -> bool:
    return any(n.get("Index Name") == HNSW_INDEX and n["Node Type"] == "Index Scan" for n in plan_nodes(plan))


def is_exact_scan(plan: dict[str, Any]) -> bool:
    nodes = plan_nodes(plan)
    scans_images = any(
        n["Node Type"] == "Seq Scan" and n.get("Relation Name") == "product_images" for n in nodes
    )
    return scans_images and not any("Index" in n["Node Type"] for n in nodes)


async def _explain(conn: asyncpg.Connection, sql: str, *args: Any, analyze: bool = False) -> dict[str, Any]:
    options = "ANALYZE, TIMING OFF, FORMAT JSON" if analyze else "FORMAT JSON"
    raw = await conn.fetchval(f"EXPLAIN ({options}) {sql}", *args)
    result: dict[str, Any] = (json.loads(raw) if isinstance(raw, str) else raw)[0]
    return result


def tie_recall(exact: list[float], found: list[float], k: int) -> float:
    """Share of the exact top-k that ``found`` (distances of what a search returned) matches,
    counting a result as a match when it is no farther than the exact k-th result."""
    want = min(k, len(exact))
    if want == 0:
        return 1.0
    cutoff = exact[want - 1] + TIE
    return min(want, sum(1 for d in found[:k] if d <= cutoff)) / want


def _stats(values: list[float]) -> dict[str, float | None]:
    return {
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "mean": round(sum(values) / len(values), 3) if values else None,
    }


# --- in the database -----------------------------------------------------------------------------
async def database_recall(
    conn: asyncpg.Connection, queries: list[Query], ef_values: list[int], k: int
) -> dict[str, Any]:
    """Recall@k and query times of HNSW at each ef_search, against exact search.

    Raises:
        RuntimeError: the exact plan is not a sequential scan, or the HNSW plan does not use the index.
    """
    first = queries[0]
    async with conn.transaction():
        await conn.execute("SET LOCAL enable_indexscan = off")
        exact_plan = (await _explain(conn, _TOP_K, first.vector, first.image_id, k))["Plan"]
    async with conn.transaction():
        await conn.execute(f"SET LOCAL hnsw.ef_search = {ef_values[0]}")
        hnsw_plan = (await _explain(conn, _TOP_K, first.vector, first.image_id, k))["Plan"]
    if not is_exact_scan(exact_plan):
        raise RuntimeError(f"the exact query is not a sequential scan: {describe(exact_plan)}")
    if not uses_hnsw(hnsw_plan):
        raise RuntimeError(f"the HNSW query does not use {HNSW_INDEX}: {describe(hnsw_plan)}")

    exact: list[list[tuple[UUID, float]]] = []
    exact_ms: list[float] = []
    for q in queries:
        async with conn.transaction():
            await conn.execute("SET LOCAL enable_indexscan = off")
            started = time.perf_counter()
            rows = await conn.fetch(_TOP_K, q.vector, q.image_id, k)
            exact_ms.append(round((time.perf_counter() - started) * 1000, 3))
        exact.append([(r["id"], float(r["distance"])) for r in rows])
    for q in queries:  # warm the index pages at the widest search before timing
        async with conn.transaction():
            await conn.execute(f"SET LOCAL hnsw.ef_search = {max(ef_values)}")
            await conn.fetch(_TOP_K, q.vector, q.image_id, k)

    per_ef = []
    for ef in ef_values:
        recalls, strict, db_ms, round_trip_ms, off_index, lost = [], [], [], [], 0, 0
        for q, truth in zip(queries, exact, strict=True):
            async with conn.transaction():
                await conn.execute(f"SET LOCAL hnsw.ef_search = {ef}")
                started = time.perf_counter()
                rows = await conn.fetch(_TOP_K, q.vector, q.image_id, k)
                round_trip_ms.append(round((time.perf_counter() - started) * 1000, 3))
                analysed = await _explain(conn, _TOP_K, q.vector, q.image_id, k, analyze=True)
                # Reachability: does the index find the query's own vector (distance 0) first?
                lost += await conn.fetchval(_NEAREST, q.vector) != q.image_id
            db_ms.append(round(float(analysed["Execution Time"]), 3))
            off_index += not uses_hnsw(analysed["Plan"])
            recalls.append(tie_recall([d for _, d in truth], [float(r["distance"]) for r in rows], k))
            strict.append(len({i for i, _ in truth} & {r["id"] for r in rows}) / max(1, len(truth)))
        per_ef.append(
            {
                "ef_search": ef,
                "recall_at_k": round(float(np.mean(recalls)), 4),
                "recall_at_k_strict": round(float(np.mean(strict)), 4),
                "min_recall": round(min(recalls), 2),
                "queries_below_0_9": sum(r < 0.9 for r in recalls),
                "db_ms": _stats(db_ms),
                "round_trip_ms": _stats(round_trip_ms),
                "queries_not_using_index": off_index,
                "queries_not_finding_themselves": lost,
            }
        )
    return {
        "k": k,
        "queries": len(queries),
        "exact_plan": describe(exact_plan),
        "hnsw_plan": describe(hnsw_plan),
        "exact_round_trip_ms": _stats(exact_ms),
        "neighbour_cosine": {
            "first": round(1 - float(np.mean([t[0][1] for t in exact if t])), 4),
            f"k={k}": round(1 - float(np.mean([t[-1][1] for t in exact if t])), 4),
        },
        "per_ef": per_ef,
    }


# --- through HTTP -------------------------------------------------------------------------------------
class _Explain(Executable, ClauseElement):
    """``EXPLAIN (FORMAT JSON) <statement>`` with the statement's parameters bound as usual."""

    inherit_cache = False

    def __init__(self, statement: Any) -> None:
        self.statement = statement


@compiles(_Explain, "postgresql")
def _compile_explain(element: _Explain, compiler: SQLCompiler, **kw: Any) -> str:
    return "EXPLAIN (FORMAT JSON) " + compiler.process(element.statement, **kw)


def parse_filter(spec: str) -> dict[str, str]:
    """``"category=women-shoes&max_price=3000000"`` -> query parameters (``""``: no filter)."""
    return dict(parse_qsl(spec, keep_blank_values=False))


def listing_filters(params: dict[str, str]) -> ListingFilters:
    in_stock = params.get("in_stock")
    return ListingFilters(
        category=params.get("category"),
        max_price=int(params["max_price"]) if "max_price" in params else None,
        in_stock=None if in_stock is None else in_stock.lower() in ("1", "true", "yes"),
    )


def category_near_share(tree: CategoryTree, counts: dict[UUID, int], share: float) -> tuple[str, float]:
    """The category (with its descendants) whose share of ``counts`` is closest to ``share``."""
    total = sum(counts.values()) or 1
    best: tuple[float, str, float] | None = None
    stack: list[CategoryNode] = list(tree.roots)
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        held = sum(counts.get(c, 0) for c in tree.descendant_ids(node)) / total
        candidate = (abs(held - share), node.slug, held)
        if best is None or candidate < best:
            best = candidate
    if best is None:
        raise RuntimeError("the category tree is empty")
    return best[1], best[2]


async def http_recall(
    client: httpx.AsyncClient,
    session_factory: Callable[[], Any],
    tree: CategoryTree,
    params: dict[str, str],
    queries: list[Query],
    k: int,
) -> dict[str, Any]:
    """Recall@k of the endpoint under one filter, against the exact filtered top-k."""
    filters = listing_filters(params)
    recalls, strict, latencies = [], [], []
    worst: list[dict[str, Any]] = []
    short = errors = self_returned = 0
    error_samples: set[str] = set()
    plan: list[str] = []
    async with session_factory() as session:
        conditions = await filter_conditions(session, tree, filters) or []
        matching = await session.scalar(
            select(func.count(func.distinct(Product.id)))
            .join(ProductImage, ProductImage.product_id == Product.id)
            .where(*conditions, ProductImage.embedding.is_not(None))
        )
        for q in queries:
            truth = await _exact_filtered(session, conditions, q, k)
            if not plan:
                plan = await _exact_plan(session, conditions, q, k)
            started = time.perf_counter()
            response = await client.get(
                f"{API}/products/{q.product_id}/similar", params={**params, "limit": k}
            )
            latencies.append(round((time.perf_counter() - started) * 1000, 2))
            if response.status_code != 200:
                errors += 1
                error_samples.add(f"{response.status_code}: {response.text[:160]}")
                continue
            returned = [UUID(item["product"]["id"]) for item in response.json()["items"]]
            self_returned += q.product_id in returned
            returned = [p for p in returned if p != q.product_id]
            itself = await session.scalar(
                select(func.count()).select_from(Product).where(*conditions, Product.id == q.product_id)
            )
            expected = min(k, int(matching or 0) - int(itself or 0))
            short += len(returned) < expected
            found = await _distances(session, q, returned)
            recalls.append(tie_recall([d for _, d in truth], [found.get(p, 9.0) for p in returned], k))
            if recalls[-1] < 0.9:
                worst.append(
                    {
                        "product_id": str(q.product_id),
                        "recall": recalls[-1],
                        "exact_distances": [round(d, 4) for _, d in truth],
                        "returned_distances": [round(found.get(p, 9.0), 4) for p in returned],
                    }
                )
            strict.append(len({p for p, _ in truth} & set(returned)) / max(1, len(truth)) if truth else 1.0)
    return {
        "filter": params or "none",
        "matching_products": matching,
        "queries": len(queries),
        "recall_at_k": round(float(np.mean(recalls)), 4) if recalls else None,
        "recall_at_k_strict": round(float(np.mean(strict)), 4) if strict else None,
        "min_recall": round(min(recalls), 2) if recalls else None,
        "queries_below_0_9": sum(r < 0.9 for r in recalls),
        "short_answers": short,
        "self_returned": self_returned,
        "errors": errors,
        "error_samples": sorted(error_samples)[:3],
        "latency_ms_sequential": _stats(latencies),
        "exact_plan": plan,
        "worst_queries": sorted(worst, key=lambda w: w["recall"])[:5],
    }


def _exact_statement(conditions: list[Any], q: Query, k: int) -> Any:
    distance = func.min(ProductImage.embedding.cosine_distance(q.vector)).label("distance")
    return (
        select(Product.id, distance)
        .join(ProductImage, ProductImage.product_id == Product.id)
        .where(*conditions, Product.id != q.product_id, ProductImage.embedding.is_not(None))
        .group_by(Product.id)
        .order_by(distance, Product.id)
        .limit(k)
    )


async def _exact_filtered(
    session: AsyncSession, conditions: list[Any], q: Query, k: int
) -> list[tuple[UUID, float]]:
    rows = await session.execute(_exact_statement(conditions, q, k))
    return [(r[0], float(r[1])) for r in rows]


async def _exact_plan(session: AsyncSession, conditions: list[Any], q: Query, k: int) -> list[str]:
    """The exact filtered query's plan; it must not come from the HNSW index.

    Raises:
        RuntimeError: it does.
    """
    raw = (await session.execute(_Explain(_exact_statement(conditions, q, k)))).scalar_one()
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    if any(n.get("Index Name") == HNSW_INDEX for n in plan_nodes(plan)):
        raise RuntimeError(f"the exact filtered query uses the HNSW index: {describe(plan)}")
    return describe(plan)


async def _distances(session: AsyncSession, q: Query, product_ids: list[UUID]) -> dict[UUID, float]:
    if not product_ids:
        return {}
    rows = await session.execute(
        select(ProductImage.product_id, func.min(ProductImage.embedding.cosine_distance(q.vector)))
        .where(ProductImage.product_id.in_(product_ids), ProductImage.embedding.is_not(None))
        .group_by(ProductImage.product_id)
    )
    return {r[0]: float(r[1]) for r in rows}
