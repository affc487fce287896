"""Part ``filtered``: the similarity search's own code path per filter selectivity, in the database.

For each filter of the HTTP recall check (no filter first) and each of its query products (half
inside the filter, half outside), in one session per search as the API runs it:

* **search**: ``db.services.vector_search.nearest`` over ``PRODUCT_IMAGES`` with the listing's
  filter conditions and the product itself excluded, the query vector read in the database (as
  ``/products/{id}/similar`` does): round-trip time, the statements it ran (``path``: the
  nearest-rows statement, a wider pass, the exact fallback), tie-tolerant recall@k against the
  exact answer, and answers shorter than ``min(k, matching products)``.
* **plan**: whether the planner served the nearest-rows statement from the HNSW index
  (iterative scan) or from the filter columns' indexes (every matching row scored), read from
  EXPLAIN with the search's own settings.
* **exact**: the exact statement alone (every matching row scored, best per product), which is
  also the ground truth: what scoring every matching row costs at that selectivity.

Then where an iterative scan should give up: on each filter whose nearest rows the planner served
from the HNSW index, the search again at each ``SCAN_TUPLES_PER_ROW`` of ``--scan-per-row``
(``hnsw.max_scan_tuples`` = that many per row asked), for queries inside the filter and outside
it apart (outside, the filter's rows lie away from the query: the scan walks far, and what it
finds first is not the nearest), with recall, time and the statements run.

Nothing here goes through HTTP; the API may be idle or stopped.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any
from uuid import UUID

import numpy as np
from sqlalchemy import Select, select, text

from benchmarks.measurement_flow import percentile
from benchmarks.search_quality.recall import Query, listing_filters, tie_recall
from db.models import Product, ProductImage
from db.services import vector_search
from db.services.catalog.listing import filter_conditions
from db.services.catalog.similar import PRODUCT_IMAGES, first_embedding
from db.services.catalog.taxonomy import CategoryTree
from db.services.vector_search import VectorTable

HNSW_INDEX = "ix_product_images_embedding_hnsw"


def _ms(values: list[float]) -> dict[str, float | None]:
    return {"p50": percentile(values, 50), "p95": percentile(values, 95), "max": max(values, default=None)}


def _matching(conditions: list[Any], product_id: UUID) -> Select[Any]:
    return (
        select(ProductImage.id)
        .select_from(ProductImage)
        .join(Product, Product.id == ProductImage.product_id)
        .where(*conditions, Product.id != product_id)
    )


async def _exact(
    session: Any, table: VectorTable, matching: Select[Any], q: Query, k: int
) -> tuple[float, list[float]]:
    await vector_search.configure(session, k)
    _, stmt = vector_search.exact_statement(table, first_embedding(q.product_id), matching, k)
    started = time.perf_counter()
    rows = (await session.execute(stmt)).all()
    return (time.perf_counter() - started) * 1000, [float(r.distance) for r in rows]


async def _search(
    session: Any, table: VectorTable, matching: Select[Any], q: Query, k: int
) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await vector_search.nearest(
        session, table, first_embedding(q.product_id), matching=matching, limit=k
    )
    return (time.perf_counter() - started) * 1000, result


async def _uses_index(
    session: Any, table: VectorTable, index: str, matching: Select[Any], q: Query, k: int
) -> bool:
    rows = vector_search.OVERFETCH * k
    await vector_search.configure(session, rows)
    query = first_embedding(q.product_id)
    _, stmt = vector_search.nearest_statement(table, query, matching, k, rows)
    connection = await session.connection()
    sql = stmt.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True})
    plan = "\n".join(r[0] for r in (await session.execute(text(f"EXPLAIN {sql}"))).all())
    return index in plan


Indexes = dict[str, tuple[VectorTable, str]]
VECTOR: Indexes = {"vector": (PRODUCT_IMAGES, HNSW_INDEX)}


async def filtered_search(
    session_factory: Callable[[], Any],
    tree: CategoryTree,
    params: dict[str, str],
    queries: list[Query],
    k: int,
    indexes: Indexes = VECTOR,
) -> list[dict[str, Any]]:
    """The search per query under one filter through each of ``indexes`` (name: the table as the
    search reads it, the index it should use), the exact statement and the searches in turns
    whose order changes query by query: recall, time, statements run, plan; one row per index."""
    async with session_factory() as session:
        conditions = await filter_conditions(session, tree, listing_filters(params)) or []
        inside = set(await session.scalars(select(Product.id).where(*conditions)))
    exact_ms: list[float] = []
    search_ms: dict[str, list[float]] = {name: [] for name in indexes}
    recalls: dict[str, list[float]] = {name: [] for name in indexes}
    paths: dict[str, Counter[str]] = {name: Counter() for name in indexes}
    plans: dict[str, Counter[str]] = {name: Counter() for name in indexes}
    short: Counter[str] = Counter()
    for i, q in enumerate(queries):
        matching = _matching(conditions, q.product_id)
        # The first to read a query's rows warms the cache for the others: the order turns.
        steps = ["exact", *indexes]
        steps = steps[i % len(steps) :] + steps[: i % len(steps)]
        found: dict[str, list[float]] = {}
        for step in steps:
            async with session_factory() as session, session.begin():
                if step == "exact":
                    spent, truth = await _exact(session, PRODUCT_IMAGES, matching, q, k)
                    exact_ms.append(spent)
                    continue
                spent, result = await _search(session, indexes[step][0], matching, q, k)
            search_ms[step].append(spent)
            paths[step][" > ".join(result.path)] += 1
            found[step] = [n.distance for n in result.neighbours]
        for name, (table, index) in indexes.items():
            async with session_factory() as session, session.begin():
                uses = await _uses_index(session, table, index, matching, q, k)
            plans[name]["hnsw" if uses else "filter indexes"] += 1
            recalls[name].append(tie_recall(truth, found[name], k))
            short[name] += len(found[name]) < min(k, len(inside - {q.product_id}))
    return [
        {
            "index": name,
            "filter": params or "none",
            "matching_products": len(inside),
            "queries": len(queries),
            "recall_at_k": round(float(np.mean(recalls[name])), 4) if queries else None,
            "min_recall": round(min(recalls[name]), 2) if queries else None,
            "short_answers": short[name],
            "paths": dict(paths[name]),
            "nearest_rows_plan": dict(plans[name]),
            "search_ms": _ms(search_ms[name]),
            "exact_ms": _ms(exact_ms),
        }
        for name in indexes
    ]


async def scan_limits(
    session_factory: Callable[[], Any],
    tree: CategoryTree,
    params: dict[str, str],
    queries: list[Query],
    k: int,
    per_row: list[int],
) -> dict[str, Any]:
    """The search under ``params`` at each ``SCAN_TUPLES_PER_ROW`` (``hnsw.max_scan_tuples`` per
    row asked), for queries inside and outside the filter apart: recall, time, statements run."""
    async with session_factory() as session:
        conditions = await filter_conditions(session, tree, listing_filters(params)) or []
        inside = set(await session.scalars(select(Product.id).where(*conditions)))
    truth = {}
    for q in queries:
        async with session_factory() as session, session.begin():
            truth[q.product_id] = (
                await _exact(session, PRODUCT_IMAGES, _matching(conditions, q.product_id), q, k)
            )[1]
    saved = vector_search.SCAN_TUPLES_PER_ROW
    out = []
    try:
        for factor in per_row:
            vector_search.SCAN_TUPLES_PER_ROW = factor
            for where, group in (("inside", True), ("outside", False)):
                picked = [q for q in queries if (q.product_id in inside) == group]
                spent, recalls, paths = [], [], Counter[str]()
                for q in picked:
                    async with session_factory() as session, session.begin():
                        ms, result = await _search(
                            session, PRODUCT_IMAGES, _matching(conditions, q.product_id), q, k
                        )
                    spent.append(ms)
                    recalls.append(
                        tie_recall(truth[q.product_id], [n.distance for n in result.neighbours], k)
                    )
                    paths[" > ".join(result.path)] += 1
                out.append(
                    {
                        "scan_tuples_per_row": factor,
                        "max_scan_tuples": factor * vector_search.OVERFETCH * k,
                        "queries": where,
                        "count": len(picked),
                        "recall_at_k": round(float(np.mean(recalls)), 4) if recalls else None,
                        "search_ms": _ms(spent),
                        "paths": dict(paths),
                    }
                )
    finally:
        vector_search.SCAN_TUPLES_PER_ROW = saved
    return {"filter": params or "none", "per_limit": out}
