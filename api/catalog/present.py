"""Rows and query results of the catalog, shaped into the response Structs."""

from __future__ import annotations

from typing import Any

from asyncpg import Record

from api.catalog import schemas
from api.common import money
from core.adapters.storage import MediaStorage
from core.rules.measurements import MEASUREMENT_KEYS
from db.models import ProductImage, SizeChartRow, Variant, Vendor
from db.services.catalog.listing import SummaryRow
from db.services.catalog.similar import SimilarProduct
from db.services.catalog.taxonomy import CategoryNode


def category_out(node: CategoryNode) -> schemas.Category:
    return schemas.Category(
        id=node.id,
        name=node.name,
        slug=node.slug,
        garment=node.garment,
        children=[category_out(child) for child in node.children],
    )


def summary_out(row: SummaryRow, storage: MediaStorage) -> schemas.ProductSummary:
    return schemas.ProductSummary(
        id=row.id,
        title=row.title,
        slug=row.slug,
        price=money(row.price_amount, row.currency),
        vendor=schemas.VendorRef(id=row.vendor_id, name=row.vendor_name),
        category_id=row.category_id,
        brand=row.brand,
        thumbnail_url=storage.url(row.thumbnail_key),
        in_stock=row.in_stock,
    )


def summaries_out(rows: list[Record], storage: MediaStorage) -> list[schemas.ProductSummary]:
    """``summary_out`` of listing rows as the driver returns them (SummaryRow's column order)."""
    url = storage.url
    return [
        schemas.ProductSummary(
            id=row[0],
            title=row[1],
            slug=row[2],
            price=money(row[3], row[4]),
            vendor=schemas.VendorRef(id=row[5], name=row[6]),
            category_id=row[7],
            brand=row[8],
            thumbnail_url=url(row[9]),
            in_stock=row[10],
        )
        for row in rows
    ]


def similar_out(products: list[SimilarProduct], storage: MediaStorage) -> schemas.SimilarProductList:
    return schemas.SimilarProductList(
        items=[
            schemas.SimilarProduct(product=summary_out(p.summary, storage), score=round(p.score, 6))
            for p in products
        ]
    )


def variant_out(variant: Variant, product_price: int, currency: str) -> schemas.Variant:
    return schemas.Variant(
        id=variant.id,
        sku=variant.sku,
        size=variant.size,
        color=variant.color,
        price=money(variant.price_amount or product_price, currency),
        stock=variant.stock,
        in_stock=variant.stock > 0,
    )


def image_out(image: ProductImage | dict[str, Any], storage: MediaStorage) -> schemas.Image:
    fields: dict[str, Any] = image if isinstance(image, dict) else image.__dict__

    def get(key: str) -> Any:
        return fields[key]

    thumbnails: dict[str, str] = get("thumbnails") or {}
    return schemas.Image(
        id=get("id"),
        position=get("position"),
        status=get("status"),
        embedding_status=get("embedding_status"),
        width=get("width"),
        height=get("height"),
        url=storage.url(get("original_key")),
        thumbnails={name: storage.url(key) or "" for name, key in thumbnails.items()},
    )


def size_chart_out(rows: list[dict[str, Any]] | list[SizeChartRow]) -> schemas.SizeChart | None:
    if not rows:
        return None
    out = []
    for row in rows:
        size = row["size"] if isinstance(row, dict) else row.size
        ranges = row["ranges"] if isinstance(row, dict) else row.ranges
        fields = {key: tuple(ranges[key]) for key in MEASUREMENT_KEYS if key in ranges}
        out.append(schemas.SizeChartRow(size=size, **fields))
    return schemas.SizeChart(rows=out)


def product_out(detail: dict[str, Any], storage: MediaStorage) -> schemas.Product:
    currency = detail["currency"]
    count = detail["rating_count"]
    return schemas.Product(
        id=detail["id"],
        title=detail["title"],
        slug=detail["slug"],
        description=detail["description"],
        status=detail["status"],
        price=money(detail["min_price"], currency),
        vendor=schemas.VendorRef(id=detail["vendor_id"], name=detail["vendor_name"]),
        category_id=detail["category_id"],
        brand=detail["brand"],
        attributes=detail["attributes"] or {},
        in_stock=detail["in_stock"],
        thumbnail_url=storage.url(detail["thumbnail_key"]),
        variants=[
            schemas.Variant(
                id=v["id"],
                sku=v["sku"],
                size=v["size"],
                color=v["color"],
                price=money(v["price_amount"], currency),
                stock=v["stock"],
                in_stock=v["stock"] > 0,
            )
            for v in detail["variants"]
        ],
        images=[image_out(i, storage) for i in detail["images"]],
        size_chart=size_chart_out(detail["size_chart"]),
        rating=schemas.Rating(average=round(detail["rating_sum"] / count, 2) if count else None, count=count),
        created_at=detail["created_at"],
        updated_at=detail["updated_at"],
    )


def vendor_out(vendor: Vendor) -> schemas.Vendor:
    return schemas.Vendor(
        id=vendor.id,
        name=vendor.name,
        slug=vendor.slug,
        description=vendor.description,
        status=vendor.status,  # type: ignore[arg-type]  # CHECK constraint
        created_at=vendor.created_at,
    )
