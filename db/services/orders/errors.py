"""Errors of carts, orders and their idempotency keys (mapped to HTTP by ``api/errors.py``)."""

from __future__ import annotations

from uuid import UUID

from core.errors import Conflict, InvalidInput, NotFound


class CartItemNotFound(NotFound):
    code = "cart_item_not_found"
    title = "Cart item not found"


class CartLimitExceeded(InvalidInput):
    code = "cart_limit_exceeded"


class NotForSale(InvalidInput):
    """A variant that does not exist or whose product is not listed."""

    code = "not_for_sale"


class EmptyOrder(InvalidInput):
    code = "empty_order"


class OutOfStock(Conflict):
    code = "out_of_stock"
    title = "Not enough stock"

    def __init__(self, variant_ids: list[UUID]) -> None:
        super().__init__(
            "Not enough stock for some items; nothing was reserved.",
            extra={"variant_ids": [str(v) for v in variant_ids]},
        )
        self.variant_ids = variant_ids


class IdempotencyKeyInUse(Conflict):
    code = "idempotency_key_in_use"
    title = "A request with this Idempotency-Key is still being processed"


class IdempotencyKeyReused(InvalidInput):
    code = "idempotency_key_reused"
    title = "Idempotency-Key reused with a different request"


class OrderNotCancellable(Conflict):
    code = "order_not_cancellable"
    title = "This order can no longer be cancelled"


class OrderNotFound(NotFound):
    code = "order_not_found"
    title = "Order not found"
