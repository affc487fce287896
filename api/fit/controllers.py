"""Fit: size advice for a product, and products with a size that fits you."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from api.auth import Principal, requires_user
from api.catalog.present import summary_out
from api.common import Cursor, Limit
from api.fit import schemas
from api.resources import AppResources
from core.rules import fit
from db.services.fit.advice import size_advice
from db.services.fit.search import products_that_fit


def _size_out(size: fit.SizeFit) -> schemas.SizeFit:
    return schemas.SizeFit(
        size=size.size,
        fit_score=size.fit_score,
        notes=[
            schemas.FitNote(
                measurement=n.measurement,
                status=n.status,
                delta_cm=n.delta_cm,
                confidence=n.confidence,
                counted=n.counted,
            )
            for n in size.notes
        ],
    )


def _shoppers_out(shoppers: fit.SimilarShoppers | None) -> schemas.SimilarShoppers | None:
    if shoppers is None:
        return None
    return schemas.SimilarShoppers(
        count=shoppers.count, size_distribution=shoppers.size_distribution, scope=shoppers.scope
    )


class FitController(Controller):
    path = "/"
    tags = ["fit"]
    guards = [requires_user]

    @get(
        "/products/{product_id:uuid}/fit",
        summary="Which size of this product fits you",
        description="Your latest ready body profile against the product's size chart: per size a fit "
        "score and, per measurement the chart lists, tight/good/loose with the distance in cm. "
        "`recommended_size` is null when no size fits well enough, and `reason` says why. "
        "`similar_shoppers` summarises the sizes kept by at least 5 shoppers with a body shape like "
        "yours; a clear majority can move the recommendation (`basis`). 409 when "
        "you have no ready measurement; 422 when the product has no size chart.",
    )
    async def advice(
        self,
        product_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        resources: NamedDependency[AppResources],
    ) -> schemas.FitAdvice:
        tree = await resources.categories.get()
        found = await size_advice(resources.db, tree, principal.user_id, product_id)
        return schemas.FitAdvice(
            product_id=found.product_id,
            recommended_size=found.advice.recommended_size,
            reason=found.advice.reason,
            sizes=[_size_out(size) for size in found.advice.sizes],
            measurement_id=found.measurement_id,
            basis=found.advice.basis,
            similar_shoppers=_shoppers_out(found.advice.similar_shoppers),
        )

    @get(
        "/fit/products",
        summary="Products with a size that fits you, best fit first",
        description="Listed products with a size in stock whose size chart fits your latest ready "
        "body profile, each with that size and its fit score. Covers the best few hundred matches. "
        "409 when you have no ready measurement.",
    )
    async def products(
        self,
        principal: NamedDependency[Principal],
        resources: NamedDependency[AppResources],
        category: Annotated[
            str | None, QueryParameter(max_length=160, description="Id or slug; includes subcategories")
        ] = None,
        limit: Limit = 20,
        cursor: Cursor = None,
    ) -> schemas.FitProductList:
        tree = await resources.categories.get()
        page = await products_that_fit(
            resources.db, tree, principal.user_id, category=category, limit=limit, cursor=cursor
        )
        return schemas.FitProductList(
            items=[
                schemas.FitMatch(
                    product=summary_out(item.product, resources.storage),
                    size=item.size,
                    fit_score=item.fit_score,
                )
                for item in page.items
            ],
            next_cursor=page.next_cursor,
        )
