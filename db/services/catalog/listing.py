"""The public catalog: filtered, sorted, keyset-paginated listing with full-text search (its SELECT
per shape of request is ``listing_sql``), and product detail in a single query."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from asyncpg import Record
from sqlalchemy import ColumnElement, Select, String, cast, select, text
from sqlalchemy.dialects.postgresql import ARRAY, array
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import InvalidInput
from db.engine import Database
from db.models import Brand, Product, Vendor
from db.pagination import decode_cursor, encode_cursor
from db.services.catalog.errors import ProductNotFound
from db.services.catalog.listing_sql import Sort, listing_sql, search_terms
from db.services.catalog.ranked_search import RankedPage, RankedSearches
from db.services.catalog.taxonomy import CategoryTree, brand_by_key
from db.services.catalog.text import normalise_color, normalise_size, slugify


@dataclass(frozen=True)
class ListingFilters:
    q: str | None = None
    category: str | None = None
    brand: str | None = None
    vendor: UUID | None = None
    min_price: int | None = None
    max_price: int | None = None
    size: str | None = None
    color: str | None = None
    in_stock: bool | None = None
    sort: Sort | None = None


@dataclass(frozen=True)
class SummaryRow:
    id: UUID
    title: str
    slug: str
    price_amount: int
    currency: str
    vendor_id: UUID
    vendor_name: str
    category_id: UUID
    brand: str | None
    thumbnail_key: str | None
    in_stock: bool


@dataclass(frozen=True)
class ListingPage:
    items: list[SummaryRow]
    next_cursor: str | None


def summary_select() -> Select[Any]:
    """The columns of a product summary (SummaryRow order), with store and brand joined."""
    return (
        select(*_summary_columns())
        .join(Vendor, Vendor.id == Product.vendor_id)
        .outerjoin(Brand, Brand.id == Product.brand_id)
    )


def _summary_columns() -> list[Any]:
    return [
        Product.id,
        Product.title,
        Product.slug,
        Product.min_price,
        Product.currency,
        Product.vendor_id,
        Vendor.name,
        Product.category_id,
        Brand.name,
        Product.thumbnail_key,
        Product.in_stock,
    ]


async def summary_rows(session: AsyncSession, product_ids: list[UUID]) -> list[SummaryRow]:
    """Summaries of the given products (any order; missing ids are left out)."""
    if not product_ids:
        return []
    rows = await session.execute(summary_select().where(Product.id.in_(product_ids)))
    return [SummaryRow(*row) for row in rows]


async def filter_conditions(
    session: AsyncSession, tree: CategoryTree, filters: ListingFilters
) -> list[ColumnElement[bool]] | None:
    """WHERE conditions on ``products`` for the filters (None: nothing can match, e.g. an unknown
    brand). Shared by every public product search, so a filter means the same everywhere.

    Raises:
        InvalidInput: an unknown category, or min_price > max_price (422).
    """
    # The bare column (not "IS TRUE") so the planner matches the partial indexes' predicate.
    conditions: list[ColumnElement[bool]] = [Product.is_listed.expression]
    if filters.category:
        ids = tree.subtree_ids(filters.category)
        conditions.append(Product.category_id == ids[0] if len(ids) == 1 else Product.category_id.in_(ids))
    if filters.brand:
        brand = await brand_by_key(session, filters.brand)
        if brand is None:
            return None
        conditions.append(Product.brand_id == brand.id)
    if filters.vendor:
        conditions.append(Product.vendor_id == filters.vendor)
    low, high = filters.min_price, filters.max_price
    if low is not None and high is not None and low > high:
        raise InvalidInput(
            "min_price is above max_price.",
            errors=[{"field": "min_price", "message": "must be <= max_price"}],
        )
    if low is not None:
        conditions.append(Product.min_price >= low)
    if high is not None:
        conditions.append(Product.min_price <= high)
    if filters.size:
        conditions.append(Product.sizes.contains(cast(array([normalise_size(filters.size)]), ARRAY(String))))
    if filters.color:
        conditions.append(
            Product.colors.contains(cast(array([normalise_color(filters.color)]), ARRAY(String)))
        )
    if filters.in_stock is not None:
        conditions.append(Product.in_stock.is_(filters.in_stock))
    return conditions


# --- the listing page --------------------------------------------------------------------------
# Its SELECT is written once per shape of request (``listing_sql``, which says why); here the
# values are bound, in the order that text numbers its parameters, and the page is cut.


@dataclass(frozen=True, slots=True)
class ListingQuery:
    """A listing page's SELECT (``$n`` parameters) with its values, and the sort it applies."""

    sql: str
    args: list[Any]
    sort: Sort
    # A search by relevance: the same page, for a kept ranking (``ranked_search``).
    ranked: RankedPage | None = None


