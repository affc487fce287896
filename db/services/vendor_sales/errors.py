"""Errors of a vendor's sales view."""

from __future__ import annotations

from core.errors import InvalidInput, NotFound


class VendorOrderNotFound(NotFound):
    """No such order, or none of its lines are the vendor's (the two look the same)."""

    title = "Order not found"
    code = "order_not_found"


class InvalidDateRange(InvalidInput):
    code = "invalid_date_range"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, errors=[{"field": field, "message": message}])
