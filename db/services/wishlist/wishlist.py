"""Saving products to a wishlist, removing them, and listing them as product summaries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Product, WishlistItem
from db.pagination import cursor_id, encode_cursor
from db.services.catalog.errors import ProductNotFound
from db.services.catalog.listing import SummaryRow, summary_select
from db.services.wishlist.errors import WishlistFull

# Enough for any shopper; it bounds the rows one account can make.
MAX_ITEMS = 500


@dataclass(frozen=True)
class SavedProduct:
    product: SummaryRow
    added_at: datetime


@dataclass(frozen=True)
class WishlistPage:
    items: list[SavedProduct]
    next_cursor: str | None


async def add(session: AsyncSession, user_id: UUID, product_id: UUID) -> None:
    """Save a listed product. Saving one that is already saved changes nothing.

    Raises:
        ProductNotFound: unknown or unlisted product (404).
        WishlistFull: the wishlist already holds ``MAX_ITEMS`` other products (422).
    """
    listed = await session.scalar(
        select(Product.id).where(Product.id == product_id, Product.is_listed.expression)
    )
    if listed is None:
        raise ProductNotFound()
    # Two saves by the same shopper at once would both see room for one more; taking turns per
    # shopper (until commit) keeps the cap exact without locking anything others use.
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": f"wishlist:{user_id}"}
    )
    saved = await session.scalar(
        select(WishlistItem.id).where(WishlistItem.user_id == user_id, WishlistItem.product_id == product_id)
    )
    if saved is not None:
        return
    count = await session.scalar(select(func.count()).where(WishlistItem.user_id == user_id))
    if (count or 0) >= MAX_ITEMS:
        raise WishlistFull(MAX_ITEMS)
    await session.execute(
        insert(WishlistItem)
        .values(user_id=user_id, product_id=product_id)
        .on_conflict_do_nothing(constraint="uq_wishlist_items_user_product")
    )


async def remove(session: AsyncSession, user_id: UUID, product_id: UUID) -> None:
    """Unsave a product; nothing happens when it was not saved."""
    await session.execute(
        delete(WishlistItem)
        .where(WishlistItem.user_id == user_id, WishlistItem.product_id == product_id)
        .execution_options(synchronize_session=False)
    )


async def list_saved(session: AsyncSession, user_id: UUID, *, limit: int, cursor: str | None) -> WishlistPage:
    """The shopper's saved products that are still listed, most recently saved first, in one query.

    Raises:
        InvalidInput: a cursor this API did not make (422).
    """
    stmt = (
        summary_select()
        .add_columns(WishlistItem.id, WishlistItem.created_at)
        .join(WishlistItem, WishlistItem.product_id == Product.id)
        .where(WishlistItem.user_id == user_id, Product.is_listed.expression)
        .order_by(WishlistItem.id.desc())
        .limit(limit + 1)
    )
    if cursor is not None:
        stmt = stmt.where(WishlistItem.id < cursor_id(cursor))
    rows = (await session.execute(stmt)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return WishlistPage(
        items=[SavedProduct(product=SummaryRow(*row[:11]), added_at=row[12]) for row in rows],
        next_cursor=encode_cursor([str(rows[-1][11])]) if more and rows else None,
    )
