"""Filtered nearest-neighbour search over a pgvector column with an HNSW index.

The problem: pgvector 0.6 applies a query's WHERE clause *after* the HNSW index scan, and the
scan yields at most ``hnsw.ef_search`` rows (default 40). With a selective filter ("dresses
under 20,000 naira") most of those candidates are filtered away and the query returns fewer
rows than asked, or none. Every search here returns ``limit`` results whenever that many rows
match, by picking one of two strategies per query:

1. **Estimate** (one ``EXPLAIN``, nothing executed: 0.1-0.4 ms in PostgreSQL, ~0.8 ms with
   SQLAlchemy): the planner's row estimates for the rows that pass the filters (M) and for all
   rows the index holds (N). Of the options measured it is the only cheap one that covers
   every selectivity: counting the matching image rows costs 2-14 ms even when capped at
   4,000-10,000, and a capped count of products alone (0.2-0.6 ms) says nothing above its cap.
2. **Plan** (:func:`plan_search`): for ``limit`` results one needs about
   ``limit * OVERFETCH * N / M`` candidates from the index. Search exactly when that is more
   than the index can return (``EF_MAX``) or when scoring the M rows directly is cheaper than
   walking the graph for that many candidates (costs measured below); otherwise use HNSW.
3. **HNSW**: ``hnsw.ef_search`` set (transaction-local) to the number of candidates, that many
   nearest rows taken from the index (a MATERIALIZED CTE, so the planner keeps the index scan
   as written), then the filters applied and one row kept per group (a product's best image).
   If fewer than ``limit`` groups survive, retry once with ``ef_search`` sized from the pass
   rate actually observed (it captures what the estimate cannot: filters correlated with the
   query, several rows per group); if that would exceed ``EF_MAX`` or still falls short,
   search exactly.
4. **Exact**: the distance of every row that passes the filters, best per group. Ordering by
   ``min(distance)`` is something the HNSW index cannot produce, so the planner reaches the
   rows through the filter columns' own indexes (on products: the partial indexes on listed
   products; then images by product) and scores only those.

Thresholds, measured on 100k products / 105k 1280-d image vectors (HNSW m=16,
ef_construction=64; the test server's 128 MB shared_buffers; two cores; serial plans):

- HNSW: 0.6 ms at ef_search 40, 1.0 ms at 80, 3.1 ms at 200, 17 ms at 1000 (~15 us/candidate);
- exact: ~5 us per row scored, with vectors stored in their rows (migration 0009; reading
  each from TOAST cost 2.5x more): 2,000 rows (a 2% filter) 9.6 ms, 52,000 rows (50%) 310 ms.

Hence ``HNSW_CANDIDATE_COST = 3.5`` exact rows per candidate. With ``limit=20`` and 100k rows,
filters matching fewer than 4,000 rows (4%) are searched exactly (the index could not return
the 1,000+ candidates needed) and broader ones by HNSW with ``ef_search = 40 / selectivity``:
2% takes the exact path (9.6 ms, where HNSW at ef_search 1000 took 17 ms), 50% HNSW at
ef_search 80 (1.0 ms, where exact took 310 ms), both returning 20 results.

A wrong estimate costs time, never results: an overestimate leads to an HNSW pass that falls
short and then the exact search; an underestimate to an exact search over more rows than
planned. The module knows nothing of products: a caller names the table's key, vector and
group columns (:class:`VectorTable`) and gives the filtered rows as a ``Select``, so the same
decision logic serves any vector column (kNN over fit-profile vectors filtered by category
and stock would name those columns and pass its own filters).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, Row, Select, func, literal, null, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.expression import Executable
from sqlalchemy.sql.selectable import CTE, Subquery
from sqlalchemy.sql.visitors import InternalTraversal

Metric = Literal["cosine", "l2", "inner_product"]
Strategy = Literal["exact", "hnsw"]
# The query vector: values, or a scalar subquery that reads it in the database (a stored row's
# vector need not travel to the application and back).
Query = Sequence[float] | ColumnElement[Any]

# pgvector's default ef_search: asking for fewer candidates saves little and costs recall.
EF_MIN = 40
# The largest ef_search pgvector accepts: an HNSW scan never yields more rows than this.
EF_MAX = 1000
# Candidates asked for per result needed at the estimated pass rate: the passing rows among
# the index's candidates vary, and the index's candidates are themselves approximate.
OVERFETCH = 2.0
# One HNSW candidate costs as much as scoring this many rows exactly (~17 us vs ~5 us, above).
HNSW_CANDIDATE_COST = 3.5


@dataclass(frozen=True)
class VectorTable:
    """A vector column with an HNSW index, the key of its rows and the column results group by.

    ``metric`` must match the index's operator class (cosine: ``vector_cosine_ops``, l2:
    ``vector_l2_ops``, inner_product: ``vector_ip_ops``) or the index cannot serve the search.
    """

    key: InstrumentedAttribute[Any]
    vector: InstrumentedAttribute[Any]
    group: InstrumentedAttribute[Any]
    metric: Metric

    def distance(self, query: Query) -> ColumnElement[float]:
        comparator: Any = self.vector.comparator  # pgvector's comparator adds the operators
        if self.metric == "cosine":
            result: ColumnElement[float] = comparator.cosine_distance(query)
        elif self.metric == "l2":
            result = comparator.l2_distance(query)
        else:
            result = comparator.max_inner_product(query)
        return result


@dataclass(frozen=True)
class Estimate:
    """Planner estimates: rows that pass the filters, and rows the index holds."""

    matching: float
    indexed: float


@dataclass(frozen=True)
class Plan:
    strategy: Strategy
    # Candidates to ask of the index (HNSW only).
    ef_search: int = 0


def candidates_needed(limit: int, passing: float, out_of: float) -> int:
    """How many index candidates hold about ``OVERFETCH * limit`` passing rows, when ``passing``
    rows out of ``out_of`` pass."""
    return math.ceil(limit * OVERFETCH * out_of / max(passing, 1e-9))


def exact_is_cheaper(matching_rows: float, candidates: int) -> bool:
    return matching_rows <= max(candidates, EF_MIN) * HNSW_CANDIDATE_COST


def retry_ef_search(limit: int, groups_found: int, candidates: int, matching: float) -> int | None:
    """``ef_search`` for a second HNSW pass after one that returned ``groups_found`` groups from
    ``candidates`` rows, sized from the pass rate it observed; None when exact search is the
    better next step (nothing passed, the index cannot return enough, or exact is cheaper).

    The pass rate seen near the query reflects what the estimate cannot: filters correlated
    with the query, and several rows per group among the candidates.
    """
    if groups_found <= 0:
        return None
    # At least twice as wide as the pass that fell short: fewer than ``limit`` groups passed.
    wider = candidates_needed(limit, groups_found, candidates)
    if wider > EF_MAX or exact_is_cheaper(matching, wider):
        return None
    return wider


def plan_search(estimate: Estimate, limit: int) -> Plan:
    """Exact or HNSW (and how many candidates) for ``limit`` results, from the estimate."""
    if estimate.matching <= 0 or estimate.indexed <= 0:
        return Plan("exact")
    needed = candidates_needed(limit, min(estimate.matching, estimate.indexed), estimate.indexed)
    if needed > EF_MAX or exact_is_cheaper(estimate.matching, needed):
        return Plan("exact")
    return Plan("hnsw", ef_search=max(EF_MIN, needed))


@dataclass(frozen=True)
class Neighbour:
    group: Any
    distance: float
    # The caller's projected columns (see :func:`nearest`), in its order.
    row: Row[Any]


@dataclass(frozen=True)
class SearchResult:
    neighbours: list[Neighbour]
    estimate: Estimate
    # The searches run, in order, e.g. ("hnsw",) or ("hnsw", "hnsw", "exact").
    path: tuple[Strategy, ...]


Projection = Callable[[Subquery], Select[Any]]


class _Explain(Executable, ClauseElement):
    """``EXPLAIN (FORMAT JSON) <statement>``, with the statement's parameters bound as usual."""

    # Cached like any statement, keyed on the statement it explains.
    inherit_cache = True
    _traverse_internals = [("statement", InternalTraversal.dp_clauseelement)]

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement

    @property
    def _all_selected_columns(self) -> Any:
        # A cached compilation is matched to a new statement by its selected columns; the plan
        # is read by position, so the explained statement's columns serve.
        return self.statement._all_selected_columns


