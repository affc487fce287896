"""A vendor's own store: products, variants, images, size charts. Others' objects are 404."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from litestar import Controller, Response, get, patch, post, put
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody, MultipartBody
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Principal, requires_role
from api.catalog import schemas
from api.catalog.present import image_out, product_out, size_chart_out, summary_out, variant_out
from api.common import Cursor, Limit
from api.resources import AppResources
from db.models import Vendor
from db.services.catalog import images, listing, products, vendors


async def provide_store(
    db_session: NamedDependency[AsyncSession], principal: NamedDependency[Principal]
) -> Vendor:
    return await vendors.store_of(db_session, principal.user_id)


def _changes(data: msgspec.Struct) -> dict[str, Any]:
    """The fields a PATCH body actually sent."""
    return {
        name: getattr(data, name)
        for name in data.__struct_fields__
        if getattr(data, name) is not msgspec.UNSET
    }


def _money(value: Any) -> Any:
    return products.Money(amount=value.amount, currency=value.currency) if value is not None else None


class ImageUpload(msgspec.Struct, forbid_unknown_fields=True):
    image: UploadFile


class VendorStoreController(Controller):
    path = "/vendor"
    tags = ["vendor"]
    guards = [requires_role("vendor")]
    dependencies = {"store": Provide(provide_store)}

    @get("/products", summary="Your products, every status, newest first")
    async def list_products(
        self,
        db_session: NamedDependency[AsyncSession],
        store: NamedDependency[Vendor],
        resources: NamedDependency[AppResources],
        status: FromQuery[schemas.ProductStatus | None] = None,
        limit: Limit = 20,
        cursor: Cursor = None,
    ) -> schemas.VendorProductList:
        page = await products.list_own_products(db_session, store, limit=limit, cursor=cursor, status=status)
        return schemas.VendorProductList(
            items=[summary_out(row, resources.storage) for row in page.items], next_cursor=page.next_cursor
        )

    @post("/products", status_code=201, summary="Create a product (as a draft)")
    async def create_product(
        self,
        data: JSONBody[schemas.ProductCreate],
        db_session: NamedDependency[AsyncSession],
        store: NamedDependency[Vendor],
        principal: NamedDependency[Principal],
        resources: NamedDependency[AppResources],
    ) -> schemas.Product:
        product = await products.create_product(
            db_session,
            store,
            currency=resources.settings.currency,
            title=data.title,
            description=data.description,
            category_id=data.category_id,
            brand=data.brand,
            price=products.Money(amount=data.price.amount, currency=data.price.currency),
            attributes=data.attributes,
        )
        detail = await listing.product_detail(db_session, product.id, viewer=principal.user_id)
        return product_out(detail, resources.storage)

    @get("/products/{product_id:uuid}", summary="One of your products, whatever its status")
    async def read_product(
        self,
        product_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        store: NamedDependency[Vendor],
        principal: NamedDependency[Principal],
        resources: NamedDependency[AppResources],
    ) -> schemas.Product:
        await products.own_product(db_session, store, product_id)
        detail = await listing.product_detail(db_session, product_id, viewer=principal.user_id)
        return product_out(detail, resources.storage)

    @patch("/products/{product_id:uuid}", summary="Edit a product, including its status")
    async def update_product(
        self,
        product_id: FromPath[UUID],
        data: JSONBody[schemas.ProductUpdate],
        db_session: NamedDependency[AsyncSession],
        store: NamedDependency[Vendor],
        principal: NamedDependency[Principal],
        resources: NamedDependency[AppResources],
    ) -> schemas.Product:
        changes = _changes(data)
        if "price" in changes:
            changes["price"] = _money(changes["price"])
        await products.update_product(
            db_session, store, product_id, currency=resources.settings.currency, changes=changes
        )
        detail = await listing.product_detail(db_session, product_id, viewer=principal.user_id)
        return product_out(detail, resources.storage)

    @post("/products/{product_id:uuid}/variants", status_code=201, summary="Add a variant")
    async def add_variant(
        self,
        product_id: FromPath[UUID],
        data: JSONBody[schemas.VariantCreate],
        db_session: NamedDependency[AsyncSession],
        store: NamedDependency[Vendor],
        resources: NamedDependency[AppResources],
    ) -> schemas.Variant:
        variant, product = await products.add_variant(
            db_session,
            store,
            product_id,
            currency=resources.settings.currency,
            sku=data.sku,
            size=data.size,
            color=data.color,
            price=_money(data.price),
            stock=data.stock,
        )
        return variant_out(variant, product.price_amount, product.currency)

    @patch("/variants/{variant_id:uuid}", summary="Change a variant's price or stock")
    async def update_variant(
        self,
        variant_id: FromPath[UUID],
        data: JSONBody[schemas.VariantUpdate],
        db_session: NamedDependency[AsyncSession],
        store: NamedDependency[Vendor],
        resources: NamedDependency[AppResources],
    ) -> schemas.Variant:
        changes = _changes(data)
        if "price" in changes:
            changes["price"] = _money(changes["price"])
        variant, product = await products.update_variant(
            db_session, store, variant_id, currency=resources.settings.currency, changes=changes
        )
        return variant_out(variant, product.price_amount, product.currency)

    @post(
        "/products/{product_id:uuid}/images",
        status_code=202,
        summary="Upload a product photo (JPEG, PNG, WebP or HEIC)",
        description="Thumbnails and the visual embedding are made in the background; "
        "`status` and `embedding_status` say how far that got.",
    )
    async def upload_image(
        self,
        product_id: FromPath[UUID],
        data: MultipartBody[ImageUpload],
        db_session: NamedDependency[AsyncSession],
        store: NamedDependency[Vendor],
        resources: NamedDependency[AppResources],
    ) -> Response[schemas.Image]:
        content = await data.image.read()
        image = await images.upload_image(
            db_session, resources.storage, resources.settings, store, product_id, content
        )
        return Response(image_out(image, resources.storage), status_code=202)

    @put("/products/{product_id:uuid}/size-chart", summary="Replace the size chart")
    async def put_size_chart(
        self,
        product_id: FromPath[UUID],
        data: JSONBody[schemas.SizeChart],
        db_session: NamedDependency[AsyncSession],
        store: NamedDependency[Vendor],
    ) -> schemas.SizeChart:
        rows = [msgspec.to_builtins(row) for row in data.rows]
        saved = await products.put_size_chart(db_session, store, product_id, rows)
        chart = size_chart_out(saved)
        assert chart is not None
        return chart
