"""A shopper's cart: lines of variants with quantities, priced from the catalog when read."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.settings import Settings
from db.models import CartItem, Product, Variant, Vendor
from db.ownership import get_owned
from db.services.orders.errors import CartItemNotFound, CartLimitExceeded, NotForSale


@dataclass(frozen=True, slots=True)
class CartLine:
    """A cart item with its variant and product as the catalog shows them now."""

    id: UUID
    variant_id: UUID
    product_id: UUID
    title: str
    sku: str
    size: str
    color: str
    thumbnail_key: str | None
    vendor_id: UUID
    vendor_name: str
    quantity: int
    unit_price: int
    currency: str
    stock: int
    listed: bool

    @property
    def available(self) -> bool:
        """Listed and with enough stock for the quantity right now (not a reservation)."""
        return self.listed and self.stock >= self.quantity


async def cart_lines(session: AsyncSession, user_id: UUID) -> list[CartLine]:
    """The caller's cart, oldest line first, priced from the catalog."""
    # Labelled with CartLine's field names, so each row builds one directly.
    rows = await session.execute(
        select(
            CartItem.id.label("id"),
            CartItem.variant_id.label("variant_id"),
            Product.id.label("product_id"),
            Product.title.label("title"),
            Variant.sku.label("sku"),
            Variant.size.label("size"),
            Variant.color.label("color"),
            Product.thumbnail_key.label("thumbnail_key"),
            Vendor.id.label("vendor_id"),
            Vendor.name.label("vendor_name"),
            CartItem.quantity.label("quantity"),
            func.coalesce(Variant.price_amount, Product.price_amount).label("unit_price"),
            Product.currency.label("currency"),
            Variant.stock.label("stock"),
            Product.is_listed.label("listed"),
        )
        .join(Variant, Variant.id == CartItem.variant_id)
        .join(Product, Product.id == Variant.product_id)
        .join(Vendor, Vendor.id == Product.vendor_id)
        .where(CartItem.user_id == user_id)
        .order_by(CartItem.id)
    )
    return [CartLine(**row._asdict()) for row in rows]


def _too_many(settings: Settings) -> CartLimitExceeded:
    limit = settings.order_line_max_quantity
    return CartLimitExceeded(
        f"At most {limit} of one item per order.",
        errors=[{"field": "quantity", "message": f"at most {limit} per item"}],
    )


async def add_item(
    session: AsyncSession, settings: Settings, user_id: UUID, variant_id: UUID, quantity: int
) -> CartItem:
    """Put ``quantity`` of a variant in the cart, adding to what is already there.

    Raises:
        NotForSale: no such variant, or its product is not listed (422).
        CartLimitExceeded: the line would exceed the per-line cap, or the cart its line cap (422).
    """
    listed = await session.scalar(
        select(Product.is_listed)
        .join(Variant, Variant.product_id == Product.id)
        .where(Variant.id == variant_id)
    )
    if not listed:
        raise NotForSale(
            "This item is not for sale.", errors=[{"field": "variant_id", "message": "no such item for sale"}]
        )
    if quantity > settings.order_line_max_quantity:
        raise _too_many(settings)
    existing = await session.scalar(
        select(CartItem)
        .where(CartItem.user_id == user_id, CartItem.variant_id == variant_id)
        .with_for_update()
    )
    if existing is not None:
        if existing.quantity + quantity > settings.order_line_max_quantity:
            raise _too_many(settings)
        existing.quantity += quantity
        await session.flush()
        return existing
    lines = await session.scalar(select(func.count()).where(CartItem.user_id == user_id))
    if (lines or 0) >= settings.order_max_lines:
        raise CartLimitExceeded(
            f"A cart holds at most {settings.order_max_lines} different items.",
            errors=[{"field": "variant_id", "message": "the cart is full"}],
        )
    # Two concurrent adds of a new line: the second one adds to the first instead of failing.
    stmt = (
        insert(CartItem)
        .values(user_id=user_id, variant_id=variant_id, quantity=quantity)
        .on_conflict_do_update(
            constraint="uq_cart_items_user_variant",
            set_={"quantity": CartItem.quantity + quantity, "updated_at": func.now()},
        )
        .returning(CartItem)
    )
    item = (await session.scalars(stmt, execution_options={"populate_existing": True})).one()
    if item.quantity > settings.order_line_max_quantity:
        raise _too_many(settings)
    return item


async def set_quantity(
    session: AsyncSession, settings: Settings, user_id: UUID, item_id: UUID, quantity: int
) -> CartItem:
    """Raises CartItemNotFound (someone else's or gone), CartLimitExceeded."""
    if quantity > settings.order_line_max_quantity:
        raise _too_many(settings)
    item = await get_owned(
        session, CartItem, item_id, CartItem.user_id, user_id, not_found=CartItemNotFound, for_update=True
    )
    item.quantity = quantity
    await session.flush()
    return item


async def remove_item(session: AsyncSession, user_id: UUID, item_id: UUID) -> None:
    """Raises CartItemNotFound (someone else's or gone)."""
    item = await get_owned(session, CartItem, item_id, CartItem.user_id, user_id, not_found=CartItemNotFound)
    await session.delete(item)
    await session.flush()


async def clear(session: AsyncSession, user_id: UUID, variant_ids: list[UUID] | None = None) -> None:
    """Empty the cart (or remove the given variants from it), e.g. once they were ordered."""
    stmt = delete(CartItem).where(CartItem.user_id == user_id)
    if variant_ids is not None:
        stmt = stmt.where(CartItem.variant_id.in_(variant_ids))
    await session.execute(stmt)
