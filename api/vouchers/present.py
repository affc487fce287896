"""Vouchers shaped into their response Structs, and issuers' bodies into the service's terms."""

from __future__ import annotations

from api.common import money
from api.vouchers import schemas
from core.errors import InvalidInput
from db.models import Voucher
from db.services.vouchers.issuing import VoucherIn


def voucher_in(data: schemas.VoucherCreate, currency: str) -> VoucherIn:
    """The terms as the service takes them; amounts must be in the marketplace currency.

    Raises:
        InvalidInput: an amount in another currency (422, naming it).
    """
    errors = [
        {"field": f"{name}.currency", "message": f"must be {currency}"}
        for name, value in (("min_subtotal", data.min_subtotal), ("max_discount", data.max_discount))
        if value is not None and value.currency.upper() != currency
    ]
    if data.max_discount is not None and data.max_discount.amount == 0:
        errors.append({"field": "max_discount.amount", "message": "must be above 0"})
    if errors:
        raise InvalidInput("Some amounts are not valid.", errors=errors)
    return VoucherIn(
        code=data.code,
        kind=data.kind,
        value=data.value,
        scope=data.scope,
        scope_ids=tuple(data.scope_ids),
        min_subtotal=data.min_subtotal.amount if data.min_subtotal else 0,
        max_discount=data.max_discount.amount if data.max_discount else None,
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        per_customer_limit=data.per_customer_limit,
        total_cap=data.total_cap,
        active=data.active,
    )


def voucher_out(voucher: Voucher) -> schemas.Voucher:
    currency = voucher.currency
    return schemas.Voucher(
        id=voucher.id,
        code=voucher.code,
        funded_by=voucher.funded_by,  # type: ignore[arg-type]  # constrained by a CHECK constraint
        vendor_id=voucher.vendor_id,
        kind=voucher.kind,  # type: ignore[arg-type]  # constrained by a CHECK constraint
        value=voucher.value,
        scope=voucher.scope,  # type: ignore[arg-type]  # constrained by a CHECK constraint
        scope_ids=list(voucher.scope_ids),
        min_subtotal=money(voucher.min_subtotal, currency),
        max_discount=money(voucher.max_discount, currency) if voucher.max_discount is not None else None,
        starts_at=voucher.starts_at,
        ends_at=voucher.ends_at,
        per_customer_limit=voucher.per_customer_limit,
        total_cap=voucher.total_cap,
        redeemed_count=voucher.redeemed_count,
        active=voucher.active,
        created_at=voucher.created_at,
    )
