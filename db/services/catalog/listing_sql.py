"""The text of the public listing's SELECT, written once per shape of request.

The public listing is the catalog's busiest page after the product page. Its SELECT is written
out once per shape of request (which filters, which sort, after a cursor or not), only the values
are bound, and it runs on the driver's connection (Database.fetch), its rows going straight into
the response: no statement objects built and compiled, no session and no result objects per
request (just bench-request-cost). ``listing.filter_conditions`` states the same filters for the
other searches (similar items, search by photo); the tests hold both to the same products.

Pure: text in, text out; ``listing.listing_query`` binds the values in the order given here.
"""

from __future__ import annotations

import functools
import re
from typing import Literal

Sort = Literal["relevance", "newest", "price_asc", "price_desc"]
_WORD = re.compile(r"[0-9A-Za-z\u00C0-\u024F]+")


def search_terms(q: str) -> tuple[str, list[str]] | None:
    """What was typed, for the listing's tsquery (``_TSQUERY``): the kind of query and its values.
    The last word is matched as a prefix while the user is still typing it (no trailing space or
    quote). None when there is nothing searchable."""
    stripped = q.strip()
    if not _WORD.search(stripped):
        return None
    if q.endswith((" ", '"')):
        return "words", [stripped]
    last = _WORD.findall(stripped)[-1]
    head = stripped[: stripped.rfind(last)].rstrip()
    if head.endswith("-") or len(last) < 2:  # a negated last word, or a single letter
        return "words", [stripped]
    prefix = last.lower() + ":*"
    if not _WORD.search(head):
        return "prefix", [stripped, prefix]
    return "words_prefix", [stripped, prefix, head]


# The tsquery of a search, by the kind ``search_terms`` gives, on parameters $1..$3: what was
# typed, as typed, or: everything before the last word and the last word as a prefix.
_TSQUERY = {
    "words": "websearch_to_tsquery('english'::regconfig, $1)",
    "prefix": "(websearch_to_tsquery('english'::regconfig, $1) || to_tsquery('simple'::regconfig, $2))",
    "words_prefix": "(websearch_to_tsquery('english'::regconfig, $1) || "
    "(websearch_to_tsquery('english'::regconfig, $3) && to_tsquery('simple'::regconfig, $2)))",
}


# The WHERE condition of each filter and of each sort's keyset, on parameters ``{}`` numbered in
# the order their values are bound; ``{rank}`` is the search rank.
CONDITIONS: dict[str, str] = {
    "category": "p.category_id = {}",
    "categories": "p.category_id = ANY({}::uuid[])",
    "brand_id": "p.brand_id = {}",
    "brand_slug": "p.brand_id = (SELECT br.id FROM brands br WHERE br.slug = {})",  # none: NULL, no match
    "vendor": "p.vendor_id = {}",
    "min_price": "p.min_price >= {}",
    "max_price": "p.min_price <= {}",
    "size": "p.sizes @> ARRAY[{}]::varchar[]",
    "color": "p.colors @> ARRAY[{}]::varchar[]",
    "in_stock": "p.in_stock IS true",
    "out_of_stock": "p.in_stock IS false",
}
_AFTER: dict[Sort, str] = {
    "newest": "p.id < {}",
    "price_asc": "(p.min_price, p.id) > ({}::bigint, {}::uuid)",
    "price_desc": "(p.min_price, p.id) < ({}::bigint, {}::uuid)",
    "relevance": "({rank} < {}::float8 OR ({rank} = {}::float8 AND p.id < {}))",
}
_ORDER: dict[Sort, str] = {
    "newest": "p.id DESC",
    "price_asc": "p.min_price, p.id",
    "price_desc": "p.min_price DESC, p.id DESC",
    "relevance": "rank DESC, p.id DESC",
}
# What the per-category walk hands on: the products' columns the summary and its joins read.
_PRODUCT_COLUMNS = (
    "p.id, p.title, p.slug, p.min_price, p.currency, p.vendor_id, p.category_id, p.brand_id, "
    "p.thumbnail_key, p.in_stock"
)
# SummaryRow's columns, in its order.
SUMMARY_SQL = (
    "SELECT p.id, p.title, p.slug, p.min_price, p.currency, p.vendor_id, ve.name AS vendor_name, "
    "p.category_id, b.name AS brand, p.thumbnail_key, p.in_stock"
)


def _parameters(sql: str) -> int:
    """The highest ``$n`` in ``sql`` (0: none)."""
    return max((int(n) for n in re.findall(r"\$(\d+)", sql)), default=0)


