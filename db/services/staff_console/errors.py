"""Errors of the staff order console (mapped to HTTP by ``api/errors.py``)."""

from __future__ import annotations

from core.errors import InvalidInput, NotFound


class ConsoleOrderNotFound(NotFound):
    code = "order_not_found"
    title = "Order not found"


class InvalidOrderSearch(InvalidInput):
    """A search filter that is well-formed for HTTP but means nothing (a time without its offset,
    a range that ends before it starts); ``field`` is the query parameter's name."""

    code = "invalid_order_search"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, errors=[{"field": field, "message": message}])
