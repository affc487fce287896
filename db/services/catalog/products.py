"""A vendor's own products: create, edit, variants, size charts (always their own: others' are 404)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.ids import new_id
from core.page_versions import touch_product
from core.rules.attributes import attribute_problems
from core.rules.measurements import PLAUSIBLE_CM
from db.models import Category, Product, SizeChartRow, Variant, Vendor
from db.ownership import get_owned
from db.pagination import cursor_id, encode_cursor
from db.services.catalog.errors import (
    CategoryNotFound,
    ProductNotFound,
    SkuTaken,
    VariantExists,
    VariantNotFound,
    field_error,
)
from db.services.catalog.listing import ListingPage, SummaryRow, summary_select
from db.services.catalog.listing_refresh import refresh_listing
from db.services.catalog.taxonomy import find_or_create_brand, garment_of_category
from db.services.catalog.text import normalise_color, normalise_size, slugify
from db.services.fit.chart_profiles import fit_profile_ids

MAX_AMOUNT = 10**12  # minor units; far above any garment
MAX_SIZE_CHART_ROWS = 40
_UNSET: Any = msgspec.UNSET


class Money(msgspec.Struct, frozen=True):
    amount: int
    currency: str


def check_money(money: Money, currency: str, field: str) -> int:
    """The amount, after checking the currency and range (422 naming ``field``)."""
    if money.currency.upper() != currency:
        raise field_error(f"{field}.currency", f"prices are in {currency}")
    if not 0 < money.amount <= MAX_AMOUNT:
        raise field_error(f"{field}.amount", "must be a positive whole number of minor units (e.g. kobo)")
    return money.amount


async def _check_category(session: AsyncSession, category_id: UUID) -> None:
    if await session.scalar(select(Category.id).where(Category.id == category_id)) is None:
        raise CategoryNotFound()


async def own_product(
    session: AsyncSession, vendor: Vendor, product_id: UUID, *, for_update: bool = False
) -> Product:
    """Raises ProductNotFound when the product is not this store's (or does not exist)."""
    return await get_owned(
        session,
        Product,
        product_id,
        Product.vendor_id,
        vendor.id,
        not_found=ProductNotFound,
        for_update=for_update,
    )


def _check_attributes(attributes: dict[str, Any] | None) -> None:
    """Raises InvalidInput (422, field ``attributes``) past the limits of ``core.rules.attributes``."""
    problems = attribute_problems(attributes or {})
    if problems:
        raise field_error("attributes", "; ".join(problems[:5]))


async def create_product(
    session: AsyncSession,
    vendor: Vendor,
    *,
    currency: str,
    title: str,
    description: str,
    category_id: UUID,
    brand: str | None,
    price: Money,
    attributes: dict[str, Any] | None,
) -> Product:
    amount = check_money(price, currency, "price")
    _check_attributes(attributes)
    await _check_category(session, category_id)
    brand_row = await find_or_create_brand(session, brand) if brand else None
    product_id = new_id()
    product = Product(
        id=product_id,
        vendor_id=vendor.id,
        category_id=category_id,
        brand_id=brand_row.id if brand_row else None,
        title=" ".join(title.split()),
        slug=f"{slugify(title, max_length=200)}-{product_id.hex[-8:]}",
        description=description.strip(),
        status="draft",
        currency=currency,
        price_amount=amount,
        min_price=amount,
        attributes=attributes or {},
    )
    session.add(product)
    await session.flush()
    await refresh_listing(session, product_id=product.id)
    return product


async def update_product(
    session: AsyncSession, vendor: Vendor, product_id: UUID, *, currency: str, changes: dict[str, Any]
) -> Product:
    """Apply the fields present in ``changes`` (title, description, category_id, brand, price,
    attributes, status). Activating needs at least one variant (422)."""
    product = await own_product(session, vendor, product_id, for_update=True)
    if "title" in changes:
        product.title = " ".join(changes["title"].split())
    if "description" in changes:
        product.description = changes["description"].strip()
    if "category_id" in changes and changes["category_id"] != product.category_id:
        await _check_category(session, changes["category_id"])
        product.category_id = changes["category_id"]
        # Which measurements matter for fit follows the kind of garment.
        await refresh_fit_profiles(session, product)
    if "brand" in changes:
        brand_row = await find_or_create_brand(session, changes["brand"]) if changes["brand"] else None
        product.brand_id = brand_row.id if brand_row else None
    if "price" in changes:
        product.price_amount = check_money(changes["price"], currency, "price")
    if "attributes" in changes:
        _check_attributes(changes["attributes"])
        product.attributes = changes["attributes"] or {}
    if "status" in changes and changes["status"] != product.status:
        if changes["status"] == "active":
            variants = await session.scalar(select(func.count()).where(Variant.product_id == product.id))
            if not variants:
                raise field_error("status", "add at least one variant before activating the product")
        product.status = changes["status"]
    await session.flush()
    await refresh_listing(session, product_id=product.id)
    await session.refresh(product)
    return product


async def list_own_products(
    session: AsyncSession, vendor: Vendor, *, limit: int, cursor: str | None, status: str | None
) -> ListingPage:
    """The store's products in every status, newest first, in the public listing's row shape."""
    conditions = [Product.vendor_id == vendor.id]
    if status:
        conditions.append(Product.status == status)
    if cursor is not None:
        conditions.append(Product.id < cursor_id(cursor))
    stmt = summary_select().where(*conditions).order_by(Product.id.desc()).limit(limit + 1)
    rows = (await session.execute(stmt)).all()
    items = [SummaryRow(*row) for row in rows[:limit]]
    more = len(rows) > limit
    return ListingPage(
        items=items, next_cursor=encode_cursor([str(items[-1].id)]) if more and items else None
    )


