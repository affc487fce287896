"""Catalog test data, written through the services so listing columns are right."""

from __future__ import annotations

import io
import uuid
from typing import Any

from PIL import Image
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Category, Product, User, Vendor
from db.services.catalog import products as product_service
from db.services.catalog.listing_refresh import refresh_listing
from tests.support.identity import make_user

CURRENCY = "NGN"


async def category(session: AsyncSession, slug: str) -> Category:
    found = await session.scalar(select(Category).where(Category.slug == slug))
    assert found is not None, slug
    return found


async def make_store(session: AsyncSession, owner: User | None = None, name: str | None = None) -> Vendor:
    owner = owner or await make_user(session, role="vendor")
    vendor = Vendor(
        owner_id=owner.id, name=name or f"Store {uuid.uuid4().hex[:8]}", slug=f"store-{uuid.uuid4().hex}"
    )
    session.add(vendor)
    await session.commit()
    return vendor


async def make_product(
    session: AsyncSession,
    store: Vendor,
    *,
    category_slug: str = "women-tops-t-shirts",
    title: str = "Cotton crew tee",
    description: str = "A soft everyday tee.",
    price: int = 1_500_000,
    brand: str | None = None,
    variants: list[tuple[str, str, int]] | None = None,
    status: str = "active",
) -> Product:
    cat = await category(session, category_slug)
    product = await product_service.create_product(
        session,
        store,
        currency=CURRENCY,
        title=title,
        description=description,
        category_id=cat.id,
        brand=brand,
        price=product_service.Money(amount=price, currency=CURRENCY),
        attributes=None,
    )
    for index, (size, color, stock) in enumerate(variants if variants is not None else [("M", "black", 5)]):
        await product_service.add_variant(
            session,
            store,
            product.id,
            currency=CURRENCY,
            sku=f"SKU-{product.id.hex[-10:]}-{index}",
            size=size,
            color=color,
            price=None,
            stock=stock,
        )
    product.status = status
    await session.flush()
    await refresh_listing(session, product_id=product.id)
    await session.commit()
    await session.refresh(product)
    return product


def image_bytes(fmt: str = "JPEG", size: tuple[int, int] = (400, 600), **save: Any) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (180, 40, 90)).save(out, format=fmt, **save)
    return out.getvalue()
