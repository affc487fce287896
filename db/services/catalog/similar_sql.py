"""The text of similar items' and search by photo's statements, written once per shape.

Both rank listed products by the cosine distance of their images' embeddings to a query (a
product's best image counts), under the listing's filters (``listing_sql.CONDITIONS``, so a
filter means the same on every search). The statements run on the pool's connection with ``$n``
parameters (``db.services.catalog.similar``), their rows going straight into the response: no
statement objects built and compiled per request, no session.

A shape is (the query, the filters' names). The query is ``$1``: a product id, whose first
embedded photo is read inside each statement by one index lookup (the vector never travels to
the application and back), or a vector as text. The filters' values follow from ``$2``, then the
statement's own (rows, limit). How the passes are chosen (the nearest rows, a wider pass, the
exact statement) and why the settings are what they are is said in ``similar``.

Pure: text in, text out.
"""

from __future__ import annotations

import functools
from typing import Literal

from db.services.catalog.listing_sql import CONDITIONS, SUMMARY_SQL

Query = Literal["product", "vector"]

# The product's first image with an embedding (lowest position): the query of similar items.
_FIRST_EMBEDDING = (
    "(SELECT fi.embedding FROM product_images fi"
    " WHERE fi.product_id = $1 AND fi.embedding_status = 'ready' AND fi.embedding IS NOT NULL"
    " ORDER BY fi.position, fi.id LIMIT 1)"
)
_QUERY: dict[Query, str] = {"product": _FIRST_EMBEDDING, "vector": "CAST($1 AS vector)"}

# The transaction's settings for the searches that follow, on parameters {max_scan} and {ef}.
_SETTINGS = (
    "set_config('max_parallel_workers_per_gather', '0', true) AS parallel, "
    "set_config('plan_cache_mode', 'force_custom_plan', true) AS plan_cache, "
    "set_config('hnsw.iterative_scan', 'relaxed_order', true) AS iterative_scan, "
    "set_config('hnsw.max_scan_tuples', {max_scan}, true) AS max_scan_tuples, "
    "set_config('hnsw.ef_search', {ef}, true) AS ef_search"
)
# $1 max_scan_tuples, $2 ef_search (text): the settings alone (search by photo, a wider pass).
CONFIGURE_SQL = "SELECT " + _SETTINGS.format(max_scan="$1", ef="$2")
# $1 the product, $2 max_scan_tuples, $3 ef_search. A row only for a listed product: whether it has
# an embedded photo, and the settings made (for a product with none, to no use).
PRODUCT_SQL = (
    f"SELECT {_FIRST_EMBEDDING} IS NOT NULL AS has_embedding, "
    + _SETTINGS.format(max_scan="$2", ef="$3")
    + "\nFROM products p WHERE p.id = $1 AND p.is_listed"
)
# What a transaction the search did not open itself keeps after it (the settings' defaults).
RESTORE_SQL = (
    "SET LOCAL max_parallel_workers_per_gather = DEFAULT; SET LOCAL plan_cache_mode = DEFAULT; "
    "SET LOCAL hnsw.iterative_scan = DEFAULT; SET LOCAL hnsw.max_scan_tuples = DEFAULT; "
    "SET LOCAL hnsw.ef_search = DEFAULT"
)

# Columns after the summary (SummaryRow's 11): the best distance, and how many rows the
# nearest-rows pass found (NULL for the exact statement).
DISTANCE, FOUND = 11, 12


def _matching(query: Query, conditions: tuple[str, ...]) -> tuple[str, int]:
    """The images that may be returned, scored, and the last parameter number used."""
    bound = 1
    where = ["p.is_listed", "mi.embedding IS NOT NULL"]
    if query == "product":
        where.append("p.id <> $1")  # never the product itself
    for name in conditions:
        template = CONDITIONS[name]
        slots = []
        for _ in range(template.count("{}")):
            bound += 1
            slots.append(f"${bound}")
        where.append(template.format(*slots))
    sql = (
        f"SELECT mi.product_id AS grp, mi.embedding <=> {_QUERY[query]} AS distance\n"  # noqa: S608  # constant fragments, no input
        "  FROM product_images mi JOIN products p ON p.id = mi.product_id\n"
        f"  WHERE {' AND '.join(where)}"
    )
    return sql, bound


def _ranked(source: str, found: str, limit: int) -> str:
    """One row per product of ``source`` (its best distance), best first, with the summaries."""
    return (
        f"{SUMMARY_SQL}, r.distance, r.found\n"  # noqa: S608  # constant fragments, no input
        f"FROM (SELECT grp, min(distance) AS distance, {found} AS found FROM {source}\n"
        f"      GROUP BY grp ORDER BY distance, grp LIMIT ${limit}) r\n"
        "JOIN products p ON p.id = r.grp JOIN vendors ve ON ve.id = p.vendor_id\n"
        "LEFT JOIN brands b ON b.id = p.brand_id\n"
        "ORDER BY r.distance, r.grp"
    )


@functools.lru_cache(maxsize=128)
def nearest_sql(query: Query, conditions: tuple[str, ...]) -> str:
    """The ``rows`` nearest matching images (the HNSW index's order, iterative scan), then the best
    per product. Parameters: the query, the filters', rows, limit.

    MATERIALIZED: the index scan stops at ``rows``; inlined, the grouping could be planned first."""
    matching, bound = _matching(query, conditions)
    return (
        f"WITH nearest AS MATERIALIZED (\n  {matching}\n  ORDER BY distance LIMIT ${bound + 1})\n"  # noqa: S608  # constant fragments, no input
        + _ranked("nearest", "(SELECT count(*) FROM nearest)", bound + 2)
    )


@functools.lru_cache(maxsize=128)
def exact_sql(query: Query, conditions: tuple[str, ...]) -> str:
    """Every matching image scored, the best per product. Parameters: the query, the filters',
    limit.

    MATERIALIZED: each distance is computed as its row is read and only (product, distance) goes
    on; inlined, the planner may sort the rows by product first, carrying every 5 KiB vector
    through the sort (it spilled to disk at 4,000 rows)."""
    matching, bound = _matching(query, conditions)
    return f"WITH scored AS MATERIALIZED (\n  {matching})\n" + _ranked("scored", "NULL::bigint", bound + 1)
