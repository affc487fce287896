"""A search's ranking, kept per query so that its pages need not rank every match again.

Ranking a text search (``ts_rank_cd``) costs PostgreSQL time per matching product: every match
is ranked before the best few are taken. So the ranking of the text match alone (the listed
products' ids and ranks, the best ``TOP`` of them) is kept in this process per query, filed
under the ``catalog`` page-version counter (``core.page_versions``) read *before* it was
ranked: every listing-visible write (a title, a status, a store's suspension) commits and then
bumps that counter, so the next search ranks again and never reads a ranking older than the
counter it is filed under (with a read replica, it is ranked where that counter's write is
seen, as ``api/page_cache.py`` reads its pages). A ranking is also dropped after ``SECONDS`` in
any case (a bump lost to a Redis outage).

A page is then read from the kept ranking on the rows as they are now (``listing_sql`` with
``ranked=True``): the filters, listing status, price and stock are always current. The ranking
is in the search's own order (rank, then id, both descending), so the rows of any stretch of it
come before every match it leaves out: a page that the stretch after the cursor fills is exactly
the page the full query answers. When it cannot fill the page (a deep page past the kept
ranking, or filters that keep too few of its products) and the ranking left matches out, the
caller runs the full query instead.
"""

from __future__ import annotations

import bisect
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from asyncpg import Record
from redis.exceptions import RedisError

from core.logging import get_logger
from core.page_versions import CATALOG, PageVersions
from db.replica import reading_from
from db.services.catalog.listing_sql import RANKING_SQL, listing_sql

log = get_logger(__name__)

# The best matches kept per query: far more than anyone pages through, few enough to rank fast.
TOP = 1000
SECONDS = 60.0
# Queries kept per process (each ranking holds up to TOP ids and ranks).
MAX_QUERIES = 256
# A page is first read from this many times its rows of the ranking after the cursor (enough
# when the filters keep most products), then from all the rest before giving up.
_WINDOW = 4


class Reader(Protocol):
    """Where the statements run: ``db.engine.Database`` (or a bare pool's stand-in for it)."""

    async def fetch(self, sql: str, *args: Any, replica: bool = False) -> list[Record]: ...


@dataclass(frozen=True, slots=True)
class Ranking:
    """The best matches of one query, in the search's order, and whether they are all of them."""

    version: int
    ids: list[UUID]
    ranks: list[float]
    complete: bool
    ranked_at: float

    def after(self, cursor: tuple[float, UUID] | None) -> int:
        """The index of the first match that comes after ``cursor`` (rank, id) in this order."""
        if cursor is None:
            return 0
        rank, pid = cursor
        # Descending (rank, id): False while a match is at or before the cursor, then True.
        return bisect.bisect_left(
            range(len(self.ids)), True, key=lambda i: (self.ranks[i], self.ids[i]) < (rank, pid)
        )


@dataclass(frozen=True, slots=True)
class RankedPage:
    """What a search page needs besides its ranking: the filters' condition names and values
    (``listing_sql``), the cursor (rank, id) and the row limit."""

    search: str
    terms: tuple[str, ...]
    conditions: tuple[str, ...]
    values: Sequence[Any]
    cursor: tuple[float, UUID] | None
    rows: int


class RankedSearches:
    """Kept rankings, one per query (search kind and terms), least recently used first out."""

    def __init__(
        self,
        versions: PageVersions,
        *,
        top: int = TOP,
        max_queries: int = MAX_QUERIES,
        seconds: float = SECONDS,
    ) -> None:
        self._versions = versions
        self._top = top
        self._max = max_queries
        self._seconds = seconds
        self._rankings: OrderedDict[tuple[str, tuple[str, ...]], Ranking] = OrderedDict()

    def __len__(self) -> int:
        return len(self._rankings)

    def kept(self, search: str, terms: tuple[str, ...]) -> Ranking | None:
        """The ranking kept for this query, whatever its version (None: none kept)."""
        return self._rankings.get((search, terms))

    async def page(self, database: Reader, request: RankedPage) -> list[Record] | None:
        """Up to ``request.rows`` rows of the search page, read from the kept ranking; None when
        that cannot answer it (the caller runs the full query): Redis cannot be read, or the
        ranking left matches out and too few of its products pass the filters after the cursor.
        """
        ranking = await self._ranking(database, request.search, request.terms)
        if ranking is None:
            return None
        start = ranking.after(request.cursor)
        ids, ranks = ranking.ids[start:], ranking.ranks[start:]
        sql = listing_sql(request.search, request.conditions, "relevance", False, ranked=True)
        window = _WINDOW * request.rows
        for size in (window, len(ids)) if window < len(ids) else (len(ids),):
            rows = await database.fetch(
                sql, ids[:size], ranks[:size], *request.values, request.rows, replica=True
            )
            if len(rows) >= request.rows:
                return rows
        return rows if ranking.complete else None

    async def _ranking(self, database: Reader, search: str, terms: tuple[str, ...]) -> Ranking | None:
        try:
            (version,), position = await self._versions.read_with_position([CATALOG])
        except (RedisError, OSError):
            log.warning("catalog version unreadable; the search ranks every match")
            return None
        key = (search, terms)
        now = time.monotonic()
        kept = self._rankings.get(key)
        if kept is not None and kept.version == version and now - kept.ranked_at < self._seconds:
            self._rankings.move_to_end(key)
            return kept
        # With a read replica: ranked where the write that moved the counter is already seen.
        with reading_from(position):
            rows = await database.fetch(RANKING_SQL[search], *terms, self._top + 1, replica=True)
        ranking = Ranking(
            version=version,
            ids=[row[0] for row in rows[: self._top]],
            ranks=[float(row[1]) for row in rows[: self._top]],
            complete=len(rows) <= self._top,
            ranked_at=now,
        )
        self._rankings[key] = ranking
        self._rankings.move_to_end(key)
        while len(self._rankings) > self._max:
            self._rankings.popitem(last=False)
        return ranking
