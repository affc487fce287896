"""Bodies of the catalog and vendor endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from litestar.datastructures import UploadFile
from msgspec import Meta

from api.common import Currency, Money
from core.rules import attributes as attribute_limits

Amount = Annotated[int, Meta(gt=0, le=10**12, description="Integer minor units (kobo, cents)")]
Title = Annotated[str, Meta(min_length=2, max_length=200, pattern=r"\S")]
Description = Annotated[str, Meta(max_length=10_000)]
BrandName = Annotated[str, Meta(min_length=1, max_length=80, pattern=r"\S")]
StoreName = Annotated[str, Meta(min_length=2, max_length=120, pattern=r"\S")]
Sku = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-/]*$")]
SizeLabel = Annotated[str, Meta(min_length=1, max_length=16, pattern=r"\S")]
ColorLabel = Annotated[str, Meta(min_length=1, max_length=32, pattern=r"\S")]
Stock = Annotated[int, Meta(ge=0, le=1_000_000)]
Range = Annotated[tuple[float, float], Meta(description="[min, max] in cm")]
ProductStatus = Literal["draft", "active", "archived"]
AttributeKey = Annotated[str, Meta(min_length=1, max_length=attribute_limits.MAX_KEY_LENGTH)]
AttributeText = Annotated[str, Meta(max_length=attribute_limits.MAX_TEXT_LENGTH)]
AttributeScalar = AttributeText | int | float | bool | None
AttributeValue = (
    AttributeScalar
    | Annotated[list[AttributeScalar], Meta(max_length=attribute_limits.MAX_KEYS)]
    | Annotated[dict[AttributeKey, AttributeScalar], Meta(max_length=attribute_limits.MAX_KEYS)]
)
Attributes = Annotated[
    dict[AttributeKey, AttributeValue],
    Meta(
        max_length=attribute_limits.MAX_KEYS,
        description=(
            "Free-form product facts (material, care ...): text, numbers, booleans, or one level of "
            f"list/object of them; at most {attribute_limits.MAX_BYTES} bytes of JSON"
        ),
    ),
]


class Price(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A price as sent by a vendor: a positive amount in minor units and its currency."""

    amount: Amount
    currency: Currency


class VendorRef(msgspec.Struct):
    id: UUID
    name: str


class Category(msgspec.Struct):
    id: UUID
    name: str
    slug: str
    garment: str | None
    children: list[Category]


class CategoryTree(msgspec.Struct):
    items: list[Category]


class Brand(msgspec.Struct):
    id: UUID
    name: str
    slug: str


class BrandList(msgspec.Struct):
    items: list[Brand]
    next_cursor: str | None


class ProductSummary(msgspec.Struct):
    id: UUID
    title: str
    slug: str
    price: Money
    vendor: VendorRef
    category_id: UUID
    brand: str | None
    thumbnail_url: str | None
    in_stock: bool


class ProductList(msgspec.Struct):
    items: list[ProductSummary]
    next_cursor: str | None


class SimilarProduct(msgspec.Struct):
    product: ProductSummary
    score: Annotated[float, Meta(description="Cosine similarity of the images, -1..1 (1: the same picture)")]


class SimilarProductList(msgspec.Struct):
    """Most similar first; one entry per product (its best-matching image counts)."""

    items: list[SimilarProduct]


class PhotoSearchUpload(msgspec.Struct, forbid_unknown_fields=True):
    """multipart/form-data: the photo to search with (JPEG, PNG, WebP or HEIC)."""

    image: UploadFile


class Variant(msgspec.Struct):
    id: UUID
    sku: str
    size: str
    color: str
    price: Money
    stock: int
    in_stock: bool


class Image(msgspec.Struct):
    id: UUID
    position: int
    status: Literal["processing", "ready", "failed"]
    embedding_status: Literal["pending", "ready", "failed"]
    width: int
    height: int
    url: str | None
    thumbnails: dict[str, str]


class SizeChartRow(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    """One size; every other field is a measurement key with a [min, max] range in cm."""

    size: SizeLabel
    ankle_cm: Range | None = None
    arm_length_cm: Range | None = None
    bicep_cm: Range | None = None
    calf_cm: Range | None = None
    chest_cm: Range | None = None
    forearm_cm: Range | None = None
    height_cm: Range | None = None
    hip_cm: Range | None = None
    leg_length_cm: Range | None = None
    shoulder_breadth_cm: Range | None = None
    shoulder_to_crotch_cm: Range | None = None
    thigh_cm: Range | None = None
    waist_cm: Range | None = None
    wrist_cm: Range | None = None


class SizeChart(msgspec.Struct, forbid_unknown_fields=True):
    rows: Annotated[list[SizeChartRow], Meta(min_length=1, max_length=40)]


class Rating(msgspec.Struct):
    average: float | None
    count: int


class Product(msgspec.Struct):
    id: UUID
    title: str
    slug: str
    description: str
    status: ProductStatus
    price: Money
    vendor: VendorRef
    category_id: UUID
    brand: str | None
    attributes: dict[str, Any]
    in_stock: bool
    thumbnail_url: str | None
    variants: list[Variant]
    images: list[Image]
    size_chart: SizeChart | None
    rating: Rating
    created_at: datetime
    updated_at: datetime


class VendorProductList(msgspec.Struct):
    items: list[ProductSummary]
    next_cursor: str | None


class Vendor(msgspec.Struct):
    id: UUID
    name: str
    slug: str
    description: str | None
    status: Literal["active", "suspended"]
    created_at: datetime


class VendorCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: StoreName
    description: Description | None = None


class ProductCreate(msgspec.Struct, forbid_unknown_fields=True):
    title: Title
    category_id: UUID
    price: Price
    description: Description = ""
    brand: BrandName | None = None
    attributes: Attributes | None = None


class ProductUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """Only the fields sent change; ``brand: null`` removes the brand."""

    title: Title | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType = msgspec.UNSET
    category_id: UUID | msgspec.UnsetType = msgspec.UNSET
    brand: BrandName | msgspec.UnsetType | None = msgspec.UNSET
    price: Price | msgspec.UnsetType = msgspec.UNSET
    attributes: Attributes | msgspec.UnsetType | None = msgspec.UNSET
    status: ProductStatus | msgspec.UnsetType = msgspec.UNSET


class VariantCreate(msgspec.Struct, forbid_unknown_fields=True):
    sku: Sku
    size: SizeLabel
    color: ColorLabel
    stock: Stock
    price: Price | None = None


class VariantUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """``price: null`` removes the variant's own price (it sells at the product price)."""

    price: Price | msgspec.UnsetType | None = msgspec.UNSET
    stock: Stock | msgspec.UnsetType = msgspec.UNSET


class StoreStatus(msgspec.Struct, forbid_unknown_fields=True):
    status: Literal["active", "suspended"]
