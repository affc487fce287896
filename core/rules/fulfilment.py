"""Fulfilments: the moves of one vendor's part of an order, and the order status they add up to.

::

    pending -> packed -> shipped -> delivered
       |         |
       +---------+--> cancelled   (before shipping; whole, or line by line until none is left)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, get_args

from core.errors import Conflict

FulfilmentStatus = Literal["pending", "packed", "shipped", "delivered", "cancelled"]
FULFILMENT_STATUSES: tuple[FulfilmentStatus, ...] = get_args(FulfilmentStatus)
# Nothing has left the vendor yet: lines can still be cancelled.
CANCELLABLE: frozenset[str] = frozenset({"pending", "packed"})
# The goods are with the carrier or the shopper.
OUT: frozenset[str] = frozenset({"shipped", "delivered"})

MOVES: dict[str, frozenset[str]] = {
    "pending": frozenset({"packed", "shipped", "cancelled"}),
    "packed": frozenset({"shipped", "cancelled"}),
    "shipped": frozenset({"delivered"}),
    "delivered": frozenset(),
    "cancelled": frozenset(),
}


class InvalidFulfilmentMove(Conflict):
    code = "invalid_fulfilment_transition"
    title = "This fulfilment cannot change that way"


def check_move(current: str, target: str) -> None:
    """Raises :class:`InvalidFulfilmentMove` (409) unless ``current -> target`` is allowed."""
    if target not in MOVES.get(current, frozenset()):
        raise InvalidFulfilmentMove(f"A fulfilment that is {current} cannot become {target}.")


def derive_order_status(statuses: Iterable[str]) -> str:
    """The status a paid order has, given its fulfilments' statuses.

    ``cancelled`` when every fulfilment is; otherwise, over the live ones: ``delivered`` when all
    arrived, ``shipped`` when all left, ``partially_shipped`` when some left, else ``paid``.
    """
    live = [s for s in statuses if s != "cancelled"]
    if not live:
        return "cancelled"
    if all(s == "delivered" for s in live):
        return "delivered"
    if all(s in OUT for s in live):
        return "shipped"
    if any(s in OUT for s in live):
        return "partially_shipped"
    return "paid"


def share(total: int, part: int, whole: int) -> int:
    """``total`` * ``part`` / ``whole`` in whole minor units, rounded down (never over ``total``).

    Used to give cancelled or returned units their share of a line's discount.
    """
    if whole <= 0 or part <= 0:
        return 0
    return min(total, total * part // whole)
