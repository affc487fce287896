"""Errors of the wishlist domain."""

from __future__ import annotations

from core.errors import InvalidInput


class WishlistFull(InvalidInput):
    code = "wishlist_full"

    def __init__(self, cap: int) -> None:
        super().__init__(
            f"Your wishlist already holds {cap} products, the most it can. Remove some to add more.",
            errors=[{"field": "product_id", "message": f"the wishlist is full ({cap} products)"}],
        )
