"""Issuing codes: a store's own (``/vendor/vouchers``) and the platform's (``/staff/vouchers``).

A store's code is funded by the store and covers only its own items: its scope may name its own
store, categories, or its own products (another store's product is "no such product", as for any
id that is not the caller's). The platform's codes may cover anything. Codes are upper-cased and
unique without regard to case across the whole shop, since shoppers type them in one box.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.rules.vouchers import BPS_WHOLE, MIN_PERCENT_BPS
from core.settings import Settings
from db.models import Category, Product, Vendor, Voucher
from db.ownership import get_owned
from db.pagination import Page, keyset_page
from db.services.vouchers.errors import InvalidVoucher, VoucherNotFound
from db.services.vouchers.terms import normalise

MAX_SCOPE_IDS = 100


@dataclass(frozen=True, slots=True)
class VoucherIn:
    """A code as its issuer sends it (amounts in minor units of the shop's currency)."""

    code: str
    kind: str
    value: int
    scope: str = "cart"
    scope_ids: tuple[UUID, ...] = ()
    min_subtotal: int = 0
    max_discount: int | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    per_customer_limit: int | None = None
    total_cap: int | None = None
    active: bool = True


def _check_terms(data: VoucherIn, starts_at: datetime, now: datetime) -> list[dict[str, str]]:
    errors = []
    if data.kind == "percent" and not MIN_PERCENT_BPS <= data.value <= BPS_WHOLE:
        errors.append(
            {"field": "value", "message": "a percentage is 100 to 10000 basis points (1 % to 100 %)"}
        )
    if data.kind == "fixed" and data.value <= 0:
        errors.append({"field": "value", "message": "a fixed amount must be more than 0"})
    if data.ends_at is not None and data.ends_at <= starts_at:
        errors.append({"field": "ends_at", "message": "must be after starts_at"})
    elif data.ends_at is not None and data.ends_at <= now:
        errors.append({"field": "ends_at", "message": "must be in the future"})
    if data.scope == "cart" and data.scope_ids:
        errors.append({"field": "scope_ids", "message": "a whole-cart code names no ids"})
    if data.scope != "cart" and not data.scope_ids:
        errors.append({"field": "scope_ids", "message": f"name the {data.scope} this code covers"})
    if len(set(data.scope_ids)) > MAX_SCOPE_IDS:
        errors.append({"field": "scope_ids", "message": f"at most {MAX_SCOPE_IDS} ids"})
    return errors


async def _missing_ids(session: AsyncSession, data: VoucherIn, store: Vendor | None) -> list[dict[str, str]]:
    """Scope ids that name nothing (or, for a store's code, nothing of that store's)."""
    ids = list(dict.fromkeys(data.scope_ids))
    if data.scope == "vendor":
        if store is not None:
            bad = [i for i in ids if i != store.id]
            return (
                [{"field": "scope_ids", "message": "a store's code covers only its own store"}] if bad else []
            )
        found = set((await session.scalars(select(Vendor.id).where(Vendor.id.in_(ids)))).all())
    elif data.scope == "category":
        found = set((await session.scalars(select(Category.id).where(Category.id.in_(ids)))).all())
    elif data.scope == "products":
        stmt = select(Product.id).where(Product.id.in_(ids))
        if store is not None:
            stmt = stmt.where(Product.vendor_id == store.id)
        found = set((await session.scalars(stmt)).all())
    else:
        return []
    names = {"vendor": "store", "category": "category", "products": "product"}
    return [
        {"field": f"scope_ids[{index}]", "message": f"no such {names[data.scope]}"}
        for index, scope_id in enumerate(data.scope_ids)
        if scope_id not in found
    ]


async def issue(
    session: AsyncSession, settings: Settings, data: VoucherIn, *, store: Vendor | None, issued_by: UUID
) -> Voucher:
    """Create a code funded by ``store`` (its own items only) or, when None, by the platform.

    Raises:
        InvalidVoucher: a percentage outside 1-100 %, a fixed amount of 0, a window that ends
            before it starts or has passed, scope ids missing, unknown or not the store's, or a
            code already in use (422, naming each field).
    """
    now = datetime.now(UTC)
    starts_at = data.starts_at or now
    errors = _check_terms(data, starts_at, now)
    if not errors:
        errors = await _missing_ids(session, data, store)
    if errors:
        raise InvalidVoucher("Some of the voucher's terms are not acceptable.", errors=errors)
    voucher = Voucher(
        code=normalise(data.code),
        funded_by="vendor" if store is not None else "platform",
        vendor_id=store.id if store is not None else None,
        kind=data.kind,
        value=data.value,
        currency=settings.currency,
        min_subtotal=data.min_subtotal,
        max_discount=data.max_discount,
        starts_at=starts_at,
        ends_at=data.ends_at,
        scope=data.scope,
        scope_ids=list(dict.fromkeys(data.scope_ids)),
        per_customer_limit=data.per_customer_limit,
        total_cap=data.total_cap,
        redeemed_count=0,
        active=data.active,
        created_by=issued_by,
    )
    session.add(voucher)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        # The only unique key is the code; two issuers racing for one code get this too.
        raise InvalidVoucher(
            "This code is already in use.", errors=[{"field": "code", "message": "already in use"}]
        ) from None
    return voucher


async def list_vouchers(
    session: AsyncSession,
    *,
    store: Vendor | None,
    funded_by: str = "platform",
    limit: int,
    cursor: str | None,
) -> Page[Voucher]:
    """A store's own codes (``store``), else the platform's or all stores' (``funded_by``),
    newest first."""
    stmt = select(Voucher)
    if store is not None:
        stmt = stmt.where(Voucher.vendor_id == store.id)
    else:
        stmt = stmt.where(Voucher.funded_by == funded_by)
    return await keyset_page(session, stmt, Voucher.id, limit=limit, cursor=cursor)


async def set_active(
    session: AsyncSession, voucher_id: UUID, active: bool, *, store: Vendor | None
) -> Voucher:
    """Stop or restart a code: a store its own (another's is 404), staff any. Uses already taken
    stay with their orders; a stopped code cannot be applied or ordered with.

    Raises:
        VoucherNotFound: no such code, or another store's (404).
    """
    if store is not None:
        voucher = await get_owned(
            session,
            Voucher,
            voucher_id,
            Voucher.vendor_id,
            store.id,
            not_found=VoucherNotFound,
            for_update=True,
        )
    else:
        found = await session.scalar(select(Voucher).where(Voucher.id == voucher_id).with_for_update())
        if found is None:
            raise VoucherNotFound()
        voucher = found
    voucher.active = active
    await session.flush()
    return voucher
