"""The public catalog: filtered, sorted, keyset-paginated listing with full-text search, and
product detail in a single query."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

from sqlalchemy import ColumnElement, Select, String, and_, cast, func, literal, or_, select, text, tuple_
from sqlalchemy.dialects.postgresql import ARRAY, array
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import InvalidInput
from db.engine import Database
from db.models import Brand, Product, Vendor
from db.pagination import decode_cursor, encode_cursor
from db.services.catalog.errors import ProductNotFound
from db.services.catalog.taxonomy import CategoryTree, brand_by_key
from db.services.catalog.text import normalise_color, normalise_size

Sort = Literal["relevance", "newest", "price_asc", "price_desc"]
_WORD = re.compile(r"[0-9A-Za-z\u00C0-\u024F]+")


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


def search_query(q: str) -> ColumnElement[Any] | None:
    """``websearch_to_tsquery`` of what was typed, with the last word matched as a prefix while
    the user is still typing it (no trailing space or quote). None when nothing searchable."""
    stripped = q.strip()
    if not _WORD.search(stripped):
        return None
    full = func.websearch_to_tsquery("english", stripped)
    if q.endswith((" ", '"')):
        return full
    last = _WORD.findall(stripped)[-1]
    head = stripped[: stripped.rfind(last)].rstrip()
    negated = head.endswith("-")
    if negated or len(last) < 2:
        return full
    prefix = func.to_tsquery("simple", literal(last.lower() + ":*"))
    typing = prefix if not _WORD.search(head) else func.websearch_to_tsquery("english", head).op("&&")(prefix)
    # What was typed, as typed, or: everything before the last word and the last word as a prefix.
    return full.op("||")(typing)


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


def _ordering(
    sort: Sort, rank: ColumnElement[Any] | None, after: list[Any] | None
) -> tuple[list[Any], ColumnElement[bool] | None]:
    """ORDER BY for ``sort`` and the keyset condition for the rows after ``after``."""
    if sort == "newest":
        return [Product.id.desc()], (Product.id < UUID(after[0]) if after else None)
    if sort == "price_asc":
        position = tuple_(int(after[0]), UUID(after[1])) if after else None
        return [Product.min_price.asc(), Product.id.asc()], (
            tuple_(Product.min_price, Product.id) > position if position is not None else None
        )
    if sort == "price_desc":
        position = tuple_(int(after[0]), UUID(after[1])) if after else None
        return [Product.min_price.desc(), Product.id.desc()], (
            tuple_(Product.min_price, Product.id) < position if position is not None else None
        )
    assert rank is not None
    keyset = None
    if after:
        r, last_id = float(after[0]), UUID(after[1])
        keyset = or_(rank < r, and_(rank == r, Product.id < last_id))
    return [rank.desc(), Product.id.desc()], keyset


def _cursor_after(sort: Sort, last: Any) -> str:
    if sort == "newest":
        return encode_cursor([sort, str(last[0])])
    if sort in ("price_asc", "price_desc"):
        return encode_cursor([sort, last[3], str(last[0])])
    return encode_cursor([sort, float(last[11]), str(last[0])])


async def listing_statement(
    session: AsyncSession, tree: CategoryTree, filters: ListingFilters, *, limit: int, cursor: str | None
) -> tuple[Select[Any], Sort] | None:
    """The SELECT behind a listing page (one row more than ``limit``), or None when nothing can
    match. Separate from running it so its plan can be inspected."""
    conditions = await filter_conditions(session, tree, filters)
    query = search_query(filters.q) if filters.q else None
    if conditions is None or (filters.q and query is None):
        return None
    sort: Sort = filters.sort or ("relevance" if query is not None else "newest")
    if sort == "relevance" and query is None:
        sort = "newest"
    rank = None
    if query is not None:
        conditions.append(Product.search_vector.op("@@")(query))
        rank = func.ts_rank_cd(Product.search_vector, query, 32)
    order, keyset = _ordering(sort, rank, _decode(cursor, sort) if cursor else None)
    if keyset is not None:
        conditions.append(keyset)
    stmt = (
        summary_select()
        .add_columns(*([rank.label("rank")] if rank is not None else []))
        .where(*conditions)
        .order_by(*order)
        .limit(limit + 1)
    )
    return stmt, sort


async def list_products(
    session: AsyncSession, tree: CategoryTree, filters: ListingFilters, *, limit: int, cursor: str | None
) -> ListingPage:
    """Listed products matching ``filters``, ``limit`` per page.

    Raises:
        InvalidInput: an unknown category, min_price > max_price, or a cursor that does not
            belong to this sort (422).
    """
    built = await listing_statement(session, tree, filters, limit=limit, cursor=cursor)
    if built is None:
        return ListingPage(items=[], next_cursor=None)
    stmt, sort = built
    rows = (await session.execute(stmt)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return ListingPage(
        items=[SummaryRow(*row[:11]) for row in rows],
        next_cursor=_cursor_after(sort, rows[-1]) if more and rows else None,
    )


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
       p.created_at, p.updated_at, ve.id AS vendor_id, ve.name AS vendor_name, b.name AS brand,
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
    row = await database.fetch_row(DETAIL_SQL, product_id, viewer or _NOBODY)
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
