"""Vouchers: which items a code covers, what it takes off, and how that is shared over the lines.

A code covers the items in its scope: the whole cart, one or more stores, categories (an item
in a sub-category counts) or products. A store's own code (``vendor_id`` set) covers only that
store's items, whatever its scope. Everything is computed on the *eligible subtotal*, the sum of
the covered items' amounts:

- the minimum (``min_subtotal``) is checked against it, not against the whole cart;
- a percentage (``value`` in basis points: 1,000 = 10 %) is taken of it, rounded down; a fixed
  amount (``value`` in minor units) is taken whole;
- the discount is capped by ``max_discount`` and never exceeds the eligible subtotal;
- it is shared over the covered lines in proportion to their amounts (largest remainder, so the
  shares add up exactly and none exceeds its line), which is what refunds and commission use.

Use limits (``total_cap`` uses in all, ``per_customer_limit`` per shopper) are checked apart, by
:func:`usage_refusal`, because only the order's transaction can count uses reliably (under the
voucher's row lock).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args
from uuid import UUID

from core.rules.money import split

Kind = Literal["percent", "fixed"]
Scope = Literal["cart", "vendor", "category", "products"]
FundedBy = Literal["platform", "vendor"]
KINDS: tuple[str, ...] = get_args(Kind)
SCOPES: tuple[str, ...] = get_args(Scope)
FUNDERS: tuple[str, ...] = get_args(FundedBy)
BPS_WHOLE = 10_000
# A percentage code takes at least 1 % and at most everything.
MIN_PERCENT_BPS = 100

Refusal = Literal[
    "unknown", "not_yet_valid", "expired", "exhausted", "limit_reached", "not_applicable", "below_minimum"
]
REFUSALS: tuple[str, ...] = get_args(Refusal)

# What the shopper is told, by reason.
MESSAGES: dict[str, str] = {
    "unknown": "no such voucher code",
    "not_yet_valid": "this code is not valid yet",
    "expired": "this code has expired",
    "exhausted": "this code has been fully used",
    "limit_reached": "you have already used this code as many times as it allows",
    "not_applicable": "this code does not apply to anything in your order",
    "below_minimum": "the items this code covers do not reach its minimum spend",
}


@dataclass(frozen=True, slots=True)
class Terms:
    """A voucher as the rules need it (codes, ids and bookkeeping travel alongside)."""

    kind: str
    value: int
    scope: str = "cart"
    scope_ids: frozenset[UUID] = frozenset()
    # A store's own code: only that store's items are covered.
    vendor_id: UUID | None = None
    min_subtotal: int = 0
    max_discount: int | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    per_customer_limit: int | None = None
    total_cap: int | None = None


@dataclass(frozen=True, slots=True)
class Item:
    """A line of a cart or an order: what it is, whose, and its amount (unit price x quantity)."""

    product_id: UUID
    vendor_id: UUID
    # The product's category and every ancestor of it.
    categories: frozenset[UUID]
    amount: int


@dataclass(frozen=True, slots=True)
class Discount:
    amount: int
    eligible_subtotal: int
    # Per item, in the items' order (0 for items not covered); they add up to ``amount``.
    shares: tuple[int, ...]


def covers(terms: Terms, item: Item) -> bool:
    """Whether the code applies to ``item``."""
    if terms.vendor_id is not None and item.vendor_id != terms.vendor_id:
        return False
    if terms.scope == "vendor":
        return item.vendor_id in terms.scope_ids
    if terms.scope == "category":
        return not item.categories.isdisjoint(terms.scope_ids)
    if terms.scope == "products":
        return item.product_id in terms.scope_ids
    return True


def amount_off(terms: Terms, eligible_subtotal: int) -> int:
    """What the code takes off ``eligible_subtotal`` (before any minimum is checked)."""
    if eligible_subtotal <= 0:
        return 0
    if terms.kind == "percent":
        off = eligible_subtotal * min(terms.value, BPS_WHOLE) // BPS_WHOLE
    else:
        off = terms.value
    if terms.max_discount is not None:
        off = min(off, terms.max_discount)
    return max(0, min(off, eligible_subtotal))


def window_refusal(terms: Terms, now: datetime) -> Refusal | None:
    """``not_yet_valid`` before ``starts_at``, ``expired`` from ``ends_at`` on, else None."""
    if terms.starts_at is not None and now < terms.starts_at:
        return "not_yet_valid"
    if terms.ends_at is not None and now >= terms.ends_at:
        return "expired"
    return None


def usage_refusal(terms: Terms, redeemed: int, used_by_customer: int) -> Refusal | None:
    """``exhausted`` when every use of the code is taken, ``limit_reached`` when this shopper has
    had their share, else None. ``redeemed`` and ``used_by_customer`` count uses so far."""
    if terms.total_cap is not None and redeemed >= terms.total_cap:
        return "exhausted"
    if terms.per_customer_limit is not None and used_by_customer >= terms.per_customer_limit:
        return "limit_reached"
    return None


def price(terms: Terms, items: Sequence[Item], now: datetime) -> Discount | Refusal:
    """The discount the code gives on ``items`` at ``now``, shared over them; or why it gives none
    (its window, nothing covered, below its minimum). Use limits are :func:`usage_refusal`'s."""
    refused = window_refusal(terms, now)
    if refused is not None:
        return refused
    covered = [covers(terms, item) for item in items]
    weights = [item.amount if ok else 0 for item, ok in zip(items, covered, strict=True)]
    eligible = sum(weights)
    if eligible <= 0:
        return "not_applicable"
    if eligible < terms.min_subtotal:
        return "below_minimum"
    off = amount_off(terms, eligible)
    if off <= 0:
        return "not_applicable"
    return Discount(amount=off, eligible_subtotal=eligible, shares=tuple(split(off, weights)))
