"""Bodies of the fit endpoints."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

import msgspec
from msgspec import Meta

from api.catalog.schemas import ProductSummary

FitScore = Annotated[float, Meta(ge=0, le=1, description="1: every measurement inside the size's range")]


class FitNote(msgspec.Struct):
    measurement: Annotated[str, Meta(description="A measurement key, e.g. `chest_cm`")]
    status: Literal["tight", "good", "loose"]
    delta_cm: Annotated[
        float,
        Meta(
            description="Your measurement minus the nearest end of the size's range: positive when "
            "the size is tight, negative when loose, 0 inside"
        ),
    ]
    confidence: Annotated[float, Meta(ge=0, le=1, description="Confidence of your measurement")]
    counted: Annotated[bool, Meta(description="False when the measurement was too uncertain to count")]


class SizeFit(msgspec.Struct):
    size: str
    fit_score: FitScore
    notes: list[FitNote]


class SimilarShoppers(msgspec.Struct):
    count: Annotated[int, Meta(description="Shoppers with a body shape like yours who kept one (at least 5)")]
    size_distribution: Annotated[
        dict[str, float], Meta(description="Share of the items they kept, per size (sums to 1)")
    ]
    scope: Annotated[
        Literal["product", "brand"],
        Meta(description="`product`: they kept this product; `brand`: products of its brand in its category"),
    ]


class FitAdvice(msgspec.Struct):
    product_id: UUID
    recommended_size: str | None
    # Why nothing is recommended (null when a size is).
    reason: str | None
    sizes: list[SizeFit]
    # The measurement (body profile) the advice is based on.
    measurement_id: UUID
    basis: Annotated[
        Literal["size_chart", "similar_shoppers"],
        Meta(description="`similar_shoppers` when what shoppers like you kept moved the recommendation"),
    ] = "size_chart"
    # Null when fewer than 5 shoppers like you bought it (never shown for fewer).
    similar_shoppers: SimilarShoppers | None = None


class FitMatch(msgspec.Struct):
    product: ProductSummary
    size: Annotated[str, Meta(description="The size that fits you best")]
    fit_score: FitScore


class FitProductList(msgspec.Struct):
    items: list[FitMatch]
    next_cursor: str | None
