"""The 100k-row part of the dimension benchmark: table and HNSW index size, index build time and
search latency of 1280-d vectors against projected ones, side by side on the same machine.

The vectors are the 100k image embeddings of ``bench-search``'s similarity dataset (2,000 real
photo embeddings plus look-alike noisy copies; built if missing, see
``benchmarks.search_quality.dataset``), read once. They serve sizes and timings only: noisy
copies say nothing about a projection's ranking quality (that part uses real photos only).

Each variant gets its own table in a scratch database of the benchmark's PostgreSQL, laid out
alike: ``(id uuid, product_id uuid, category_id uuid, embedding vector(d))`` with
``toast_tuple_target = 8160`` (vectors stay in their rows, as migration 0009 sets for
``product_images``), a btree on ``category_id`` and the HNSW index as the model declares it
(m=16, ef_construction=64, vector_cosine_ops; maintenance_work_mem 2GB, two parallel workers).
The projected tables hold each row's vector passed through the projection fitted on real photos.

Timed, per query, every variant in turn (so load from other programs hits all of them alike),
after one untimed warm-up pass, as client round trips over the Unix socket:

* **exact filtered**: what the similarity search's exact path does (``vector_search``): the
  distance of every row in a set of categories holding about 2% (then 10%) of the rows, best
  per product, top ``limit``; parallel workers off. Its plan is checked not to touch the HNSW
  index.
* **HNSW**: ``ORDER BY embedding <=> q LIMIT limit`` at ``hnsw.ef_search = 40`` (the plan
  checked to be the index scan), with its recall against exact search in the same space
  (numpy over all 100k vectors): the index's health at that dimension, nothing more.
"""

from __future__ import annotations

import json
import time
from typing import Any
from uuid import UUID

import asyncpg
import numpy as np

from benchmarks.embedding_projection import Projection, pgvector_bytes, top_k
from benchmarks.measurement_flow import percentile
from benchmarks.search_quality.recall import describe, plan_nodes
from benchmarks.search_quality.stack import SearchStack, connect

DATABASE = "embedding_dimension"
EF_SEARCH = 40
SHARES = (0.02, 0.10)
PAGE = 8192


def _ms(values: list[float]) -> dict[str, float | None]:
    return {
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "mean": round(sum(values) / len(values), 3) if values else None,
    }


def _mb(size: int) -> float:
    return round(size / 2**20, 1)


def pick_categories(categories: np.ndarray, share: float, seed: int) -> list[UUID]:
    """Categories, in a seeded random order, added until they hold at least ``share`` of the rows
    (the set whose share comes closest, counting the one that crosses or not)."""
    values, counts = np.unique(categories, return_counts=True)
    order = np.random.default_rng([seed, round(share * 1000)]).permutation(len(values))
    chosen: list[UUID] = []
    held = 0
    for i in order:
        crossing = held + int(counts[i])
        if crossing / len(categories) >= share:
            if abs(crossing / len(categories) - share) < abs(held / len(categories) - share) or not chosen:
                chosen.append(values[i])
            break
        chosen.append(values[i])
        held = crossing
    return chosen


async def read_dataset(url: str) -> dict[str, Any]:
    """Every embedded image row of the dataset (ids, products, categories, vectors) and the live
    size of its ``product_images`` table and HNSW index."""
    async with connect(url) as conn:
        rows = await conn.fetch(
            "SELECT i.id, i.product_id, p.category_id, i.embedding FROM product_images i"
            " JOIN products p ON p.id = i.product_id WHERE i.embedding IS NOT NULL ORDER BY i.id"
        )
        sizes = await conn.fetchrow(
            "SELECT pg_table_size('product_images') AS table_bytes,"
            " pg_relation_size('ix_product_images_embedding_hnsw') AS hnsw_bytes,"
            " (SELECT avg(pg_column_size(i.*) - pg_column_size(i.embedding))"
            "   FROM product_images i TABLESAMPLE SYSTEM (2)) AS other_columns_bytes"
        )
    return {
        "ids": [r["id"] for r in rows],
        "products": [r["product_id"] for r in rows],
        "categories": np.array([r["category_id"] for r in rows], dtype=object),
        "vectors": np.stack([r["embedding"] for r in rows]).astype(np.float32),
        "sizes": dict(sizes) if sizes is not None else {},
    }


