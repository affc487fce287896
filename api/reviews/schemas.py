"""Bodies of the review endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec
from msgspec import Meta

from api.catalog.schemas import Rating

Stars = Annotated[int, Meta(ge=1, le=5, description="1 (poor) to 5 (excellent)")]
# At least two characters that are not blank once trimmed.
ReviewTitle = Annotated[str, Meta(min_length=2, max_length=120, pattern=r"\S[\s\S]*\S")]
ReviewBody = Annotated[str, Meta(min_length=1, max_length=5000, pattern=r"\S")]


class ReviewCreate(msgspec.Struct, forbid_unknown_fields=True):
    rating: Stars
    title: ReviewTitle
    body: ReviewBody


class ReviewAuthor(msgspec.Struct):
    name: Annotated[str, Meta(description="First name and last initial, e.g. 'Ada O.'")]


class Review(msgspec.Struct):
    id: UUID
    product_id: UUID
    rating: int
    title: str
    body: str
    author: ReviewAuthor
    verified_purchase: Annotated[bool, Meta(description="Always true: only buyers of a paid order review")]
    created_at: datetime


class ReviewList(msgspec.Struct):
    items: list[Review]
    next_cursor: str | None
    rating: Rating
