"""The catalog: vendors (stores), categories, brands, products, variants, images, size charts.

Products carry a few denormalised columns that the public listing filters and sorts on
(``min_price``, ``in_stock``, ``sizes``, ``colors``, ``is_listed``, ``search_vector``); the
catalog services keep them in step whenever a product, its variants or its vendor change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from core.rules.fit import FIT_VECTOR_DIMENSIONS
from db.models.base import Base

LISTED = text("is_listed")
# Dimensions of the product_embedding model (EfficientNet-Lite0 pooled features).
EMBEDDING_DIMENSIONS = 1280


class Vendor(Base):
    __tablename__ = "vendors"

    owner_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    slug: Mapped[str] = mapped_column(String(140), unique=True)
    description: Mapped[str | None] = mapped_column(Text, default=None)
    status: Mapped[str] = mapped_column(String(16), default="active")
    # Days after delivery a shopper may return items; None: the platform's RETURN_WINDOW_DAYS.
    return_window_days: Mapped[int | None] = mapped_column(Integer, default=None)
    # Staff hold a vendor's payouts (none is made or sent) until they release them.
    payouts_on_hold: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    payouts_hold_reason: Mapped[str | None] = mapped_column(Text, default=None)
    payouts_held_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)

    __table_args__ = (
        CheckConstraint("status IN ('active', 'suspended')", name="status_known"),
        CheckConstraint(
            "return_window_days IS NULL OR return_window_days BETWEEN 0 AND 365", name="return_window"
        ),
    )


class Category(Base):
    __tablename__ = "categories"

    parent_id: Mapped[UUID | None] = mapped_column(ForeignKey("categories.id"), default=None)
    name: Mapped[str] = mapped_column(String(80))
    slug: Mapped[str] = mapped_column(String(160), unique=True)
    # What kind of garment the category holds; fit scoring weighs measurements by it.
    garment: Mapped[str | None] = mapped_column(String(16), default=None)
    position: Mapped[int] = mapped_column(Integer, default=0)


class Brand(Base):
    __tablename__ = "brands"

    name: Mapped[str] = mapped_column(String(80))
    slug: Mapped[str] = mapped_column(String(100), unique=True)


class Product(Base):
    __tablename__ = "products"

    vendor_id: Mapped[UUID] = mapped_column(ForeignKey("vendors.id", ondelete="RESTRICT"))
    category_id: Mapped[UUID] = mapped_column(ForeignKey("categories.id", ondelete="RESTRICT"))
    brand_id: Mapped[UUID | None] = mapped_column(ForeignKey("brands.id", ondelete="SET NULL"), default=None)
    title: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(240), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="draft")
    currency: Mapped[str] = mapped_column(String(3))
    price_amount: Mapped[int] = mapped_column(BigInteger)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # Final-sale items cannot be returned.
    final_sale: Mapped[bool] = mapped_column(Boolean, default=False)
    # Denormalised for the listing.
    min_price: Mapped[int] = mapped_column(BigInteger)
    in_stock: Mapped[bool] = mapped_column(Boolean, default=False)
    sizes: Mapped[list[str]] = mapped_column(ARRAY(String(16)), default=list)
    colors: Mapped[list[str]] = mapped_column(ARRAY(String(32)), default=list)
    is_listed: Mapped[bool] = mapped_column(Boolean, default=False)
    search_vector: Mapped[Any] = mapped_column(TSVECTOR, nullable=True, default=None)
    thumbnail_key: Mapped[str | None] = mapped_column(String(300), default=None)
    rating_count: Mapped[int] = mapped_column(Integer, default=0)
    rating_sum: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        CheckConstraint("status IN ('draft', 'active', 'archived')", name="status_known"),
        CheckConstraint("price_amount > 0", name="price_positive"),
        # Public listing: every index is partial on listed products, with the id as tiebreak.
        Index("ix_products_listed_newest", "id", postgresql_where=LISTED),
        Index("ix_products_listed_price", "min_price", "id", postgresql_where=LISTED),
        Index("ix_products_listed_category", "category_id", "id", postgresql_where=LISTED),
        Index("ix_products_listed_category_price", "category_id", "min_price", "id", postgresql_where=LISTED),
        Index("ix_products_listed_brand", "brand_id", "id", postgresql_where=LISTED),
        Index("ix_products_listed_vendor", "vendor_id", "id", postgresql_where=LISTED),
        Index("ix_products_search", "search_vector", postgresql_using="gin", postgresql_where=LISTED),
        Index("ix_products_sizes", "sizes", postgresql_using="gin", postgresql_where=LISTED),
        Index("ix_products_colors", "colors", postgresql_using="gin", postgresql_where=LISTED),
        # Vendor dashboards list their own products, every status.
        Index("ix_products_vendor_all", "vendor_id", "id"),
    )


class Variant(Base):
    __tablename__ = "variants"

    product_id: Mapped[UUID] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    size: Mapped[str] = mapped_column(String(16))
    color: Mapped[str] = mapped_column(String(32))
    price_amount: Mapped[int | None] = mapped_column(BigInteger, default=None)
    # Units for sale now. Placing an order moves units from here to ``reserved``; paying sells
    # them (they leave ``reserved``); cancelling or expiring puts them back.
    stock: Mapped[int] = mapped_column(Integer, default=0)
    # Units held by unpaid orders (the sum of their lines' quantities).
    reserved: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))

    __table_args__ = (
        UniqueConstraint("product_id", "size", "color", name="uq_variants_product_size_color"),
        CheckConstraint("stock >= 0", name="stock_not_negative"),
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        CheckConstraint("price_amount IS NULL OR price_amount > 0", name="price_positive"),
        Index("ix_variants_product", "product_id"),
    )


class ProductImage(Base):
    __tablename__ = "product_images"

    product_id: Mapped[UUID] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    original_key: Mapped[str] = mapped_column(String(300))
    content_type: Mapped[str] = mapped_column(String(40))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    byte_size: Mapped[int] = mapped_column(Integer)
    # processing -> ready (thumbnails made) | failed
    status: Mapped[str] = mapped_column(String(16), default="processing")
    thumbnails: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)
    # pending -> ready | failed, set by the inference worker's embedding job
    embedding_status: Mapped[str] = mapped_column(String(16), default="pending")
    error: Mapped[str | None] = mapped_column(Text, default=None)
    # Unit vector of the product_embedding model; compared by cosine distance.
    embedding: Mapped[Any] = mapped_column(Vector(EMBEDDING_DIMENSIONS), nullable=True, default=None)
    embedding_model: Mapped[str | None] = mapped_column(String(64), default=None)

    __table_args__ = (
        CheckConstraint("status IN ('processing', 'ready', 'failed')", name="status_known"),
        CheckConstraint("embedding_status IN ('pending', 'ready', 'failed')", name="embedding_status_known"),
        Index("ix_product_images_product", "product_id", "position"),
        Index(
            "ix_product_images_embedding_pending", "id", postgresql_where=text("embedding_status = 'pending'")
        ),
        Index(
            "ix_product_images_embedding_hnsw",
            "embedding",
            postgresql_using="hnsw",
            postgresql_with={"m": 16, "ef_construction": 64},
            postgresql_ops={"embedding": "vector_cosine_ops"},
        ),
        # Rows up to a page stay whole: the 5 KiB vector is read with its row instead of from
        # the TOAST table, which makes exact (filtered) similarity search ~2.5x faster.
        {"postgresql_with": {"toast_tuple_target": 8160}},
    )


class FitProfile(Base):
    """One distinct size-chart row in fit space: its ranges and garment kind, as a fit vector.

    Many products share a size chart (a brand's standard table), so their rows share one fit
    profile: the vector index holds each distinct size once, and "products that fit me" ranks
    profiles first, then walks the products behind each (``size_chart_rows.fit_profile_id``).
    """

    __tablename__ = "fit_profiles"

    # core.rules.fit.fit_profile_key(ranges, garment): equal rows, equal key.
    key: Mapped[str] = mapped_column(String(64), unique=True)
    garment: Mapped[str | None] = mapped_column(String(16), default=None)
    ranges: Mapped[dict[str, list[float]]] = mapped_column(JSONB)
    # core.rules.fit.fit_row_vector: body profile <#> fit_vector is the body's weighted distance to the
    # centre of the ranges.
    fit_vector: Mapped[Any] = mapped_column(Vector(FIT_VECTOR_DIMENSIONS))

    __table_args__ = (
        Index(
            "ix_fit_profiles_fit_hnsw",
            "fit_vector",
            postgresql_using="hnsw",
            postgresql_with={"m": 16, "ef_construction": 64},
            postgresql_ops={"fit_vector": "vector_ip_ops"},
        ),
    )


class SizeChartRow(Base):
    """One size of a product's size chart: a [min, max] range in cm per measurement it covers."""

    __tablename__ = "size_chart_rows"

    product_id: Mapped[UUID] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    size: Mapped[str] = mapped_column(String(16))
    position: Mapped[int] = mapped_column(Integer)
    # {"chest_cm": [96.0, 101.0], ...}
    ranges: Mapped[dict[str, list[float]]] = mapped_column(JSONB)
    # The row's ranges weighted by the product's garment kind (recomputed when either changes).
    fit_profile_id: Mapped[UUID] = mapped_column(ForeignKey("fit_profiles.id", ondelete="RESTRICT"))
    # The product's category, kept in step with it: products that fit me filter a profile's
    # products by category straight from the index, without visiting every product.
    category_id: Mapped[UUID] = mapped_column(ForeignKey("categories.id", ondelete="RESTRICT"))

    __table_args__ = (
        UniqueConstraint("product_id", "size", name="uq_size_chart_rows_product_size"),
        # The products behind a fit profile, in id order (pages of products that fit me) ...
        Index("ix_size_chart_rows_fit_profile_product", "fit_profile_id", "product_id"),
        # ... and the same within one category.
        Index("ix_size_chart_rows_fit_profile_category", "fit_profile_id", "category_id", "product_id"),
    )
