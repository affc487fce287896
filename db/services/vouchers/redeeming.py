"""A code used by an order: checked before stock is reserved, then taken under the voucher's row
lock in the order's own transaction.

``claim`` (no lock) refuses what can be told at once: an unknown or stopped code, its window,
what it covers, its minimum. ``redeem`` then locks the voucher row (``SELECT ... FOR UPDATE``),
so orders using one code take their uses one at a time: it counts the uses again (all of them
for ``total_cap``, the shopper's for ``per_customer_limit``), prices the lines again, shares the
discount over them (``order_lines.discount_amount``) and counts the use; ``record`` writes the
use against the order. When the last use is taken, the orders after it are refused with 422
``voucher_exhausted`` rather than placed at full price: the shopper asked for the discount and
is told it is gone, instead of being charged more than they expected.

Lock order: an order takes its variants' rows (stock) before the voucher's, always, so orders
never deadlock over a popular code and a scarce item.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.rules.vouchers import price, usage_refusal
from core.settings import Settings
from db.models import CartVoucher, Order, OrderLine, Voucher, VoucherRedemption
from db.services.vouchers.errors import refused
from db.services.vouchers.terms import Line, find, items_of, terms_of, uses_by

FIELD = "voucher_code"


@dataclass(frozen=True, slots=True)
class Claim:
    """The code an order is being placed with."""

    voucher_id: UUID
    # The cart's code (forgotten once the order is placed) rather than one sent with the order.
    from_cart: bool


@dataclass(frozen=True, slots=True)
class Redeemed:
    voucher_id: UUID
    amount: int
    currency: str
    from_cart: bool


def _lines(lines: Sequence[OrderLine]) -> list[Line]:
    return [Line(line.product_id, line.vendor_id, line.line_total_amount) for line in lines]


async def _check(session: AsyncSession, voucher: Voucher, lines: Sequence[OrderLine]) -> list[int]:
    """The discount's share per line, or the refusal (422 naming ``voucher_code``)."""
    terms = terms_of(voucher)
    found = price(terms, await items_of(session, terms, _lines(lines)), datetime.now(UTC))
    if isinstance(found, str):
        raise refused(found, FIELD)
    return list(found.shares)


async def claim(
    session: AsyncSession,
    settings: Settings,
    user_id: UUID,
    code: str | None,
    from_cart: bool,
    lines: Sequence[OrderLine],
) -> Claim | None:
    """The code to place the order with: ``code`` when sent, else the cart's when the cart is
    being ordered; None when there is none. Checked against ``lines`` (priced, not yet reserved).

    Raises:
        VoucherRefused: unknown or stopped, not valid yet, expired, covering nothing of the order
            or below its minimum (422, field ``voucher_code``).
    """
    if code is not None:
        voucher = await find(session, settings, code)
        if voucher is None:
            raise refused("unknown", FIELD)
        cart_code = False
    elif from_cart:
        voucher = await session.scalar(
            select(Voucher)
            .join(CartVoucher, CartVoucher.voucher_id == Voucher.id)
            .where(CartVoucher.user_id == user_id)
        )
        if voucher is None:
            return None
        if not voucher.active or voucher.currency != settings.currency:
            raise refused("unknown", FIELD)
        cart_code = True
    else:
        return None
    await _check(session, voucher, lines)
    return Claim(voucher_id=voucher.id, from_cart=cart_code)


async def redeem(
    session: AsyncSession, user_id: UUID, claimed: Claim, lines: Sequence[OrderLine]
) -> Redeemed:
    """Take one use of the claimed code for an order of ``lines`` (stock already reserved): sets
    each line's ``discount_amount`` and counts the use. The voucher stays locked until the order's
    transaction ends.

    Raises:
        VoucherRefused: stopped meanwhile (``voucher_unknown``), every use taken
            (``voucher_exhausted``), this shopper's uses taken (``voucher_limit_reached``), or no
            longer applicable (422, field ``voucher_code``).
    """
    voucher = await session.scalar(
        select(Voucher)
        .where(Voucher.id == claimed.voucher_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if voucher is None or not voucher.active:
        raise refused("unknown", FIELD)
    terms = terms_of(voucher)
    used = await uses_by(session, voucher.id, user_id) if terms.per_customer_limit is not None else 0
    over = usage_refusal(terms, voucher.redeemed_count, used)
    if over is not None:
        raise refused(over, FIELD)
    shares = await _check(session, voucher, lines)
    for line, share in zip(lines, shares, strict=True):
        line.discount_amount = share
    voucher.redeemed_count += 1
    return Redeemed(
        voucher_id=voucher.id, amount=sum(shares), currency=voucher.currency, from_cart=claimed.from_cart
    )


async def record(session: AsyncSession, redeemed: Redeemed | None, order: Order) -> None:
    """Write the use against ``order`` (flushed); a cart code used by it leaves the cart. Nothing
    when the order used no code."""
    if redeemed is None:
        return
    session.add(
        VoucherRedemption(
            voucher_id=redeemed.voucher_id,
            user_id=order.user_id,
            order_id=order.id,
            amount=redeemed.amount,
            currency=redeemed.currency,
        )
    )
    if redeemed.from_cart:
        await session.execute(delete(CartVoucher).where(CartVoucher.user_id == order.user_id))
