"""What applying and redeeming share: a code looked up, its terms for the rules, the lines it is
priced on, and how often it was used."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from core.rules.vouchers import Item, Terms
from core.settings import Settings
from db.models import Voucher, VoucherRedemption

# Each product's category and every ancestor of it.
_CATEGORY_CHAINS = text(
    """
    WITH RECURSIVE up(product_id, id, parent_id) AS (
        SELECT p.id, c.id, c.parent_id
        FROM products p JOIN categories c ON c.id = p.category_id
        WHERE p.id = ANY(CAST(:ids AS uuid[]))
        UNION ALL
        SELECT up.product_id, c.id, c.parent_id FROM categories c JOIN up ON c.id = up.parent_id
    )
    SELECT product_id, id FROM up
    """
)


@dataclass(frozen=True, slots=True)
class Line:
    """A cart or order line as a code is priced on it."""

    product_id: UUID
    vendor_id: UUID
    amount: int


def normalise(code: str) -> str:
    """Codes are kept upper-cased, so shoppers may type them any way."""
    return code.strip().upper()


async def find(session: AsyncSession, settings: Settings, code: str) -> Voucher | None:
    """The live code ``code`` (any case): None when there is none, it was stopped, or it is in
    another currency than the shop's."""
    voucher = await session.scalar(select(Voucher).where(Voucher.code == normalise(code)))
    if voucher is None or not voucher.active or voucher.currency != settings.currency:
        return None
    return voucher


def terms_of(voucher: Voucher) -> Terms:
    return Terms(
        kind=voucher.kind,
        value=voucher.value,
        scope=voucher.scope,
        scope_ids=frozenset(voucher.scope_ids),
        vendor_id=voucher.vendor_id,
        min_subtotal=voucher.min_subtotal,
        max_discount=voucher.max_discount,
        starts_at=voucher.starts_at,
        ends_at=voucher.ends_at,
        per_customer_limit=voucher.per_customer_limit,
        total_cap=voucher.total_cap,
    )


async def items_of(session: AsyncSession, terms: Terms, lines: Sequence[Line]) -> list[Item]:
    """The lines as the rules take them; categories are looked up only for a category code."""
    chains: dict[UUID, set[UUID]] = {}
    if terms.scope == "category" and lines:
        rows = await session.execute(_CATEGORY_CHAINS, {"ids": list({line.product_id for line in lines})})
        for product_id, category_id in rows.all():
            chains.setdefault(product_id, set()).add(category_id)
    return [
        Item(
            product_id=line.product_id,
            vendor_id=line.vendor_id,
            categories=frozenset(chains.get(line.product_id, ())),
            amount=line.amount,
        )
        for line in lines
    ]


async def uses_by(session: AsyncSession, voucher_id: UUID, user_id: UUID) -> int:
    """How many orders ``user_id`` placed with the code."""
    count = await session.scalar(
        select(func.count())
        .select_from(VoucherRedemption)
        .where(VoucherRedemption.voucher_id == voucher_id, VoucherRedemption.user_id == user_id)
    )
    return int(count or 0)
