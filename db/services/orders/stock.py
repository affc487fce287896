"""Stock movements of orders: reserve on placing, sell on payment, release on cancel/expiry.

Each movement is one conditional UPDATE per variant, in variant-id order (so two orders that
share variants always lock them in the same order and cannot deadlock). A reservation only
succeeds where ``stock >= quantity`` at the moment the row is locked, so concurrent buyers can
never take more than there is: the loser sees zero rows updated and the whole order rolls back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from core.page_versions import touch_product

_RESERVE = text(
    "UPDATE variants SET stock = stock - :q, reserved = reserved + :q, updated_at = now() "
    "WHERE id = :id AND stock >= :q RETURNING product_id"
)
_RELEASE = text(
    "UPDATE variants SET stock = stock + :q, reserved = reserved - :q, updated_at = now() "
    "WHERE id = :id RETURNING product_id"
)
_SELL = text("UPDATE variants SET reserved = reserved - :q, updated_at = now() WHERE id = :id")
_RESTOCK = text(
    "UPDATE variants SET stock = stock + :q, updated_at = now() WHERE id = :id RETURNING product_id"
)
# The listing's in_stock flag, only where it changes (no write, no lock otherwise).
_REFRESH_IN_STOCK = text(
    """
    UPDATE products AS p SET in_stock = s.in_stock, updated_at = now()
    FROM (
        SELECT pid AS id,
               EXISTS (SELECT 1 FROM variants v WHERE v.product_id = pid AND v.stock > 0) AS in_stock
        FROM unnest(CAST(:ids AS uuid[])) AS pid
    ) AS s
    WHERE p.id = s.id AND p.in_stock IS DISTINCT FROM s.in_stock
    RETURNING p.id
    """
)


def _ordered(quantities: Mapping[UUID, int]) -> list[tuple[UUID, int]]:
    return sorted(quantities.items(), key=lambda item: item[0])


async def reserve(session: AsyncSession, quantities: Mapping[UUID, int]) -> list[UUID] | None:
    """Move ``quantities`` (variant id -> units) from stock to reserved, all or nothing.

    Returns the variant ids that had too little stock (None when everything was reserved). On
    a shortfall the caller must roll back: the lines reserved before it are still held by this
    transaction.
    """
    short: list[UUID] = []
    products: set[UUID] = set()
    for variant_id, quantity in _ordered(quantities):
        product_id = await session.scalar(_RESERVE, {"id": variant_id, "q": quantity})
        if product_id is None:
            short.append(variant_id)
        else:
            products.add(product_id)
    if short:
        return short
    await refresh_in_stock(session, products)
    return None


async def release(session: AsyncSession, quantities: Mapping[UUID, int]) -> None:
    """Give reserved units back to stock (an unpaid order cancelled or expired)."""
    products = {
        pid
        for variant_id, quantity in _ordered(quantities)
        if (pid := await session.scalar(_RELEASE, {"id": variant_id, "q": quantity})) is not None
    }
    await refresh_in_stock(session, products)


async def sell(session: AsyncSession, quantities: Mapping[UUID, int]) -> None:
    """Reserved units are sold: they leave ``reserved`` (stock was already taken)."""
    for variant_id, quantity in _ordered(quantities):
        await session.execute(_SELL, {"id": variant_id, "q": quantity})


async def restock(session: AsyncSession, quantities: Mapping[UUID, int]) -> None:
    """Sold units come back for sale (a paid order cancelled or refunded before delivery)."""
    products = {
        pid
        for variant_id, quantity in _ordered(quantities)
        if (pid := await session.scalar(_RESTOCK, {"id": variant_id, "q": quantity})) is not None
    }
    await refresh_in_stock(session, products)


async def refresh_in_stock(session: AsyncSession, product_ids: Iterable[UUID]) -> None:
    """Bring the products' in-stock flag up to date after their variants' stock moved."""
    ids = sorted(set(product_ids))
    if ids:
        flipped = (await session.scalars(_REFRESH_IN_STOCK, {"ids": ids})).all()
        # Every page shows its variants' stock; listings only the flag, so only a flip
        # changes them.
        touch_product(*ids, listing=False)
        if flipped:
            touch_product(*flipped)
