"""Errors of the reviews domain."""

from __future__ import annotations

from core.errors import Conflict, NotFound, PermissionDenied


class NotAVerifiedBuyer(PermissionDenied):
    title = "Only buyers can review"
    code = "not_a_verified_buyer"

    def __init__(self) -> None:
        super().__init__("Only shoppers with a paid order for this product can review it.")


class AlreadyReviewed(Conflict):
    title = "Already reviewed"
    code = "review_exists"

    def __init__(self) -> None:
        super().__init__("You have already reviewed this product; delete your review to write a new one.")


class ReviewNotFound(NotFound):
    title = "Review not found"
    code = "review_not_found"

    def __init__(self) -> None:
        super().__init__("You have not reviewed this product.")
