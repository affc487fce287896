"""Size advice for one product: the caller's body profile against the product's size chart."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.rules.fit import FitAdvice, advise, with_shoppers
from db.models import Product, SizeChartRow, Vendor
from db.services.catalog.errors import ProductNotFound
from db.services.catalog.taxonomy import CategoryTree
from db.services.fit.errors import NoSizeChart
from db.services.fit.profile import BodyProfile, body_profile_for_fit
from db.services.fit.shoppers import similar_shoppers


@dataclass(frozen=True)
class ProductFit:
    product_id: UUID
    measurement_id: UUID
    advice: FitAdvice


async def size_advice(
    session: AsyncSession, tree: CategoryTree, user_id: UUID, product_id: UUID
) -> ProductFit:
    """Every size of the product's chart scored against the user's body profile, what shoppers
    shaped like them kept, and the size to recommend (or why none).

    Raises:
        ProductNotFound: no such product, or not listed and not the caller's own (404).
        BodyProfileRequired: the caller has no ready measurement (409).
        NoSizeChart: the product has no size chart (422).
    """
    product = (
        await session.execute(
            select(Product.id, Product.category_id, Product.brand_id)
            .join(Vendor, Vendor.id == Product.vendor_id)
            .where(Product.id == product_id, Product.is_listed | (Vendor.owner_id == user_id))
        )
    ).first()
    if product is None:
        raise ProductNotFound
    profile: BodyProfile = await body_profile_for_fit(session, user_id)
    chart = (
        await session.execute(
            select(SizeChartRow.size, SizeChartRow.ranges)
            .where(SizeChartRow.product_id == product_id)
            .order_by(SizeChartRow.position)
        )
    ).all()
    if not chart:
        raise NoSizeChart
    advice = advise(
        [(row.size, row.ranges) for row in chart],
        profile.measurements,
        profile.confidence,
        tree.garment_of(product.category_id),
    )
    shoppers = await similar_shoppers(
        session,
        user_id=user_id,
        measurements=profile.measurements,
        product_id=product_id,
        brand_id=product.brand_id,
        category_id=product.category_id,
    )
    return ProductFit(
        product_id=product_id, measurement_id=profile.measurement_id, advice=with_shoppers(advice, shoppers)
    )
