"""Reviews: shoppers who paid for a product write one review of it; everyone reads them.

The product's rating summary (``products.rating_count`` / ``rating_sum``) changes in the same
transaction as the review row, by a relative ``UPDATE`` (never read-modify-write), so concurrent
reviews of one product cannot lose a count and the summary always equals the aggregate of the
reviews table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import delete, exists, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.page_versions import touch_product
from core.rules.orders import SOLD
from db.models import Order, OrderLine, Product, Review, User
from db.pagination import cursor_id, encode_cursor
from db.services.catalog.errors import ProductNotFound
from db.services.reviews.errors import AlreadyReviewed, NotAVerifiedBuyer, ReviewNotFound


@dataclass(frozen=True)
class ReviewRow:
    id: UUID
    product_id: UUID
    rating: int
    title: str
    body: str
    author_name: str
    created_at: datetime


@dataclass(frozen=True)
class RatingSummary:
    count: int
    total: int

    @property
    def average(self) -> float | None:
        return round(self.total / self.count, 2) if self.count else None


@dataclass(frozen=True)
class ReviewPage:
    items: list[ReviewRow]
    next_cursor: str | None
    rating: RatingSummary


def public_name(full_name: str) -> str:
    """How a reviewer is shown: first name and the initial of the last ("Ada Obi" -> "Ada O.").
    Reviews are public, so nothing more of the name (and never the email) is shown."""
    parts = full_name.split()
    if not parts:
        return "Shopper"
    if len(parts) == 1:
        return parts[0]
    return f"{parts[0]} {parts[-1][0].upper()}."


async def listed_rating(session: AsyncSession, product_id: UUID) -> RatingSummary:
    """The rating summary of a listed product.

    Raises:
        ProductNotFound: no such product, or it is not listed (draft, archived, suspended store).
    """
    row = (
        await session.execute(
            select(Product.rating_count, Product.rating_sum).where(
                Product.id == product_id, Product.is_listed.expression
            )
        )
    ).first()
    if row is None:
        raise ProductNotFound()
    return RatingSummary(count=row.rating_count, total=row.rating_sum)


_REVIEW_COLUMNS = (
    Review.id,
    Review.product_id,
    Review.rating,
    Review.title,
    Review.body,
    User.full_name,
    Review.created_at,
)


def _row(values: tuple[UUID, UUID, int, str, str, str, datetime]) -> ReviewRow:
    review_id, product_id, rating, title, body, full_name, created_at = values
    return ReviewRow(review_id, product_id, rating, title, body, public_name(full_name), created_at)


async def list_reviews(
    session: AsyncSession, product_id: UUID, *, limit: int, cursor: str | None
) -> ReviewPage:
    """A listed product's reviews, newest first, ``limit`` per page, with its rating summary.

    Raises:
        ProductNotFound (404), InvalidInput for a cursor this API did not make (422).
    """
    rating = await listed_rating(session, product_id)
    stmt = (
        select(*_REVIEW_COLUMNS)
        .join(User, User.id == Review.user_id)
        .where(Review.product_id == product_id)
        .order_by(Review.id.desc())
        .limit(limit + 1)
    )
    if cursor is not None:
        stmt = stmt.where(Review.id < cursor_id(cursor))
    rows = (await session.execute(stmt)).all()
    items = [_row(values) for values in rows[:limit]]
    more = len(rows) > limit
    return ReviewPage(
        items=items,
        next_cursor=encode_cursor([str(items[-1].id)]) if more and items else None,
        rating=rating,
    )


async def is_verified_buyer(session: AsyncSession, user_id: UUID, product_id: UUID) -> bool:
    """Whether ``user_id`` has a paid (or later: fulfilled, delivered) order with this product."""
    bought = await session.scalar(
        select(
            exists().where(
                OrderLine.product_id == product_id,
                Order.id == OrderLine.order_id,
                Order.user_id == user_id,
                Order.status.in_(SOLD),
            )
        )
    )
    return bool(bought)


async def create_review(
    session: AsyncSession, user_id: UUID, product_id: UUID, *, rating: int, title: str, body: str
) -> ReviewRow:
    """Write the caller's review of a listed product and add it to the product's rating summary.

    Raises:
        ProductNotFound: unknown or unlisted product (404).
        NotAVerifiedBuyer: the caller has no paid order with this product (403).
        AlreadyReviewed: the caller has reviewed it before (409), also when two requests race.
    """
    await listed_rating(session, product_id)
    if not await is_verified_buyer(session, user_id, product_id):
        raise NotAVerifiedBuyer()
    # ON CONFLICT on the unique constraint rather than a look-up first: a concurrent insert of the
    # same review waits for the other transaction and then inserts nothing, with no aborted
    # statement to recover from.
    inserted = (
        await session.execute(
            insert(Review)
            .values(
                product_id=product_id,
                user_id=user_id,
                rating=rating,
                title=" ".join(title.split()),
                body=body.strip(),
            )
            .on_conflict_do_nothing(constraint="uq_reviews_product_user")
            .returning(Review.id)
        )
    ).scalar_one_or_none()
    if inserted is None:
        raise AlreadyReviewed()
    await _adjust_summary(session, product_id, count=1, total=rating)
    row = (
        await session.execute(
            select(*_REVIEW_COLUMNS).join(User, User.id == Review.user_id).where(Review.id == inserted)
        )
    ).one()
    return _row(row)


async def delete_my_review(session: AsyncSession, user_id: UUID, product_id: UUID) -> None:
    """Remove the caller's review of a product (listed or not: it is their own text) and take it
    out of the product's rating summary.

    Raises:
        ReviewNotFound: the caller has no review of this product (404).
    """
    rating = (
        await session.execute(
            delete(Review)
            .where(Review.product_id == product_id, Review.user_id == user_id)
            .returning(Review.rating)
            .execution_options(synchronize_session=False)
        )
    ).scalar_one_or_none()
    if rating is None:
        raise ReviewNotFound()
    await _adjust_summary(session, product_id, count=-1, total=-rating)


async def _adjust_summary(session: AsyncSession, product_id: UUID, *, count: int, total: int) -> None:
    touch_product(product_id, listing=False)
    # Relative update in SQL: the row lock serialises concurrent reviews of the product, and each
    # adds its own delta to whatever the last committed value is.
    await session.execute(
        update(Product)
        .where(Product.id == product_id)
        .values(
            rating_count=Product.rating_count + count,
            rating_sum=Product.rating_sum + total,
            # A review is not an edit of the product: keep the vendor's last-edited time.
            updated_at=Product.updated_at,
        )
        .execution_options(synchronize_session=False)
    )