@compiles(_Explain, "postgresql")
def _compile_explain(element: _Explain, compiler: SQLCompiler, **kw: Any) -> str:
    return "EXPLAIN (FORMAT JSON) " + compiler.process(element.statement, **kw)


async def estimate(session: AsyncSession, table: VectorTable, matching: Select[Any]) -> Estimate:
    """Planner estimates for ``matching`` and for the whole index, from one EXPLAIN.

    Each count is an uncorrelated ``(SELECT 1 ... LIMIT 1)``, which the plan shows as a named
    InitPlan whose child carries the full row estimate (the LIMIT keeps the planner from
    choosing a parallel plan, whose per-worker estimates would be smaller).
    """
    probe = select(
        matching.with_only_columns(literal(1)).where(table.vector.is_not(None)).limit(1).scalar_subquery(),
        select(literal(1)).where(table.vector.is_not(None)).limit(1).scalar_subquery(),
    )
    raw = (await session.execute(_Explain(probe))).scalar_one()
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    initplans = [node for node in plan.get("Plans", []) if node.get("Parent Relationship") == "InitPlan"]
    if len(initplans) != 2:
        raise RuntimeError(f"unexpected estimate plan: {plan}")
    matching_rows, indexed_rows = (float(node["Plans"][0]["Plan Rows"]) for node in initplans)
    return Estimate(matching=matching_rows, indexed=indexed_rows)