@dataclass(frozen=True, slots=True)
class SummaryPage:
    """A listing page's rows as the driver returns them: SummaryRow's columns in its order (a
    search adds its rank)."""

    rows: list[Record]
    next_cursor: str | None


def listing_query(
    tree: CategoryTree, filters: ListingFilters, *, limit: int, cursor: str | None
) -> ListingQuery | None:
    """The SELECT behind a listing page (one row more than ``limit``), or None when nothing can
    match. Separate from running it so its plan can be inspected.

    Raises:
        InvalidInput: an unknown category, min_price > max_price, or a cursor that does not
            belong to this sort (422).
    """
    terms = search_terms(filters.q) if filters.q else None
    search = terms[0] if terms else None
    args: list[Any] = list(terms[1]) if terms else []
    names = _filter_values(tree, filters, args)
    if filters.q and search is None:
        return None
    sort: Sort = filters.sort or ("relevance" if search else "newest")
    if sort == "relevance" and search is None:
        sort = "newest"
    values = args[len(terms[1]) if terms else 0 :]
    keyset: tuple[float, UUID] | None = None
    if cursor:
        after = _decode(cursor, sort)
        if sort == "newest":
            args.append(UUID(after[0]))
        elif sort == "relevance":
            keyset = (float(after[0]), UUID(after[1]))
            args += [keyset[0], keyset[0], keyset[1]]
        else:
            args += [int(after[0]), UUID(after[1])]
    args.append(limit + 1)
    ranked = None
    if sort == "relevance" and terms is not None:
        ranked = RankedPage(terms[0], tuple(terms[1]), tuple(names), values, keyset, limit + 1)
    return ListingQuery(listing_sql(search, tuple(names), sort, bool(cursor)), args, sort, ranked)


def _filter_values(tree: CategoryTree, filters: ListingFilters, args: list[Any]) -> list[str]:
    """The condition names (``listing_sql``) of the filters, their values appended to ``args`` in
    the same order.

    Raises:
        InvalidInput: an unknown category, or min_price > max_price (422).
    """
    names: list[str] = []
    if filters.category:
        ids = tree.subtree_ids(filters.category)
        names.append("category" if len(ids) == 1 else "categories")
        args.append(ids[0] if len(ids) == 1 else ids)
    if filters.brand:
        try:
            args.append(UUID(filters.brand))
            names.append("brand_id")
        except ValueError:
            args.append(slugify(filters.brand))
            names.append("brand_slug")
    if filters.vendor:
        names.append("vendor")
        args.append(filters.vendor)
    low, high = filters.min_price, filters.max_price
    if low is not None and high is not None and low > high:
        raise InvalidInput(
            "min_price is above max_price.",
            errors=[{"field": "min_price", "message": "must be <= max_price"}],
        )
    for name, value in (
        ("min_price", low),
        ("max_price", high),
        ("size", normalise_size(filters.size) if filters.size else None),
        ("color", normalise_color(filters.color) if filters.color else None),
    ):
        if value is not None:
            names.append(name)
            args.append(value)
    if filters.in_stock is not None:
        names.append("in_stock" if filters.in_stock else "out_of_stock")
    return names


def _cursor_after(sort: Sort, last: Record) -> str:
    if sort == "newest":
        return encode_cursor([sort, str(last[0])])
    if sort in ("price_asc", "price_desc"):
        return encode_cursor([sort, last[3], str(last[0])])
    return encode_cursor([sort, float(last[11]), str(last[0])])


