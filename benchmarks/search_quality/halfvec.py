"""Part ``halfvec``: the product image embeddings indexed as ``halfvec(1280)`` next to the
``vector(1280)`` index, on the same 100k rows of the similarity dataset.

1. **Index**: an expression index ``(embedding::halfvec(1280)) halfvec_cosine_ops`` with the
   vector index's parameters (m=16, ef_construction=64) is built on the dataset's
   ``product_images`` (``maintenance_work_mem`` 2GB, two parallel workers, as the dataset build
   builds the vector index), or reused when it exists; build time and both indexes' sizes.
   The vectors stay in the table at full precision; only the index holds half-precision copies.
   The index stays in the dataset's database for later runs (no query of the other parts can use
   it); ``DROP INDEX ix_product_images_embedding_halfvec`` removes it.
2. **Rounding alone**: recall@k of the exact ranking by half-precision distance (every row
   scored) against the full-precision exact ranking, for the in-database recall check's queries.
3. **Recall and latency in the database**, for the in-database recall check's queries at each
   ``hnsw.ef_search``: ``ORDER BY <distance> LIMIT k`` served by each index (plans checked),
   the two alternating query by query so that load from other programs hits both alike.
   Recall@k is counted against the exact top-k at full precision (a sequential scan), with the
   same tie rule as the recall part; the half-precision search reports the full-precision
   distance of what it found, as the application would score it. Query time is EXPLAIN
   (ANALYZE, TIMING OFF)'s execution time and the round trip. Each index is one HNSW build: which
   few vectors a build leaves hard to reach (see the recall part's "lost") differs from build to
   build, so a difference of a few queries is the builds', not the precision's.
4. **The search's own code path** (``filtered.filtered_search``, iterative scans) on each filter
   of the HTTP recall check, through each index in turns query by query.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from typing import Any

import asyncpg
import numpy as np
from pgvector.sqlalchemy import HALFVEC

from benchmarks.measurement_flow import percentile
from benchmarks.search_quality import filtered
from benchmarks.search_quality.recall import Query, plan_nodes, tie_recall
from benchmarks.search_quality.vectors import HNSW_INDEX
from db.models.catalog import EMBEDDING_DIMENSIONS
from db.services.catalog.similar import PRODUCT_IMAGES
from db.services.catalog.taxonomy import CategoryTree

HALFVEC_INDEX = "ix_product_images_embedding_halfvec"
HALFVEC_TABLE = dataclasses.replace(PRODUCT_IMAGES, indexed_as=HALFVEC(EMBEDDING_DIMENSIONS))
_HALF = f"embedding::halfvec({EMBEDDING_DIMENSIONS})"
_ORDER = {"vector": "embedding <=> $1", "halfvec": f"{_HALF} <=> $1::halfvec({EMBEDDING_DIMENSIONS})"}
_INDEX = {"vector": HNSW_INDEX, "halfvec": HALFVEC_INDEX}
_TOP_K = (
    "SELECT id, embedding <=> $1 AS distance FROM product_images WHERE id <> $2 ORDER BY {order} LIMIT $3"
)


def _mb(size: int) -> float:
    return round(size / 2**20, 1)


def _stats(values: list[float]) -> dict[str, float | None]:
    return {"p50": percentile(values, 50), "p95": percentile(values, 95)}


async def ensure_index(conn: asyncpg.Connection) -> dict[str, Any]:
    """The halfvec expression index (built unless present) and the sizes of both indexes."""
    exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", HALFVEC_INDEX)
    seconds = None
    if not exists:
        await conn.execute("SET maintenance_work_mem = '2GB'")
        await conn.execute("SET max_parallel_maintenance_workers = 2")
        started = time.perf_counter()
        await conn.execute(
            f"CREATE INDEX {HALFVEC_INDEX} ON product_images USING hnsw (({_HALF}) halfvec_cosine_ops)"
            " WITH (m = 16, ef_construction = 64)"
        )
        seconds = round(time.perf_counter() - started, 1)
        await conn.execute("RESET maintenance_work_mem")
        await conn.execute("RESET max_parallel_maintenance_workers")
        await conn.execute("ANALYZE product_images")
    sizes = {
        kind: _mb(await conn.fetchval("SELECT pg_relation_size($1::regclass)", index))
        for kind, index in _INDEX.items()
    }
    return {"index": HALFVEC_INDEX, "build_seconds": seconds, "reused": bool(exists), "index_mb": sizes}


async def _exact(conn: asyncpg.Connection, q: Query, k: int, kind: str = "vector") -> list[float]:
    """The exact top-k by ``kind``'s distance (every row scored), full-precision distances."""
    async with conn.transaction():
        await conn.execute("SET LOCAL enable_indexscan = off")
        rows = await conn.fetch(_TOP_K.format(order=_ORDER[kind]), q.vector, q.image_id, k)
    return [float(r["distance"]) for r in rows]