def _ranked(scored: Subquery | CTE, limit: int, candidates: ColumnElement[Any]) -> Subquery:
    """One row per group, its best distance, best first."""
    best = func.min(scored.c.distance).label("distance")
    return (
        select(scored.c.group.label("group"), best, candidates.label("candidates"))
        .group_by(scored.c.group)
        .order_by(best, scored.c.group)
        .limit(limit)
        .subquery("ranked")
    )


def exact_statement(
    table: VectorTable, query: Query, matching: Select[Any], limit: int
) -> tuple[Subquery, Select[Any]]:
    # MATERIALIZED: each distance is computed as its row is read, and only (group, distance)
    # travels on. Inlined, the planner may sort the rows by group first, carrying every 5 KiB
    # vector through the sort (it spilled to disk at 4,000 rows).
    scored = (
        matching.with_only_columns(table.group.label("group"), table.distance(query).label("distance"))
        .where(table.vector.is_not(None))
        .cte("scored")
        .prefix_with("MATERIALIZED")
    )
    ranked = _ranked(scored, limit, null())
    return ranked, select(ranked)


def hnsw_statement(
    table: VectorTable, query: Query, matching: Select[Any], limit: int, ef_search: int
) -> tuple[Subquery, Select[Any]]:
    distance = table.distance(query).label("distance")
    nearest = (
        # ORDER BY the output column: the same expression for the index, the vector sent once.
        select(table.key.label("key"), distance)
        .order_by(distance)
        .limit(ef_search)
        .cte("nearest")
        .prefix_with("MATERIALIZED")
    )
    scored = (
        matching.with_only_columns(table.group.label("group"), nearest.c.distance.label("distance"))
        .where(table.key == nearest.c.key)
        .subquery("scored")
    )
    candidates = select(func.count()).select_from(nearest).scalar_subquery()
    ranked = _ranked(scored, limit, candidates)
    return ranked, select(ranked)


async def _run(
    session: AsyncSession, ranked: Subquery, default: Select[Any], project: Projection | None
) -> tuple[list[Neighbour], int | None]:
    base = project(ranked) if project is not None else default
    stmt = base.add_columns(
        ranked.c.group.label("_group"),
        ranked.c.distance.label("_distance"),
        ranked.c.candidates.label("_candidates"),
    ).order_by(ranked.c.distance, ranked.c.group)
    rows = (await session.execute(stmt)).all()
    neighbours = [
        Neighbour(group=r._mapping["_group"], distance=float(r._mapping["_distance"]), row=r) for r in rows
    ]
    candidates: int | None = rows[0]._mapping["_candidates"] if rows else None
    return neighbours, candidates


async def _configure(session: AsyncSession, ef_search: int) -> None:
    """Transaction-local settings (like SET LOCAL) for the search that follows.

    Parallel workers are turned off: for a few thousand rows their start-up costs more than
    they save (the 2% exact search took 12.6 ms with one worker, 7.2 ms without).
    """
    await session.execute(
        text(
            "SELECT set_config('max_parallel_workers_per_gather', '0', true), "
            "set_config('hnsw.ef_search', :ef, true)"
        ),
        {"ef": str(max(EF_MIN, ef_search))},
    )


async def nearest(
    session: AsyncSession,
    table: VectorTable,
    query: Query,
    *,
    matching: Select[Any],
    limit: int,
    project: Projection | None = None,
) -> SearchResult:
    """The ``limit`` groups nearest to ``query`` among the rows ``matching`` selects.

    ``query`` is a vector, or a scalar subquery returning one (which must not be NULL).

    ``matching`` is a SELECT whose FROM includes ``table`` (joined to whatever the filters
    need) and whose WHERE holds the filters; its columns are ignored. ``project``, given the
    ranked subquery (columns ``group``, ``distance``), returns the SELECT of what each result
    should carry (e.g. joined product summaries), so results come back in the same round trip.
    Results are ordered by distance (ties by group), one per group.
    """
    found = await estimate(session, table, matching)
    plan = plan_search(found, limit)
    path: list[Strategy] = []
    ef_search = plan.ef_search if plan.strategy == "hnsw" else None
    while ef_search is not None:
        path.append("hnsw")
        await _configure(session, ef_search)
        ranked, default = hnsw_statement(table, query, matching, limit, ef_search)
        neighbours, candidates = await _run(session, ranked, default, project)
        # Short, and more may match: HNSW is planned only for indexes several times larger than
        # ef_search, and fewer candidates than asked means dead rows (not yet vacuumed), not an
        # exhausted index.
        if len(neighbours) >= limit:
            return SearchResult(neighbours, found, tuple(path))
        ef_search = (
            retry_ef_search(limit, len(neighbours), candidates, found.matching)
            if candidates is not None and len(path) == 1
            else None
        )
    if not path:
        await _configure(session, EF_MIN)
    path.append("exact")
    ranked, default = exact_statement(table, query, matching, limit)
    neighbours, _ = await _run(session, ranked, default, project)
    return SearchResult(neighbours, found, tuple(path))
