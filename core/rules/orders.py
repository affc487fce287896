"""The order state machine: which status may follow which, and who may move it there.

::

    pending_payment -> paid -> fulfilled -> delivered
          |             |          |           |
          |             +----------+-----------+--> refunded   (staff)
          +--> cancelled (buyer; also from paid, before fulfilment: the payment is refunded)
          +--> expired   (system: the reservation timed out unpaid)

Every status change goes through :func:`check_transition` (called by
``db.services.orders.transitions``, the only code that writes ``orders.status``).
"""

from __future__ import annotations

from typing import Literal, get_args

from core.errors import Conflict

OrderStatus = Literal["pending_payment", "paid", "fulfilled", "delivered", "cancelled", "expired", "refunded"]
ORDER_STATUSES: tuple[OrderStatus, ...] = get_args(OrderStatus)
Actor = Literal["buyer", "vendor", "staff", "payment", "system"]

# Statuses whose stock is still held in ``variants.reserved``.
RESERVING: frozenset[OrderStatus] = frozenset({"pending_payment"})
# Paid for, so they count as sales (vendor stats, verified-buyer reviews, "shoppers like me").
SOLD: frozenset[OrderStatus] = frozenset({"paid", "fulfilled", "delivered"})
# Nothing can happen to these any more.
FINAL: frozenset[OrderStatus] = frozenset({"cancelled", "expired", "refunded"})

# (from, to) -> the actors allowed to make that move.
TRANSITIONS: dict[tuple[OrderStatus, OrderStatus], frozenset[Actor]] = {
    ("pending_payment", "paid"): frozenset({"payment"}),
    ("pending_payment", "cancelled"): frozenset({"buyer", "staff"}),
    ("pending_payment", "expired"): frozenset({"system"}),
    # A payment that arrives for an order that expired moments earlier, while its stock can
    # still be taken again (see db.services.payments.processing).
    ("expired", "paid"): frozenset({"payment"}),
    ("paid", "cancelled"): frozenset({"buyer", "staff"}),
    ("paid", "fulfilled"): frozenset({"vendor", "staff"}),
    ("paid", "refunded"): frozenset({"staff"}),
    ("fulfilled", "delivered"): frozenset({"staff"}),
    ("fulfilled", "refunded"): frozenset({"staff"}),
    ("delivered", "refunded"): frozenset({"staff"}),
}


class InvalidTransition(Conflict):
    code = "invalid_order_transition"
    title = "This order cannot change that way"


def can_transition(current: str, target: str, actor: Actor) -> bool:
    allowed = TRANSITIONS.get((current, target))  # type: ignore[arg-type]
    return allowed is not None and actor in allowed


def check_transition(current: str, target: str, actor: Actor) -> None:
    """Raises :class:`InvalidTransition` (409) unless ``actor`` may move ``current`` to ``target``."""
    if not can_transition(current, target, actor):
        raise InvalidTransition(f"An order that is {current.replace('_', ' ')} cannot become {target}.")