async def add_variant(
    session: AsyncSession,
    vendor: Vendor,
    product_id: UUID,
    *,
    currency: str,
    sku: str,
    size: str,
    color: str,
    price: Money | None,
    stock: int,
) -> tuple[Variant, Product]:
    """The new variant and its product.

    Raises ProductNotFound (404), SkuTaken / VariantExists (409), InvalidInput (422)."""
    product = await own_product(session, vendor, product_id, for_update=True)
    variant = Variant(
        product_id=product.id,
        sku=sku.strip(),
        size=normalise_size(size),
        color=normalise_color(color),
        price_amount=check_money(price, currency, "price") if price is not None else None,
        stock=stock,
    )
    session.add(variant)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        if "sku" in str(exc.orig):
            raise SkuTaken(f"The SKU {variant.sku!r} is already used.") from None
        raise VariantExists("This product already has a variant of that size and colour.") from None
    await refresh_listing(session, product_id=product.id)
    return variant, product


async def own_variant(session: AsyncSession, vendor: Vendor, variant_id: UUID) -> tuple[Variant, Product]:
    """The store's variant (locked) and its product. Raises VariantNotFound (another store's too)."""
    row = (
        await session.execute(
            select(Variant, Product)
            .join(Product, Product.id == Variant.product_id)
            .where(Variant.id == variant_id, Product.vendor_id == vendor.id)
            .with_for_update(of=Variant)
        )
    ).first()
    if row is None:
        raise VariantNotFound()
    return row[0], row[1]


async def update_variant(
    session: AsyncSession, vendor: Vendor, variant_id: UUID, *, currency: str, changes: dict[str, Any]
) -> tuple[Variant, Product]:
    """``price: null`` removes the variant's own price (it then sells at the product price)."""
    variant, product = await own_variant(session, vendor, variant_id)
    if "price" in changes:
        price = changes["price"]
        variant.price_amount = check_money(price, currency, "price") if price is not None else None
    if "stock" in changes:
        variant.stock = changes["stock"]
    await session.flush()
    await refresh_listing(session, product_id=variant.product_id)
    return variant, product


def validate_size_chart(rows: list[dict[str, Any]]) -> list[tuple[str, dict[str, list[float]]]]:
    """Normalise and check size-chart rows: unique sizes, at least one range each, min <= max,
    every value within plausible human measurements.

    Raises:
        InvalidInput: naming the row and measurement (``rows[2].waist_cm``).
    """
    if not rows:
        raise field_error("rows", "a size chart needs at least one size")
    if len(rows) > MAX_SIZE_CHART_ROWS:
        raise field_error("rows", f"at most {MAX_SIZE_CHART_ROWS} sizes")
    seen: set[str] = set()
    out = []
    for index, row in enumerate(rows):
        size = normalise_size(str(row.get("size", "")))
        if not size:
            raise field_error(f"rows[{index}].size", "a size name is required")
        if size in seen:
            raise field_error(f"rows[{index}].size", f"size {size} appears twice")
        seen.add(size)
        ranges: dict[str, list[float]] = {}
        for key, (low, high) in PLAUSIBLE_CM.items():
            value = row.get(key)
            if value is None:
                continue
            lo, hi = float(value[0]), float(value[1])
            if lo > hi:
                raise field_error(f"rows[{index}].{key}", "min must not be greater than max")
            if lo < low or hi > high:
                raise field_error(f"rows[{index}].{key}", f"must lie within {low:g}-{high:g} cm")
            ranges[key] = [round(lo, 1), round(hi, 1)]
        if not ranges:
            raise field_error(f"rows[{index}]", "give at least one measurement range")
        out.append((size, ranges))
    return out


async def put_size_chart(
    session: AsyncSession, vendor: Vendor, product_id: UUID, rows: list[dict[str, Any]]
) -> list[SizeChartRow]:
    """Replace the product's size chart."""
    product = await own_product(session, vendor, product_id, for_update=True)
    clean = validate_size_chart(rows)
    garment = await garment_of_category(session, product.category_id)
    profiles = await fit_profile_ids(session, [ranges for _, ranges in clean], garment)
    await session.execute(delete(SizeChartRow).where(SizeChartRow.product_id == product.id))
    created = [
        SizeChartRow(
            product_id=product.id,
            size=size,
            position=position,
            ranges=ranges,
            fit_profile_id=profile,
            category_id=product.category_id,
        )
        for position, ((size, ranges), profile) in enumerate(zip(clean, profiles, strict=True))
    ]
    session.add_all(created)
    await session.flush()
    touch_product(product.id, listing=False)
    return created


async def refresh_fit_profiles(session: AsyncSession, product: Product) -> None:
    """Point the product's size-chart rows at its (new) category and that garment kind's fit
    profiles."""
    garment = await garment_of_category(session, product.category_id)
    rows = (await session.scalars(select(SizeChartRow).where(SizeChartRow.product_id == product.id))).all()
    profiles = await fit_profile_ids(session, [row.ranges for row in rows], garment)
    for row, profile in zip(rows, profiles, strict=True):
        row.fit_profile_id = profile
        row.category_id = product.category_id
