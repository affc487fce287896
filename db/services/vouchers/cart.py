"""A code applied to the shopper's cart: checked when applied, priced whenever the cart is read,
and used when the cart is ordered (``redeeming``).

Applying checks everything the order will check (the code exists and is live, its window, its
uses, what it covers and its minimum) so the shopper learns at once why a code does not work.
Once applied, the cart can change; a code that no longer applies stays on the cart with the
reason shown, and ordering the cart with it is refused until it applies again or is removed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.rules.vouchers import MESSAGES, Discount, Item, Refusal, Terms, price, usage_refusal
from core.settings import Settings
from db.models import CartVoucher, Voucher
from db.services.orders.cart import CartLine, cart_lines
from db.services.vouchers.errors import refused
from db.services.vouchers.terms import Line, find, items_of, terms_of, uses_by


@dataclass(frozen=True, slots=True)
class CartDiscount:
    """The cart's code and what it takes off the cart now (0 with ``problem`` when nothing)."""

    code: str
    amount: int
    problem: str | None = None


def _lines(lines: Sequence[CartLine]) -> list[Line]:
    return [Line(line.product_id, line.vendor_id, line.unit_price * line.quantity) for line in lines]


async def _price(
    session: AsyncSession, voucher: Voucher, user_id: UUID, lines: Sequence[CartLine]
) -> Discount | Refusal:
    """What ``voucher`` takes off the cart now, or why nothing (uses counted without a lock: the
    order counts them again under the voucher's lock)."""
    terms = terms_of(voucher)
    found = price(terms, await items_of(session, terms, _lines(lines)), datetime.now(UTC))
    if isinstance(found, str):
        return found
    if terms.per_customer_limit is None and terms.total_cap is None:
        return found
    used = await uses_by(session, voucher.id, user_id) if terms.per_customer_limit is not None else 0
    return usage_refusal(terms, voucher.redeemed_count, used) or found


def cart_discount(
    terms: Terms,
    *,
    code: str,
    usable: bool,
    redeemed: int,
    used: int,
    lines: Sequence[CartLine],
    chains: Mapping[UUID, frozenset[UUID]],
) -> CartDiscount:
    """What a code read with the cart (db.services.orders.cart_reads) takes off ``lines`` now, as
    :func:`discount_of` prices it: ``usable`` false for a stopped code or one in another currency;
    ``chains`` each product's categories (needed for a category code only)."""
    if not usable:
        return CartDiscount(code=code, amount=0, problem=MESSAGES["unknown"])
    items = [
        Item(
            product_id=line.product_id,
            vendor_id=line.vendor_id,
            categories=chains.get(line.product_id, frozenset()),
            amount=line.unit_price * line.quantity,
        )
        for line in lines
    ]
    found = price(terms, items, datetime.now(UTC))
    if not isinstance(found, str):
        found = usage_refusal(terms, redeemed, used) or found
    if isinstance(found, str):
        return CartDiscount(code=code, amount=0, problem=MESSAGES[found])
    return CartDiscount(code=code, amount=found.amount)


async def apply(session: AsyncSession, settings: Settings, user_id: UUID, code: str) -> Voucher:
    """Apply ``code`` to the caller's cart, replacing any code applied before.

    Raises:
        VoucherRefused: unknown or stopped, not valid yet, expired, fully used, used up by this
            shopper, covering nothing in the cart, or below its minimum (422, field ``code``).
    """
    voucher = await find(session, settings, code)
    if voucher is None:
        raise refused("unknown", "code")
    found = await _price(session, voucher, user_id, await cart_lines(session, user_id))
    if isinstance(found, str):
        raise refused(found, "code")
    await session.execute(
        insert(CartVoucher)
        .values(user_id=user_id, voucher_id=voucher.id)
        .on_conflict_do_update(
            constraint="uq_cart_vouchers_user",
            set_={"voucher_id": voucher.id, "updated_at": func.now()},
        )
    )
    return voucher


async def remove(session: AsyncSession, user_id: UUID) -> None:
    """Take the code off the caller's cart (nothing happens when there is none)."""
    await session.execute(delete(CartVoucher).where(CartVoucher.user_id == user_id))


async def applied(session: AsyncSession, user_id: UUID) -> Voucher | None:
    """The code on the caller's cart, whatever its state."""
    return await session.scalar(
        select(Voucher)
        .join(CartVoucher, CartVoucher.voucher_id == Voucher.id)
        .where(CartVoucher.user_id == user_id)
    )


async def discount_of(
    session: AsyncSession, settings: Settings, user_id: UUID, lines: Sequence[CartLine]
) -> CartDiscount | None:
    """The cart's code and what it takes off ``lines`` now (the cart as just read); None when the
    cart has no code."""
    voucher = await applied(session, user_id)
    if voucher is None:
        return None
    if not voucher.active or voucher.currency != settings.currency:
        return CartDiscount(code=voucher.code, amount=0, problem=MESSAGES["unknown"])
    found = await _price(session, voucher, user_id, lines)
    if isinstance(found, str):
        return CartDiscount(code=voucher.code, amount=0, problem=MESSAGES[found])
    return CartDiscount(code=voucher.code, amount=found.amount)
