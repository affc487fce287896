"""The order state machine: which status may follow which, and who may move it there.

::

    pending_payment -> paid -> partially_shipped -> shipped -> delivered
          |             |  \\______________________/^         ^   |
          |             |   (derived from the fulfilments) ---+   |
          |             +--> cancelled (buyer before anything shipped; a vendor or staff when
          |             |     every fulfilment is cancelled: the payment is refunded)
          |             +------------+--------------+------------+--> refunded (staff; system
          |                                                         once everything was refunded)
          +--> cancelled (buyer, staff)
          +--> expired   (system: the reservation timed out unpaid)

Once paid, an order's status follows its fulfilments (:func:`core.rules.fulfilment.derive_order_status`):
``partially_shipped`` while some vendors have shipped and others not, ``shipped`` when every
live fulfilment has, ``delivered`` when every one has arrived. Every status change goes through
:func:`check_transition` (called by ``db.services.orders.transitions``, the only code that writes
``orders.status``).
"""

from __future__ import annotations

from typing import Literal, get_args

from core.errors import Conflict

OrderStatus = Literal[
    "pending_payment",
    "paid",
    "partially_shipped",
    "shipped",
    "delivered",
    "cancelled",
    "expired",
    "refunded",
]
ORDER_STATUSES: tuple[OrderStatus, ...] = get_args(OrderStatus)
Actor = Literal["buyer", "vendor", "staff", "payment", "system"]

# Statuses whose stock is still held in ``variants.reserved``.
RESERVING: frozenset[OrderStatus] = frozenset({"pending_payment"})
# Paid for, so they count as sales (vendor stats, verified-buyer reviews, "shoppers like me").
SOLD: frozenset[OrderStatus] = frozenset({"paid", "partially_shipped", "shipped", "delivered"})
# Nothing can happen to these any more.
FINAL: frozenset[OrderStatus] = frozenset({"cancelled", "expired", "refunded"})

_FULFILMENT_ACTORS: frozenset[Actor] = frozenset({"vendor", "staff", "system"})

# (from, to) -> the actors allowed to make that move.
TRANSITIONS: dict[tuple[OrderStatus, OrderStatus], frozenset[Actor]] = {
    ("pending_payment", "paid"): frozenset({"payment"}),
    ("pending_payment", "cancelled"): frozenset({"buyer", "staff"}),
    ("pending_payment", "expired"): frozenset({"system"}),
    # A payment that arrives for an order that expired moments earlier, while its stock can
    # still be taken again (see db.services.payments.processing).
    ("expired", "paid"): frozenset({"payment"}),
    # Every fulfilment cancelled by its vendor (or staff) cancels the order.
    ("paid", "cancelled"): frozenset({"buyer", "vendor", "staff"}),
    # Moves that follow the fulfilments.
    ("paid", "partially_shipped"): _FULFILMENT_ACTORS,
    ("paid", "shipped"): _FULFILMENT_ACTORS,
    ("partially_shipped", "shipped"): _FULFILMENT_ACTORS,
    ("partially_shipped", "delivered"): _FULFILMENT_ACTORS,
    ("shipped", "delivered"): _FULFILMENT_ACTORS,
    # Staff refund a whole order; the system closes one whose payment was refunded in full
    # (cancelled lines and returns added up to everything).
    ("paid", "refunded"): frozenset({"staff", "system"}),
    ("partially_shipped", "refunded"): frozenset({"staff", "system"}),
    ("shipped", "refunded"): frozenset({"staff", "system"}),
    ("delivered", "refunded"): frozenset({"staff", "system"}),
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
        raise InvalidTransition(
            f"An order that is {current.replace('_', ' ')} cannot become {target.replace('_', ' ')}."
        )
