"""Errors of fulfilments (mapped to HTTP by ``api/errors.py``)."""

from __future__ import annotations

from core.errors import Conflict, InvalidInput, NotFound


class FulfilmentNotFound(NotFound):
    code = "fulfilment_not_found"
    title = "Fulfilment not found"


class OrderNotPaid(Conflict):
    """The order behind the fulfilment is not (or no longer) a paid one."""

    code = "order_not_paid"
    title = "The order is not paid"


class InvalidCancellation(InvalidInput):
    code = "invalid_cancellation"
    title = "These lines cannot be cancelled"
