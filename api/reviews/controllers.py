"""Reviews of a product: public reading, writing and deleting by the reviewer."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Principal, requires_user
from api.catalog.schemas import Rating
from api.common import Cursor, Limit
from api.page_cache import NOT_MODIFIED, reviews_page
from api.reviews import schemas
from db.services.reviews import reviews
from db.services.reviews.reviews import ReviewRow


def review_out(row: ReviewRow) -> schemas.Review:
    return schemas.Review(
        id=row.id,
        product_id=row.product_id,
        rating=row.rating,
        title=row.title,
        body=row.body,
        author=schemas.ReviewAuthor(name=row.author_name),
        verified_purchase=True,
        created_at=row.created_at,
    )


class ReviewsController(Controller):
    path = "/products/{product_id:uuid}/reviews"
    tags = ["reviews"]

    @get(
        "/",
        middleware=[reviews_page],
        responses=NOT_MODIFIED,
        summary="A product's reviews, newest first, with its rating",
        description="404 when the product is unknown or not listed.",
    )
    async def list_reviews(
        self,
        product_id: FromPath[UUID],
        replica_session: NamedDependency[AsyncSession],
        limit: Limit = 20,
        cursor: Cursor = None,
    ) -> schemas.ReviewList:
        page = await reviews.list_reviews(replica_session, product_id, limit=limit, cursor=cursor)
        return schemas.ReviewList(
            items=[review_out(row) for row in page.items],
            next_cursor=page.next_cursor,
            rating=Rating(average=page.rating.average, count=page.rating.count),
        )

    @post(
        "/",
        status_code=201,
        guards=[requires_user],
        summary="Review a product you bought",
        description="Only shoppers with a paid (or fulfilled, delivered) order of the product may "
        "review it (403 `not_a_verified_buyer` otherwise); one review per shopper and product "
        "(409; delete yours to write another). 404 when the product is unknown or not listed.",
    )
    async def create(
        self,
        product_id: FromPath[UUID],
        data: JSONBody[schemas.ReviewCreate],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> schemas.Review:
        row = await reviews.create_review(
            db_session, principal.user_id, product_id, rating=data.rating, title=data.title, body=data.body
        )
        return review_out(row)

    @delete(
        "/mine",
        status_code=204,
        guards=[requires_user],
        summary="Delete your review of a product",
        description="404 when you have not reviewed it.",
    )
    async def delete_mine(
        self,
        product_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> None:
        await reviews.delete_my_review(db_session, principal.user_id, product_id)