async def list_products(
    database: Database,
    tree: CategoryTree,
    filters: ListingFilters,
    *,
    limit: int,
    cursor: str | None,
    searches: RankedSearches | None = None,
) -> SummaryPage:
    """Listed products matching ``filters``, ``limit`` per page. A search by relevance reads
    its page from the query's kept ranking when ``searches`` can answer it (``ranked_search``),
    else ranks every match.

    Raises:
        InvalidInput: an unknown category, min_price > max_price, or a cursor that does not
            belong to this sort (422).
    """
    query = listing_query(tree, filters, limit=limit, cursor=cursor)
    if query is None:
        return SummaryPage(rows=[], next_cursor=None)
    rows = None
    if searches is not None and query.ranked is not None:
        rows = await searches.page(database, query.ranked)
    if rows is None:
        rows = await database.fetch(query.sql, *query.args, replica=True)
    if len(rows) <= limit:
        return SummaryPage(rows=rows, next_cursor=None)
    del rows[limit:]
    return SummaryPage(rows=rows, next_cursor=_cursor_after(query.sort, rows[-1]))


def _decode(cursor: str, sort: str) -> list[Any]:
    values = decode_cursor(cursor)
    expected = 2 if sort == "newest" else 3
    if values[0] != sort or len(values) != expected:
        raise InvalidInput(
            "The cursor belongs to another query.", errors=[{"field": "cursor", "message": "invalid cursor"}]
        )
    try:
        UUID(str(values[-1]))
        if sort != "newest":
            float(values[1])
    except (TypeError, ValueError):
        raise InvalidInput(
            "The cursor is not valid.", errors=[{"field": "cursor", "message": "invalid cursor"}]
        ) from None
    return values[1:]


_DETAIL = text(
    """
SELECT p.id, p.title, p.slug, p.description, p.status, p.currency, p.price_amount, p.min_price,
       p.in_stock, p.attributes, p.category_id, p.thumbnail_key, p.rating_count, p.rating_sum,
       p.created_at, p.updated_at, p.is_listed, ve.id AS vendor_id, ve.name AS vendor_name, b.name AS brand,
       COALESCE((SELECT json_agg(json_build_object(
                    'id', v.id, 'sku', v.sku, 'size', v.size, 'color', v.color,
                    'price_amount', COALESCE(v.price_amount, p.price_amount), 'stock', v.stock)
                  ORDER BY v.id)
                 FROM variants v WHERE v.product_id = p.id), '[]') AS variants,
       COALESCE((SELECT json_agg(json_build_object(
                    'id', i.id, 'position', i.position, 'status', i.status,
                    'embedding_status', i.embedding_status, 'width', i.width, 'height', i.height,
                    'original_key', i.original_key, 'thumbnails', i.thumbnails)
                  ORDER BY i.position, i.id)
                 FROM product_images i WHERE i.product_id = p.id), '[]') AS images,
       COALESCE((SELECT json_agg(json_build_object('size', r.size, 'ranges', r.ranges) ORDER BY r.position)
                 FROM size_chart_rows r WHERE r.product_id = p.id), '[]') AS size_chart
FROM products p
JOIN vendors ve ON ve.id = p.vendor_id
LEFT JOIN brands b ON b.id = p.brand_id
WHERE p.id = :product_id AND (p.is_listed OR ve.owner_id = :viewer)
"""
)

# The same query in asyncpg's own parameter style, for ``product_page``.
DETAIL_SQL = str(_DETAIL).replace(":product_id", "$1").replace(":viewer", "$2")
_NOBODY = UUID(int=0)


async def product_page(database: Database, product_id: UUID, *, viewer: UUID | None = None) -> dict[str, Any]:
    """``product_detail`` for the public product page, its hottest read: the query runs on the
    driver's connection straight from the pool, skipping the session and result layers (the
    largest share of the request's own CPU time; just bench-request-cost).

    Raises:
        ProductNotFound (404).
    """
    row = await database.fetch_row(DETAIL_SQL, product_id, viewer or _NOBODY, replica=True)
    if row is None:
        raise ProductNotFound()
    return dict(row)


async def product_detail(
    session: AsyncSession, product_id: UUID, *, viewer: UUID | None = None
) -> dict[str, Any]:
    """Everything the product page shows, in one query. Unlisted products (draft, archived, or
    of a suspended store) are visible to their own vendor only.

    Raises:
        ProductNotFound (404).
    """
    row = (
        (await session.execute(_DETAIL, {"product_id": product_id, "viewer": viewer or _NOBODY}))
        .mappings()
        .first()
    )
    if row is None:
        raise ProductNotFound()
    return dict(row)
