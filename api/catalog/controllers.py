"""Public catalog endpoints and store creation."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Principal, requires_user
from api.catalog import schemas
from api.catalog.present import category_out, product_out, summary_out, vendor_out
from api.resources import AppResources
from db.services.catalog import listing, taxonomy, vendors
from db.services.catalog.listing import ListingFilters, Sort

Limit = Annotated[int, QueryParameter(ge=1, le=100, description="Page size (1-100)")]
Cursor = Annotated[
    str | None, QueryParameter(max_length=300, description="`next_cursor` of the previous page")
]
Price = Annotated[int | None, QueryParameter(ge=0, le=10**12, description="Minor units")]


class CatalogController(Controller):
    path = "/"
    tags = ["catalog"]

    @get("/categories", summary="The category tree")
    async def categories(self, resources: NamedDependency[AppResources]) -> schemas.CategoryTree:
        tree = await resources.categories.get()
        return schemas.CategoryTree(items=[category_out(root) for root in tree.roots])

    @get("/brands", summary="Brands, newest first")
    async def brands(
        self, db_session: NamedDependency[AsyncSession], limit: Limit = 50, cursor: Cursor = None
    ) -> schemas.BrandList:
        page = await taxonomy.list_brands(db_session, limit=limit, cursor=cursor)
        return schemas.BrandList(
            items=[schemas.Brand(id=b.id, name=b.name, slug=b.slug) for b in page.items],
            next_cursor=page.next_cursor,
        )

    @get("/products", summary="Search and browse products")
    async def products(
        self,
        db_session: NamedDependency[AsyncSession],
        resources: NamedDependency[AppResources],
        q: Annotated[str | None, QueryParameter(max_length=200, description="Full-text search")] = None,
        category: Annotated[
            str | None, QueryParameter(max_length=160, description="Id or slug; includes subcategories")
        ] = None,
        brand: Annotated[str | None, QueryParameter(max_length=100, description="Id or slug")] = None,
        vendor: FromQuery[UUID | None] = None,
        min_price: Price = None,
        max_price: Price = None,
        size: Annotated[str | None, QueryParameter(max_length=16)] = None,
        color: Annotated[str | None, QueryParameter(max_length=32)] = None,
        in_stock: FromQuery[bool | None] = None,
        sort: FromQuery[Sort | None] = None,
        limit: Limit = 20,
        cursor: Cursor = None,
    ) -> schemas.ProductList:
        filters = ListingFilters(
            q=q,
            category=category,
            brand=brand,
            vendor=vendor,
            min_price=min_price,
            max_price=max_price,
            size=size,
            color=color,
            in_stock=in_stock,
            sort=sort,
        )
        tree = await resources.categories.get()
        page = await listing.list_products(db_session, tree, filters, limit=limit, cursor=cursor)
        return schemas.ProductList(
            items=[summary_out(row, resources.storage) for row in page.items], next_cursor=page.next_cursor
        )

    @get("/products/{product_id:uuid}", summary="A product with variants, images, size chart and rating")
    async def product(
        self,
        product_id: FromPath[UUID],
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        resources: NamedDependency[AppResources],
    ) -> schemas.Product:
        viewer = request.scope.get("user")
        detail = await listing.product_detail(
            db_session, product_id, viewer=viewer.user_id if isinstance(viewer, Principal) else None
        )
        return product_out(detail, resources.storage)


class VendorsController(Controller):
    path = "/vendors"
    tags = ["vendor"]

    @post("/", status_code=201, guards=[requires_user], summary="Open your store (vendor accounts)")
    async def create(
        self,
        data: JSONBody[schemas.VendorCreate],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> schemas.Vendor:
        vendor = await vendors.create_store(
            db_session,
            owner_id=principal.user_id,
            role=principal.role,
            name=data.name,
            description=data.description,
        )
        return vendor_out(vendor)

    @get("/{vendor_id:uuid}", summary="A store")
    async def read(
        self, vendor_id: FromPath[UUID], db_session: NamedDependency[AsyncSession]
    ) -> schemas.Vendor:
        return vendor_out(await vendors.get_store(db_session, vendor_id))
