"""What an order's money does in the ledger: captured, its fee, refunded, and released to vendors.

One order's life (single vendor; lines 10,000, shipping 1,500, commission 10 % = 1,000, fee 165):

    captured     Dr provider_clearing 11,500 | Cr vendor_pending 10,500 | Cr platform_commission 1,000
    fee          Dr provider_fees 165        | Cr provider_clearing 165
    refund asked Dr vendor_pending  4,500 + Dr platform_commission 500 | Cr refunds_payable 5,000
    refund sent  Dr refunds_payable 5,000    | Cr provider_clearing 5,000
    released     Dr vendor_pending  6,000    | Cr vendor_available 6,000   (return window over)

A vendor's net for a fulfilment is its lines' paid amounts (less vendor-funded discounts) plus
its shipping, less the commission on the lines; a platform-funded discount is the platform's
expense (``platform_promotions``), not the vendor's. Every vendor, commission and promotion leg
carries its fulfilment, so earnings are released, refunds reversed and revenue reported per
fulfilment (and so per vendor).
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.rules.money import commission, split
from db.models import (
    Fulfilment,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Order,
    OrderLine,
    Payment,
    Refund,
    Return,
    Voucher,
)
from db.services.ledger.accounts import (
    PLATFORM_COMMISSION,
    PLATFORM_PROMOTIONS,
    PROVIDER_CLEARING,
    PROVIDER_FEES,
    REFUNDS_PAYABLE,
    platform,
    vendor_available,
    vendor_pending,
)
from db.services.ledger.posting import Leg, Refs, post


@dataclass(frozen=True, slots=True)
class Part:
    """One fulfilment's money: what the shopper paid for it and the platform's commission."""

    fulfilment: Fulfilment
    paid: int  # lines less their discounts, plus shipping
    commission: int
    platform_discount: int  # discounts on its lines the platform pays for

    @property
    def vendor_net(self) -> int:
        return self.paid + self.platform_discount - self.commission


async def parts_of(session: AsyncSession, order_id: UUID) -> list[Part]:
    """The order's fulfilments with what was paid for each and their commission."""
    fulfilments = list(
        (
            await session.scalars(
                select(Fulfilment).where(Fulfilment.order_id == order_id).order_by(Fulfilment.id)
            )
        ).all()
    )
    lines = (await session.scalars(select(OrderLine).where(OrderLine.order_id == order_id))).all()
    # A platform voucher's discount is the platform's expense: its vendors earn the full price.
    funded_by = await session.scalar(
        select(Voucher.funded_by).join(Order, Order.voucher_id == Voucher.id).where(Order.id == order_id)
    )
    parts = []
    for f in fulfilments:
        own = [line for line in lines if line.fulfilment_id == f.id]
        paid_lines = [line.line_total_amount - line.discount_amount for line in own]
        parts.append(
            Part(
                fulfilment=f,
                paid=sum(paid_lines) + f.shipping_amount,
                commission=sum(
                    commission(p, line.commission_bps) for p, line in zip(paid_lines, own, strict=True)
                ),
                platform_discount=sum(line.discount_amount for line in own) if funded_by == "platform" else 0,
            )
        )
    return parts


async def record_capture(session: AsyncSession, payment: Payment, order: Order) -> None:
    """The shopper's payment for ``order`` reached the provider: vendors' earnings become pending
    and the platform's commission is earned (once per payment)."""
    parts = await parts_of(session, order.id)
    legs = [Leg(platform(PROVIDER_CLEARING), payment.amount)]
    for part in parts:
        legs.append(Leg(vendor_pending(part.fulfilment.vendor_id), -part.vendor_net, part.fulfilment.id))
        legs.append(Leg(platform(PLATFORM_COMMISSION), -part.commission, part.fulfilment.id))
        legs.append(Leg(platform(PLATFORM_PROMOTIONS), part.platform_discount, part.fulfilment.id))
    await post(
        session,
        key=f"payment:{payment.id}:captured",
        kind="payment_captured",
        currency=payment.currency,
        description=f"payment {payment.reference} for order {order.id}",
        legs=legs,
        refs=Refs(order_id=order.id, payment_id=payment.id),
        occurred_at=payment.paid_at,
    )
    if payment.fee_amount:
        await post(
            session,
            key=f"payment:{payment.id}:fee",
            kind="provider_fee",
            currency=payment.currency,
            description=f"provider fee on {payment.reference}",
            # Shared over the vendors' parts by what was paid for each, for revenue per vendor.
            legs=[
                *(
                    Leg(platform(PROVIDER_FEES), share, part.fulfilment.id)
                    for part, share in zip(
                        parts, split(payment.fee_amount, [p.paid for p in parts]), strict=True
                    )
                ),
                Leg(platform(PROVIDER_CLEARING), -payment.fee_amount),
            ],
            refs=Refs(order_id=order.id, payment_id=payment.id),
            occurred_at=payment.paid_at,
        )