# The text match of a search alone, ranked, its best rows first (the row limit follows the
# search's parameters): what ``ranked_search`` keeps per query so that a page of the search
# need not rank every match again.
_RANKING = (
    "SELECT p.id, ts_rank_cd(p.search_vector, {q}, 32) AS rank FROM products p\n"
    "WHERE p.is_listed AND p.search_vector @@ {q}\n"
    "ORDER BY rank DESC, p.id DESC LIMIT ${limit}"
)
RANKING_SQL = {
    kind: _RANKING.format(q=tsquery, limit=_parameters(tsquery) + 1) for kind, tsquery in _TSQUERY.items()
}
# The products of a kept ranking ($1: ids, $2: their ranks, in step), for ``listing_sql(ranked=True)``.
_RANKED_FROM = "unnest($1::uuid[], $2::float8[]) AS c(id, rank) JOIN products p ON p.id = c.id"


@functools.lru_cache(maxsize=512)
def listing_sql(
    search: str | None, conditions: tuple[str, ...], sort: Sort, after: bool, *, ranked: bool = False
) -> str:
    """The SELECT of one shape of listing request. Its parameters, in order: the search's
    (``search_terms``), each condition's, the keyset's, the row limit.

    ``ranked``: the search's matches and ranks are given (``$1`` ids, ``$2`` ranks; see
    ``ranked_search``) instead of found and ranked here; the filters still apply, on the rows as
    they are now.

    A category with subcategories in a sort order (no search) is read one category at a time,
    each walk in that order through its own index ((category_id, id) or (category_id, min_price,
    id)) and stopping at the page's size, and the walks are merged. Planned as one filter over an
    index of the whole catalog in that order, a filter the category rarely meets (a size it does
    not come in) read every listed product first: 120-290 ms on 100k products, against a few ms
    walking the category (``just bench`` listing scenario's shapes, by EXPLAIN ANALYZE)."""
    tsquery = _TSQUERY[search] if search and not ranked else None
    rank = "c.rank" if ranked else f"ts_rank_cd(p.search_vector, {tsquery}, 32)" if tsquery else ""
    bound = 2 if ranked else _parameters(tsquery or "")

    def numbered(template: str) -> str:
        nonlocal bound
        slots = []
        for _ in range(template.count("{}")):
            bound += 1
            slots.append(f"${bound}")
        return template.format(*slots, rank=rank)

    # A category with subcategories, browsed in a sort order, is walked one category at a time.
    per_category = "categories" in conditions and not search and not ranked
    categories = ""
    # The bare column (not "IS TRUE") so the planner matches the partial indexes' predicate.
    where = ["p.is_listed"]
    for name in conditions:
        condition = numbered(CONDITIONS[name])
        if name == "categories" and per_category:
            categories, condition = f"${bound}", "p.category_id = cat.id"
        where.append(condition)
    if tsquery:
        where.append(f"p.search_vector @@ {tsquery}")
    if ranked:
        # Said twice (the join says it too) so that the products are found through the primary
        # key: planned from the join alone, a filter on a common value reads the whole table.
        where.append("p.id = ANY($1::uuid[])")
    if after:
        where.append(numbered(_AFTER[sort]))
    if per_category:
        return _per_category(categories, where, sort, numbered("{}"))
    return (
        f"{SUMMARY_SQL}{f', {rank} AS rank' if rank else ''}\n"
        f"FROM {_RANKED_FROM if ranked else 'products p'} JOIN vendors ve ON ve.id = p.vendor_id\n"
        "LEFT JOIN brands b ON b.id = p.brand_id\n"
        f"WHERE {' AND '.join(where)}\n"
        f"ORDER BY {_ORDER[sort]} LIMIT {numbered('{}')}"
    )


def _per_category(categories: str, where: list[str], sort: Sort, limit: str) -> str:
    """``listing_sql``'s walk one category at a time: the categories in parameter ``categories``,
    each read through its own index in the sort's order up to ``limit`` rows, then merged."""
    return (
        f"{SUMMARY_SQL}\n"  # noqa: S608  # constant fragments, no input
        f"FROM unnest({categories}::uuid[]) AS cat(id) CROSS JOIN LATERAL (\n"
        f"  SELECT {_PRODUCT_COLUMNS} FROM products p\n"
        f"  WHERE {' AND '.join(where)}\n"
        f"  ORDER BY {_ORDER[sort]} LIMIT {limit}) p\n"
        "JOIN vendors ve ON ve.id = p.vendor_id LEFT JOIN brands b ON b.id = p.brand_id\n"
        f"ORDER BY {_ORDER[sort]} LIMIT {limit}"
    )
