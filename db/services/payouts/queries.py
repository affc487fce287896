"""Reading payouts and balances: a vendor's own (``/vendor/...``) and everyone's (``/staff/payouts``)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Payout, Vendor
from db.pagination import Page, keyset_page
from db.services.ledger import payouts as ledger

OPEN = ("pending", "processing")


@dataclass(frozen=True, slots=True)
class Balance:
    """A vendor's money, in minor units of ``currency``."""

    currency: str
    # Earnings still inside their return windows.
    pending: int
    # What can be paid out now (negative only if refunds taken after release exceed it).
    available: int
    # Payouts made and not settled yet (pending or processing).
    in_transit: int


@dataclass(frozen=True, slots=True)
class StaffPayout:
    payout: Payout
    vendor_name: str
    vendor_on_hold: bool


async def balance_of(session: AsyncSession, vendor_id: UUID, currency: str) -> Balance:
    in_transit = await session.scalar(
        select(func.coalesce(func.sum(Payout.amount), 0)).where(
            Payout.vendor_id == vendor_id, Payout.status.in_(OPEN), Payout.currency == currency
        )
    )
    return Balance(
        currency=currency,
        pending=await ledger.pending_of(session, vendor_id, currency),
        available=await ledger.available_of(session, vendor_id, currency),
        in_transit=int(in_transit or 0),
    )


async def payouts_of_vendor(
    session: AsyncSession, vendor_id: UUID, *, status: str | None, limit: int, cursor: str | None
) -> Page[Payout]:
    """The vendor's payouts, newest first.

    Raises:
        InvalidInput: a cursor this did not make (422).
    """
    stmt = select(Payout).where(Payout.vendor_id == vendor_id)
    if status is not None:
        stmt = stmt.where(Payout.status == status)
    return await keyset_page(session, stmt, Payout.id, limit=limit, cursor=cursor)


async def all_payouts(
    session: AsyncSession, *, status: str | None, vendor_id: UUID | None, limit: int, cursor: str | None
) -> Page[StaffPayout]:
    """Every vendor's payouts, newest first, narrowed by status and vendor.

    Raises:
        InvalidInput: a cursor this did not make (422).
    """
    stmt = select(Payout)
    if status is not None:
        stmt = stmt.where(Payout.status == status)
    if vendor_id is not None:
        stmt = stmt.where(Payout.vendor_id == vendor_id)
    page = await keyset_page(session, stmt, Payout.id, limit=limit, cursor=cursor)
    vendor_ids = {p.vendor_id for p in page.items}
    rows = await session.execute(
        select(Vendor.id, Vendor.name, Vendor.payouts_on_hold).where(Vendor.id.in_(vendor_ids))
    )
    vendors = {vendor_id: (name, held) for vendor_id, name, held in rows.all()}
    return Page(
        items=[StaffPayout(p, *vendors[p.vendor_id]) for p in page.items], next_cursor=page.next_cursor
    )