async def record_unapplied(session: AsyncSession, payment: Payment) -> None:
    """A charge that no order took (cancelled, or stock gone after expiry): owed back whole."""
    await post(
        session,
        key=f"payment:{payment.id}:unapplied",
        kind="payment_unapplied",
        currency=payment.currency,
        description=f"payment {payment.reference} could not be applied; refunded",
        legs=[
            Leg(platform(PROVIDER_CLEARING), payment.amount),
            Leg(platform(REFUNDS_PAYABLE), -payment.amount),
        ],
        refs=Refs(order_id=payment.order_id, payment_id=payment.id),
        occurred_at=payment.paid_at,
    )


async def _captured(session: AsyncSession, payment_id: UUID) -> bool:
    found = await session.scalar(
        select(LedgerTransaction.id).where(LedgerTransaction.key == f"payment:{payment_id}:captured")
    )
    return found is not None


async def _fulfilment_of_refund(session: AsyncSession, refund: Refund) -> UUID | None:
    if refund.fulfilment_id is not None:
        return refund.fulfilment_id
    if refund.return_id is not None:
        return await session.scalar(select(Return.fulfilment_id).where(Return.id == refund.return_id))
    return None


async def _released(session: AsyncSession, fulfilment_id: UUID) -> bool:
    key = f"fulfilment:{fulfilment_id}:released"
    return (
        await session.scalar(select(LedgerTransaction.id).where(LedgerTransaction.key == key))
    ) is not None


async def record_refund_asked(session: AsyncSession, refund: Refund) -> None:
    """A refund was asked for: the vendors' earnings and the commission behind it are reversed
    (per fulfilment, in proportion to what each was paid), and the amount is owed to the shopper.
    What a platform voucher paid towards the refunded part comes back to the platform too, so a
    vendor keeps nothing of an item given back."""
    legs = [Leg(platform(REFUNDS_PAYABLE), -refund.amount)]
    if not await _captured(session, refund.payment_id):
        return  # a charge no order took: owed back already (record_unapplied)
    parts = await parts_of(session, refund.order_id)
    target = await _fulfilment_of_refund(session, refund)
    chosen = [p for p in parts if p.fulfilment.id == target] if target is not None else parts
    shares = split(refund.amount, [p.paid for p in chosen])
    for part, amount in zip(chosen, shares, strict=True):
        taken = commission(amount, _rate_bps(part))
        promotion = (
            min(part.platform_discount, part.platform_discount * amount // part.paid) if part.paid else 0
        )
        vendor = vendor_available if await _released(session, part.fulfilment.id) else vendor_pending
        legs.append(Leg(vendor(part.fulfilment.vendor_id), amount + promotion - taken, part.fulfilment.id))
        legs.append(Leg(platform(PLATFORM_COMMISSION), taken, part.fulfilment.id))
        legs.append(Leg(platform(PLATFORM_PROMOTIONS), -promotion, part.fulfilment.id))
    await post(
        session,
        key=f"refund:{refund.id}:asked",
        kind="refund_asked",
        currency=refund.currency,
        description=f"refund: {refund.reason}",
        legs=legs,
        refs=Refs(order_id=refund.order_id, payment_id=refund.payment_id, refund_id=refund.id),
    )


def _rate_bps(part: Part) -> int:
    """The fulfilment's effective commission rate (its commission over what was paid for it)."""
    return part.commission * 10_000 // part.paid if part.paid else 0


async def record_refund_sent(session: AsyncSession, refund: Refund) -> None:
    """The provider gave the money back."""
    await post(
        session,
        key=f"refund:{refund.id}:sent",
        kind="refund_sent",
        currency=refund.currency,
        description=f"refund sent: {refund.reason}",
        legs=[
            Leg(platform(REFUNDS_PAYABLE), refund.amount),
            Leg(platform(PROVIDER_CLEARING), -refund.amount),
        ],
        refs=Refs(order_id=refund.order_id, payment_id=refund.payment_id, refund_id=refund.id),
        occurred_at=refund.processed_at,
    )


async def pending_of(session: AsyncSession, fulfilment: Fulfilment) -> int:
    """The fulfilment's earnings still pending (credits are negative: returned as a positive)."""
    total = await session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0))
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(
            LedgerEntry.fulfilment_id == fulfilment.id,
            LedgerAccount.code == vendor_pending(fulfilment.vendor_id).code,
        )
    )
    return -int(total or 0)


async def release(session: AsyncSession, fulfilment: Fulfilment) -> int:
    """Make a fulfilment's pending earnings available to its vendor (once); the amount moved.

    The release is recorded even when nothing is pending (everything refunded), so the
    fulfilment is not found due again.
    """
    amount = await pending_of(session, fulfilment)
    posted = await post(
        session,
        key=f"fulfilment:{fulfilment.id}:released",
        kind="earnings_released",
        currency=fulfilment.currency,
        description="earnings released: return window over",
        legs=[
            Leg(vendor_pending(fulfilment.vendor_id), amount, fulfilment.id),
            Leg(vendor_available(fulfilment.vendor_id), -amount, fulfilment.id),
        ],
        refs=Refs(order_id=fulfilment.order_id),
    )
    return amount if posted is not None else 0
