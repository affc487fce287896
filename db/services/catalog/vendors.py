"""Stores: one per vendor user; staff can suspend one (its products leave the listing)."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import PermissionDenied
from db.models import Vendor
from db.services.catalog.errors import (
    StoreAlreadyExists,
    StoreNameTaken,
    StoreRequired,
    StoreSuspended,
    VendorNotFound,
)
from db.services.catalog.listing_refresh import refresh_listing
from db.services.catalog.text import slugify
from db.services.identity.standing import StandingListener, revoke_access


async def create_store(
    session: AsyncSession, *, owner_id: UUID, role: str, name: str, description: str | None
) -> Vendor:
    """Open the caller's store.

    Raises:
        PermissionDenied: the caller is not a vendor (403).
        StoreAlreadyExists: the caller already has a store (409).
        StoreNameTaken: another store has this name (409).
    """
    if role != "vendor":
        raise PermissionDenied("Only vendor accounts can open a store.")
    if await session.scalar(select(Vendor.id).where(Vendor.owner_id == owner_id)) is not None:
        raise StoreAlreadyExists("You already have a store.")
    clean = " ".join(name.split())
    vendor = Vendor(owner_id=owner_id, name=clean, slug=slugify(clean), description=description)
    session.add(vendor)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        if "owner_id" in str(exc.orig):
            raise StoreAlreadyExists("You already have a store.") from None
        raise StoreNameTaken("Another store already uses this name.") from None
    return vendor


async def get_store(session: AsyncSession, vendor_id: UUID, *, public: bool = True) -> Vendor:
    """Raises VendorNotFound (suspended stores are not public)."""
    vendor = await session.get(Vendor, vendor_id)
    if vendor is None or (public and vendor.status != "active"):
        raise VendorNotFound()
    return vendor


async def store_of(session: AsyncSession, owner_id: UUID, *, for_update: bool = False) -> Vendor:
    """The caller's own store.

    Raises:
        StoreRequired: no store yet (403). StoreSuspended: suspended by staff (403).
    """
    stmt = select(Vendor).where(Vendor.owner_id == owner_id)
    vendor = await session.scalar(stmt.with_for_update() if for_update else stmt)
    if vendor is None:
        raise StoreRequired("Open your store first (POST /api/v1/vendors).")
    if vendor.status != "active":
        raise StoreSuspended("Your store is suspended; contact support.")
    return vendor


async def set_store_status(
    session: AsyncSession, vendor_id: UUID, status: str, listener: StandingListener | None = None
) -> Vendor:
    """Suspend or reinstate a store; its products leave or re-enter the public listing.

    Suspending also refuses the access tokens its owner holds at once, so what they could do
    with the store stops now; signing in again gives a token on which store routes answer 403.

    Raises:
        VendorNotFound (404).
    """
    vendor = await session.get(Vendor, vendor_id, with_for_update=True)
    if vendor is None:
        raise VendorNotFound()
    if status == "suspended" and vendor.status != "suspended":
        await revoke_access(session, [vendor.owner_id], listener)
    vendor.status = status
    await session.flush()
    await refresh_listing(session, vendor_id=vendor.id)
    return vendor
