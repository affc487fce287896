"""Bodies of the wishlist endpoints."""

from __future__ import annotations

from datetime import datetime

import msgspec

from api.catalog.schemas import ProductSummary


class WishlistItem(msgspec.Struct):
    product: ProductSummary
    added_at: datetime


class Wishlist(msgspec.Struct):
    items: list[WishlistItem]
    next_cursor: str | None