async def rounding_recall(conn: asyncpg.Connection, queries: list[Query], k: int) -> dict[str, Any]:
    """Recall@k of the exact ranking by half-precision distance against the full-precision one:
    what the rounding alone costs, with no index involved."""
    recalls = [tie_recall(await _exact(conn, q, k), await _exact(conn, q, k, "halfvec"), k) for q in queries]
    return {
        "recall_at_k": round(float(np.mean(recalls)), 4),
        "min_recall": round(min(recalls), 2),
        "queries_below_0_9": sum(r < 0.9 for r in recalls),
    }


async def _timed(
    conn: asyncpg.Connection, kind: str, q: Query, k: int, ef: int
) -> tuple[list[float], float, float]:
    """Distances found, round trip ms, execution ms (EXPLAIN ANALYZE).

    Raises:
        RuntimeError: the statement is not served by ``kind``'s index.
    """
    sql = _TOP_K.format(order=_ORDER[kind])
    async with conn.transaction():
        await conn.execute(f"SET LOCAL hnsw.ef_search = {ef}")
        started = time.perf_counter()
        rows = await conn.fetch(sql, q.vector, q.image_id, k)
        round_trip = (time.perf_counter() - started) * 1000
        raw = await conn.fetchval(
            f"EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) {sql}", q.vector, q.image_id, k
        )
    analysed = (json.loads(raw) if isinstance(raw, str) else raw)[0]
    if not any(n.get("Index Name") == _INDEX[kind] for n in plan_nodes(analysed["Plan"])):
        raise RuntimeError(f"the {kind} query is not served by {_INDEX[kind]}")
    return [float(r["distance"]) for r in rows], round_trip, float(analysed["Execution Time"])


async def index_recall(
    conn: asyncpg.Connection, queries: list[Query], ef_values: list[int], k: int
) -> list[dict[str, Any]]:
    """Recall@k and query times of both indexes at each ef_search, against exact search."""
    truth = [await _exact(conn, q, k) for q in queries]
    for q in queries:  # warm both indexes at the widest search before timing
        for kind in _ORDER:
            await _timed(conn, kind, q, k, max(ef_values))
    out = []
    for ef in ef_values:
        found: dict[str, dict[str, list[float]]] = {
            kind: {"recall": [], "rt": [], "db": []} for kind in _ORDER
        }
        for i, (q, exact) in enumerate(zip(queries, truth, strict=True)):
            for kind in list(_ORDER)[:: 1 if i % 2 == 0 else -1]:
                distances, round_trip, execution = await _timed(conn, kind, q, k, ef)
                found[kind]["recall"].append(tie_recall(exact, distances, k))
                found[kind]["rt"].append(round(round_trip, 3))
                found[kind]["db"].append(round(execution, 3))
        for kind, values in found.items():
            out.append(
                {
                    "index": kind,
                    "ef_search": ef,
                    "recall_at_k": round(float(np.mean(values["recall"])), 4),
                    "min_recall": round(min(values["recall"]), 2),
                    "queries_below_0_9": sum(r < 0.9 for r in values["recall"]),
                    "db_ms": _stats(values["db"]),
                    "round_trip_ms": _stats(values["rt"]),
                }
            )
    return out


async def service_path(
    session_factory: Callable[[], Any],
    tree: CategoryTree,
    filters: list[tuple[dict[str, str], list[Query]]],
    k: int,
) -> list[dict[str, Any]]:
    """The search's own code path per filter through each index, in turns query by query."""
    indexes = {"vector": (PRODUCT_IMAGES, HNSW_INDEX), "halfvec": (HALFVEC_TABLE, HALFVEC_INDEX)}
    out = []
    for params, queries in filters:
        out += await filtered.filtered_search(session_factory, tree, params, queries, k, indexes)
    return out
