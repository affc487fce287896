"""What a search page costs PostgreSQL, ranking every match or reading a kept ranking
(db/services/catalog/ranked_search.py), by EXPLAIN ANALYZE on the current database, e.g.:

    just seed --products 20000 --pictures 0 && python -m benchmarks.explain_search

Per query: how many listed products match (and how many by title alone), then the median
execution time of

- ``full``: the full query (every match ranked, then the best 21), what a page costs without a
  kept ranking and what the fallback costs;
- ``rank``: ranking the text match alone, the best 1,000 (a search whose ranking is not kept, or
  whose catalog version moved);
- ``kept``: a first page read from the kept ranking (its first 84 ids), what most searches cost;
- ``kept+f``: the same with a filter (in stock, a price ceiling) read from all 1,000 kept ids.

Times are the server's own (no network, no driver); on a loaded machine compare them with each
other only.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
from typing import Any

from core.settings import get_settings
from db.engine import create_database
from db.services.catalog.listing import ListingFilters, listing_query
from db.services.catalog.listing_sql import RANKING_SQL, listing_sql, search_terms
from db.services.catalog.ranked_search import TOP
from db.services.catalog.taxonomy import load_category_tree

QUERIES = ("dress", "cotton", "shirt", "floral maxi dress", "pleated ski", "linen trousers", "ankara")
RUNS = 7
LIMIT = 20


async def _median_ms(conn: Any, sql: str, args: list[Any]) -> float:
    times = []
    for _ in range(RUNS):
        plan = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *args)
        plan = json.loads(plan) if isinstance(plan, str) else plan
        times.append(plan[0]["Execution Time"])
    return float(statistics.median(times))


async def _one(conn: Any, tree: Any, q: str) -> dict[str, Any]:
    terms = search_terms(q)
    assert terms is not None
    search, values = terms[0], list(terms[1])
    counted = f"SELECT count(*) FROM ({RANKING_SQL[search]}) m"  # noqa: S608  # our own text
    matches = await conn.fetchval(counted, *values, 1_000_000)
    # The same query on titles alone: what a title-only candidate set would still rank.
    titles = counted.replace("p.search_vector @@", "to_tsvector('english', p.title) @@")
    by_title = await conn.fetchval(titles, *values, 1_000_000)
    full = listing_query(tree, ListingFilters(q=q), limit=LIMIT, cursor=None)
    assert full is not None
    ranking = await conn.fetch(RANKING_SQL[search], *values, TOP)
    ids, ranks = [r[0] for r in ranking], [float(r[1]) for r in ranking]
    window = 4 * (LIMIT + 1)
    kept = listing_sql(search, (), "relevance", False, ranked=True)
    filtered = listing_sql(search, ("max_price", "in_stock"), "relevance", False, ranked=True)
    return {
        "q": q,
        "matches": matches,
        "title matches": by_title,
        "full": await _median_ms(conn, full.sql, full.args),
        "rank": await _median_ms(conn, RANKING_SQL[search], [*values, TOP + 1]),
        "kept": await _median_ms(conn, kept, [ids[:window], ranks[:window], LIMIT + 1]),
        "kept+f": await _median_ms(conn, filtered, [ids, ranks, 2_000_000, LIMIT + 1]),
    }


async def main() -> int:
    database = create_database(get_settings(), "cli")
    try:
        async with database.session_maker() as session:
            tree = await load_category_tree(session)
            driver: Any = (await (await session.connection()).get_raw_connection()).driver_connection
            listed = await driver.fetchval("SELECT count(*) FROM products WHERE is_listed")
            print(f"{listed} listed products; median of {RUNS} EXPLAIN ANALYZE runs, ms\n")
            header = ("q", "matches", "title matches", "full", "rank", "kept", "kept+f")
            print(" | ".join(header))
            print(" | ".join("---" for _ in header))
            for q in QUERIES:
                row = await _one(driver, tree, q)
                cells = (f"{row[k]:.2f}" if isinstance(row[k], float) else str(row[k]) for k in header)
                print(" | ".join(cells))
    finally:
        await database.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
