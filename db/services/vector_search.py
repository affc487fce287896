"""Filtered nearest-neighbour search over a pgvector column with an HNSW index.

Every search returns ``limit`` results whenever that many rows match, one per group (a
product's best image), best first.

Without iterative scans an HNSW scan yields at most ``hnsw.ef_search`` rows (default 40) and the
WHERE clause is applied to those only, so a selective filter ("dresses under 20,000 naira") could
leave fewer rows than asked, or none. This module used to estimate the matching rows with an
EXPLAIN, size ``ef_search`` to the selectivity, retry wider when a pass came up short and search
exactly when the index could not return enough. pgvector 0.8's **iterative scans** replace all of
that: with ``hnsw.iterative_scan`` on, the index scan resumes until the rows above it (the
filters, then the LIMIT) are satisfied or ``hnsw.max_scan_tuples`` index rows have been scanned.
What remains:

1. **One statement** (:func:`nearest_statement`): the ``rows`` nearest rows that pass the filters
   (``ORDER BY distance LIMIT rows`` in a MATERIALIZED CTE), then the best row per group, by
   distance. The planner chooses per query, from its row estimates and pgvector 0.8's cost model,
   between the iterative HNSW scan and scoring the rows the filter columns' indexes select (a
   top-N sort: exact): the choice the EXPLAIN estimate used to feed, made inside the statement.
   ``plan_cache_mode = force_custom_plan`` keeps it per query, never frozen in a generic plan of
   a prepared statement. ``relaxed_order`` (better recall than ``strict_order``; rows may come
   slightly out of order) is safe: the statement orders by each group's best distance afterwards.
2. **Where a scan gives up**: ``max_scan_tuples = rows * SCAN_TUPLES_PER_ROW``. A scan that
   reaches it still hands over the matching rows it has queued, so the cap also decides how far
   from the query a scan may go to fill the page, and rows found far away are a poor answer.
   pgvector's default (a flat 20,000) let queries far from a 10% category scan for up to ~2 s
   and return the first rows of it they met (recall@10 0.861 on that filter).
3. **Groups**: a group may hold several rows (a product up to ``max_group_rows`` images), so
   ``rows = OVERFETCH * limit`` rows can hold fewer than ``limit`` groups. When every row asked
   for came back but too few groups, one more pass asks for ``limit * max_group_rows`` rows,
   which hold ``limit`` groups whenever that many rows match.
4. **Exact fallback** (:func:`exact_statement`): fewer rows than asked means the scan gave up
   (the filter's rows lie away from the query, such as shoes for a t-shirt) or few rows match;
   then the distance of every matching row decides, best per group. Ordering by
   ``min(distance)`` is nothing the HNSW index can produce, so the planner reaches the rows
   through the filter columns' own indexes and scores only those.

Measured with ``just bench-search --parts filtered`` on its 100k-product dataset (100k 1280-d
image vectors, HNSW m=16, ef_construction=64, 128 MB shared_buffers, two cores shared with other
work), limit 10, 100 queries per filter, half from inside the filter and half from outside
(run ``search_quality-20261207T183019Z``; ``20261207T181305Z`` for pgvector's default cap):

- the planner served every query of filters matching 2,978 products (3%) or more from the HNSW
  index, and every query of those matching 1,045 (1.1%) or fewer from the filter indexes;
- search time p50 / p95: no filter 8.4 / 13.8 ms, 50% 16.5 / 34.4, 10% 20.7 / 120.8 (46 of 100
  fell back to exact; the exact statement alone: 42 ms p50), 3% 8.8 / 34.6 (41 fell back),
  1.1% 4.9 / 5.8, 0.2% 2.8 / 3.4, 0.03% 2.3 / 2.7; nothing short of ``limit``;
- ``SCAN_TUPLES_PER_ROW`` 25 / 50 / 100: recall@10 of queries outside the 50% price filter 0.938
  / 0.994 / 1.000; outside the 10% category 1.000 / 0.980 / 0.956 (p50 61 / 83 / 156 ms); inside
  the 3% category 0.980 / 0.996 / 0.998: a low cap costs broad filters recall, a high one
  narrow filters far from the query; 50 is the best of the three on both.

The module knows nothing of products: a caller names the table's key, vector and group columns
(:class:`VectorTable`) and gives the filtered rows as a ``Select``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, Row, Select, cast, func, null, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.selectable import CTE, Subquery

Metric = Literal["cosine", "l2", "inner_product"]
# "nearest": the statement over the nearest matching rows; "exact": every matching row scored.
Strategy = Literal["nearest", "exact"]
# The query vector: values, or a scalar subquery that reads it in the database (a stored row's
# vector need not travel to the application and back).
Query = Sequence[float] | ColumnElement[Any]

# The smallest candidate list (hnsw.ef_search) a search starts from. With iterative scans the
# scan goes on past it, but the first candidates decide where it looks: on the suite's 100k
# catalog, recall@10 of unfiltered similar items (50 queries against exact search) was 0.938 at
# pgvector's default of 40, 0.958 at 80 and 0.978 at 100 and 128. The per-filter figures in the
# module docstring were measured at 40.
EF_MIN = 100
# The largest ef_search pgvector accepts (iterative scans continue past it as needed).
EF_MAX = 1000
# Rows asked for per result in the first pass: most groups have one row near the query.
OVERFETCH = 2
# hnsw.max_scan_tuples per row asked (pgvector's default is a flat 20,000): past it a scan hands
# over the matching rows it has, and a page it cannot fill is searched exactly. Chosen by
# measurement (see the module docstring).
SCAN_TUPLES_PER_ROW = 50


@dataclass(frozen=True)
class VectorTable:
    """A vector column with an HNSW index, the key of its rows and the column results group by.

    ``metric`` must match the index's operator class (cosine: ``vector_cosine_ops``, l2:
    ``vector_l2_ops``, inner_product: ``vector_ip_ops``) or the index cannot serve the search.
    ``max_group_rows``: the most rows one group can hold (a product's images). ``indexed_as``:
    the type the HNSW index stores the vectors as when it is an expression index on a cast
    (e.g. ``HALFVEC(1280)`` for ``(vector::halfvec(1280)) halfvec_cosine_ops``); the index
    orders by that distance, results are scored at the column's own precision.
    """

    key: InstrumentedAttribute[Any]
    vector: InstrumentedAttribute[Any]
    group: InstrumentedAttribute[Any]
    metric: Metric
    max_group_rows: int = 1
    indexed_as: Any = None

    def distance(self, query: Query) -> ColumnElement[float]:
        return self._distance(self.vector, query)

    def index_distance(self, query: Query) -> ColumnElement[float]:
        """The distance the HNSW index orders by."""
        if self.indexed_as is None:
            return self.distance(query)
        return self._distance(cast(self.vector, self.indexed_as), cast(query, self.indexed_as))

    def _distance(self, vector: Any, query: Any) -> ColumnElement[float]:
        comparator: Any = vector.comparator  # pgvector's comparator adds the operators
        if self.metric == "cosine":
            result: ColumnElement[float] = comparator.cosine_distance(query)
        elif self.metric == "l2":
            result = comparator.l2_distance(query)
        else:
            result = comparator.max_inner_product(query)
        return result


@dataclass(frozen=True)
class Neighbour:
    group: Any
    distance: float
    # The caller's projected columns (see :func:`nearest`), in its order.
    row: Row[Any]


@dataclass(frozen=True)
class SearchResult:
    neighbours: list[Neighbour]
    # The statements run, in order, e.g. ("nearest",) or ("nearest", "exact").
    path: tuple[Strategy, ...]


Projection = Callable[[Subquery], Select[Any]]


def _ranked(scored: Subquery | CTE, limit: int, rows: ColumnElement[Any]) -> Subquery:
    """One row per group, its best distance, best first."""
    best = func.min(scored.c.distance).label("distance")
    return (
        select(scored.c.group.label("group"), best, rows.label("rows"))
        .group_by(scored.c.group)
        .order_by(best, scored.c.group)
        .limit(limit)
        .subquery("ranked")
    )


def nearest_statement(
    table: VectorTable, query: Query, matching: Select[Any], limit: int, rows: int
) -> tuple[Subquery, Select[Any]]:
    distance = table.distance(query).label("distance")
    # ORDER BY the output column when the index orders by it: the vector is then sent once.
    order = distance if table.indexed_as is None else table.index_distance(query)
    nearest = (
        matching.with_only_columns(table.group.label("group"), distance)
        .where(table.vector.is_not(None))
        .order_by(order)
        .limit(rows)
        .cte("nearest")
        .prefix_with("MATERIALIZED")
    )
    found = select(func.count()).select_from(nearest).scalar_subquery()
    ranked = _ranked(nearest, limit, found)
    return ranked, select(ranked)


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


async def _run(
    session: AsyncSession, ranked: Subquery, default: Select[Any], project: Projection | None
) -> tuple[list[Neighbour], int]:
    """The neighbours, and how many rows the nearest-rows statement found (0 for exact)."""
    base = project(ranked) if project is not None else default
    stmt = base.add_columns(
        ranked.c.group.label("_group"),
        ranked.c.distance.label("_distance"),
        ranked.c.rows.label("_rows"),
    ).order_by(ranked.c.distance, ranked.c.group)
    rows = (await session.execute(stmt)).all()
    neighbours = [
        Neighbour(group=r._mapping["_group"], distance=float(r._mapping["_distance"]), row=r) for r in rows
    ]
    return neighbours, int(rows[0]._mapping["_rows"] or 0) if rows else 0


async def configure(session: AsyncSession, rows: int) -> None:
    """Transaction-local settings (like SET LOCAL) for the searches that follow.

    Parallel workers are turned off: for a few thousand rows their start-up costs more than
    they save (an exact search over 2% of 100k rows took 12.6 ms with one worker, 7.2 without).
    """
    await session.execute(
        text(
            "SELECT set_config('max_parallel_workers_per_gather', '0', true), "
            "set_config('plan_cache_mode', 'force_custom_plan', true), "
            "set_config('hnsw.iterative_scan', 'relaxed_order', true), "
            "set_config('hnsw.max_scan_tuples', :max_scan, true), "
            "set_config('hnsw.ef_search', :ef, true)"
        ),
        dict(zip(("max_scan", "ef"), scan_settings(rows), strict=True)),
    )


def scan_settings(rows: int) -> tuple[str, str]:
    """``hnsw.max_scan_tuples`` and ``hnsw.ef_search`` (as text) for a pass asking for ``rows``."""
    return str(rows * SCAN_TUPLES_PER_ROW), str(min(EF_MAX, max(EF_MIN, rows)))


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
    path: list[Strategy] = []
    step: tuple[Strategy, int] | None = ("nearest", OVERFETCH * limit)
    neighbours: list[Neighbour] = []
    while step is not None:
        strategy, rows = step
        path.append(strategy)
        if strategy == "exact":
            ranked, default = exact_statement(table, query, matching, limit)
            neighbours, _ = await _run(session, ranked, default, project)
            break
        await configure(session, rows)
        ranked, default = nearest_statement(table, query, matching, limit, rows)
        neighbours, found = await _run(session, ranked, default, project)
        step = next_pass(path, len(neighbours), found, rows, limit, table.max_group_rows)
    return SearchResult(neighbours, tuple(path))


def next_pass(
    path: Sequence[Strategy], groups: int, found: int, rows: int, limit: int, max_group_rows: int
) -> tuple[Strategy, int] | None:
    """After a nearest-rows pass that asked for ``rows`` rows, found ``found`` and ``groups``
    groups: the next statement and its row count, or None when the page is full."""
    if groups >= limit:
        return None
    # Every row asked for came back, yet too few groups: a wider pass is bound to hold enough.
    wider = limit * max_group_rows
    if found < rows or wider <= rows or len(path) > 1:
        return "exact", rows
    return "nearest", wider