def estimate_product_images(rows: int, other_columns: float, dims: int) -> dict[str, Any]:
    """``product_images``' heap with a ``vector(dims)`` column instead (an estimate: whole rows
    per 8 KiB page, 24-byte page header, 4-byte line pointers, 8-byte alignment)."""
    row = int(np.ceil((other_columns + pgvector_bytes(dims)) / 8) * 8) + 4
    per_page = max(1, (PAGE - 24) // row)
    return {"rows_per_page": per_page, "table_mb": _mb(int(np.ceil(rows / per_page)) * PAGE)}


async def _build(
    conn: asyncpg.Connection, table: str, dims: int, records: list[tuple[Any, ...]]
) -> dict[str, Any]:
    await conn.execute(f"DROP TABLE IF EXISTS {table}")
    await conn.execute(
        f"CREATE TABLE {table} (id uuid PRIMARY KEY, product_id uuid NOT NULL, category_id uuid NOT NULL,"
        f" embedding vector({dims})) WITH (toast_tuple_target = 8160)"
    )
    started = time.perf_counter()
    await conn.copy_records_to_table(
        table, records=records, columns=["id", "product_id", "category_id", "embedding"]
    )
    copied = time.perf_counter()
    await conn.execute(f"CREATE INDEX {table}_category ON {table} (category_id)")
    await conn.execute(f"VACUUM ANALYZE {table}")
    await conn.execute("SET maintenance_work_mem = '2GB'")
    await conn.execute("SET max_parallel_maintenance_workers = 2")
    indexing = time.perf_counter()
    await conn.execute(
        f"CREATE INDEX {table}_hnsw ON {table} USING hnsw (embedding vector_cosine_ops)"
        " WITH (m = 16, ef_construction = 64)"
    )
    built = time.perf_counter()
    await conn.execute("RESET maintenance_work_mem")
    await conn.execute("RESET max_parallel_maintenance_workers")
    sizes = await conn.fetchrow(
        f"SELECT pg_table_size('{table}') AS table_bytes, pg_relation_size('{table}_hnsw') AS hnsw_bytes,"
        f" pg_relation_size('{table}_category') AS category_index_bytes"
    )
    if sizes is None:
        raise RuntimeError(f"no sizes for {table}")
    rows = len(records)
    return {
        "rows": rows,
        "copy_seconds": round(copied - started, 1),
        "hnsw_build_seconds": round(built - indexing, 1),
        "table_mb": _mb(sizes["table_bytes"]),
        "hnsw_mb": _mb(sizes["hnsw_bytes"]),
        "hnsw_bytes_per_row": round(sizes["hnsw_bytes"] / rows),
        "table_bytes_per_row": round(sizes["table_bytes"] / rows),
        "category_index_mb": _mb(sizes["category_index_bytes"]),
    }


def _exact_sql(table: str) -> str:
    return (
        f"WITH scored AS MATERIALIZED (SELECT product_id, embedding <=> $1 AS distance FROM {table}"  # noqa: S608
        " WHERE category_id = ANY($2) AND id <> $3)"
        " SELECT product_id, min(distance) AS distance FROM scored GROUP BY product_id"
        " ORDER BY distance, product_id LIMIT $4"
    )


def _hnsw_sql(table: str) -> str:
    return f"SELECT id FROM {table} WHERE id <> $2 ORDER BY embedding <=> $1 LIMIT $3"  # noqa: S608


async def _plan(conn: asyncpg.Connection, sql: str, *args: Any) -> dict[str, Any]:
    raw = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
    plan: dict[str, Any] = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    return plan


def _uses(plan: dict[str, Any], index: str) -> bool:
    return any(n.get("Index Name") == index for n in plan_nodes(plan))


async def _check_plans(
    conn: asyncpg.Connection, table: str, q: np.ndarray, qid: UUID, filters: dict[float, list[UUID]]
) -> dict[str, Any]:
    """The plans (node lists) of the exact query per filter and of the HNSW query, and how many
    heap pages hold each filter's rows (what an exact search reads).

    Raises:
        RuntimeError: the exact query touches the HNSW index, or the HNSW one does not use it.
    """
    plans: dict[str, Any] = {}
    async with conn.transaction():
        await conn.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        for share, cats in filters.items():
            exact = await _plan(conn, _exact_sql(table), q, cats, qid, 20)
            if _uses(exact, f"{table}_hnsw"):
                raise RuntimeError(f"the exact query on {table} uses the HNSW index: {describe(exact)}")
            plans[f"exact_{round(share * 100)}%"] = describe(exact)
            plans[f"exact_{round(share * 100)}%_heap_pages"] = await conn.fetchval(
                f"SELECT count(DISTINCT (ctid::text::point)[0]) FROM {table} WHERE category_id = ANY($1)",  # noqa: S608
                cats,
            )
        hnsw = await _plan(conn, _hnsw_sql(table), q, qid, 20)
    if not _uses(hnsw, f"{table}_hnsw"):
        raise RuntimeError(f"the HNSW query on {table} does not use the index: {describe(hnsw)}")
    plans["hnsw"] = describe(hnsw)
    return plans


async def _timed(
    conn: asyncpg.Connection, sql: str, *args: Any, ef: int | None = None
) -> tuple[float, list[Any]]:
    async with conn.transaction():
        await conn.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        if ef is not None:
            await conn.execute(f"SET LOCAL hnsw.ef_search = {ef}")
        started = time.perf_counter()
        rows = await conn.fetch(sql, *args)
        return round((time.perf_counter() - started) * 1000, 3), rows


async def measure(
    stack: SearchStack,
    dataset: str,
    projections: list[Projection],
    *,
    queries: int,
    limit: int,
    seed: int,
    keep: bool = False,
) -> dict[str, Any]:
    """Sizes, build times and latencies of the 1280-d vectors and of each projection's."""
    data = await read_dataset(stack.postgres.url(dataset))
    full: np.ndarray = data["vectors"]
    variants: list[tuple[str, Projection | None]] = [("full", None)] + [
        (f"{p.method}{p.dims}", p) for p in projections
    ]
    spaces = {name: (full if p is None else p.apply(full)) for name, p in variants}
    filters = {share: pick_categories(data["categories"], share, seed) for share in SHARES}
    chosen = np.random.default_rng([seed, 9]).choice(len(full), size=min(queries, len(full)), replace=False)
    stack.postgres.drop_database(DATABASE)
    stack.postgres.ensure_database(DATABASE)
    stack.postgres.psql("CREATE EXTENSION IF NOT EXISTS vector", DATABASE)
    results: dict[str, dict[str, Any]] = {}
    try:
        async with connect(stack.postgres.url(DATABASE)) as conn:
            for name, projection in variants:
                dims = full.shape[1] if projection is None else projection.dims
                records = list(
                    zip(data["ids"], data["products"], data["categories"], spaces[name], strict=True)
                )
                results[name] = {
                    "method": "none" if projection is None else projection.method,
                    "dims": dims,
                    "bytes_per_vector": pgvector_bytes(dims),
                } | await _build(conn, f"images_{name}", dims, records)
                del records
                first = int(chosen[0])
                results[name]["plans"] = await _check_plans(
                    conn, f"images_{name}", spaces[name][first], data["ids"][first], filters
                )
            timings = await _time_queries(conn, data, spaces, filters, chosen, limit)
    finally:
        if not keep:
            stack.postgres.drop_database(DATABASE)
    for name, timing in timings.items():
        results[name] |= timing
    rows = len(full)
    other = float(data["sizes"].get("other_columns_bytes") or 0)
    return {
        "dataset": dataset,
        "rows": rows,
        "queries": len(chosen),
        "limit": limit,
        "filters": {
            f"{round(share * 100)}%": {
                "categories": len(cats),
                "rows": int(np.isin(data["categories"], np.array(cats, dtype=object)).sum()),
            }
            for share, cats in filters.items()
        },
        "product_images_now": {
            "table_mb": _mb(int(data["sizes"].get("table_bytes") or 0)),
            "hnsw_mb": _mb(int(data["sizes"].get("hnsw_bytes") or 0)),
            "other_columns_bytes_per_row": round(other),
        },
        "product_images_estimate": {
            str(r["dims"]): estimate_product_images(rows, other, r["dims"]) for r in results.values()
        },
        "variants": results,
    }


async def _time_queries(
    conn: asyncpg.Connection,
    data: dict[str, Any],
    spaces: dict[str, np.ndarray],
    filters: dict[float, list[UUID]],
    chosen: np.ndarray,
    limit: int,
) -> dict[str, dict[str, Any]]:
    ids: list[UUID] = data["ids"]
    exact_ms: dict[tuple[str, float], list[float]] = {}
    hnsw_ms: dict[str, list[float]] = {}
    hnsw_recall: dict[str, list[float]] = {}
    for timed in (False, True):  # the first pass warms the caches
        for index in chosen:
            qid = ids[int(index)]
            for name, space in spaces.items():
                q = space[int(index)]
                for share, cats in filters.items():
                    ms, _ = await _timed(conn, _exact_sql(f"images_{name}"), q, cats, qid, limit)
                    if timed:
                        exact_ms.setdefault((name, share), []).append(ms)
                ms, rows = await _timed(conn, _hnsw_sql(f"images_{name}"), q, qid, limit, ef=EF_SEARCH)
                if timed:
                    hnsw_ms.setdefault(name, []).append(ms)
                    truth = top_k(space, limit + 1, queries=q[None, :])[0]
                    want = {ids[int(t)] for t in [t for t in truth if int(t) != int(index)][:limit]}
                    hnsw_recall.setdefault(name, []).append(len(want & {r["id"] for r in rows}) / limit)
    return {
        name: {
            "exact_filtered_ms": {
                f"{round(share * 100)}%": _ms(exact_ms[(name, share)]) for share in filters
            },
            "hnsw_ms": {"ef_search": EF_SEARCH} | _ms(hnsw_ms[name]),
            f"hnsw_recall_at_{limit}_vs_exact_same_space": round(float(np.mean(hnsw_recall[name])), 4),
        }
        for name in spaces
    }
