"""Public catalog endpoints and store creation."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath, FromQuery, JSONBody, MultipartBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Principal, requires_user
from api.catalog import schemas
from api.catalog.present import category_out, product_out, similar_out, summaries_out, vendor_out
from api.common import Cursor, Limit
from api.dependencies import rate_subject
from api.page_cache import NOT_MODIFIED, PERSONAL, catalog_page, product_page
from api.resources import AppResources
from core.rules.photo_search import QueryEmbedder
from db.services.catalog import listing, similar, taxonomy, vendors
from db.services.catalog.listing import ListingFilters
from db.services.catalog.listing_sql import Sort
from tasks.runtime.dispatch import BrokerQueryEmbedder

Price = Annotated[int | None, QueryParameter(ge=0, le=10**12, description="Minor units")]
CategoryKey = Annotated[
    str | None, QueryParameter(max_length=160, description="Id or slug; includes subcategories")
]
MaxPrice = Annotated[
    int | None, QueryParameter(ge=0, le=10**12, description="Minor units; compared with the lowest price")
]


async def within_photo_search_rate(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Count a search by photo before its upload is read (429 past the limit): the route is public
    and every call runs a model. A logged-in user is counted per account
    (``SEARCH_IMAGE_PER_USER_PER_MINUTE``), an anonymous caller per address
    (``SEARCH_IMAGE_PER_MINUTE``), so an anonymous flood from a shared address stops no user."""
    resources: AppResources = connection.app.state.resources
    who, logged_in = rate_subject(connection)
    settings = resources.settings
    limit = settings.search_image_per_user_per_minute if logged_in else settings.search_image_per_minute
    await resources.limiter.hit("search_image", who, limit=limit, window=60)


def provide_query_embedder(resources: NamedDependency[AppResources]) -> QueryEmbedder:
    return BrokerQueryEmbedder(resources.broker, timeout=resources.settings.search_image_timeout_seconds)


class CatalogController(Controller):
    path = "/"
    tags = ["catalog"]

    @get("/categories", summary="The category tree", middleware=[catalog_page], responses=NOT_MODIFIED)
    async def categories(self, resources: NamedDependency[AppResources]) -> schemas.CategoryTree:
        tree = await resources.categories.get()
        return schemas.CategoryTree(items=[category_out(root) for root in tree.roots])

    @get("/brands", summary="Brands, newest first", middleware=[catalog_page], responses=NOT_MODIFIED)
    async def brands(
        self, read_session: NamedDependency[AsyncSession], limit: Limit = 50, cursor: Cursor = None
    ) -> schemas.BrandList:
        page = await taxonomy.list_brands(read_session, limit=limit, cursor=cursor)
        return schemas.BrandList(
            items=[schemas.Brand(id=b.id, name=b.name, slug=b.slug) for b in page.items],
            next_cursor=page.next_cursor,
        )

    @get("/products", summary="Search and browse products", middleware=[catalog_page], responses=NOT_MODIFIED)
    async def products(
        self,
        resources: NamedDependency[AppResources],
        q: Annotated[str | None, QueryParameter(max_length=200, description="Full-text search")] = None,
        category: CategoryKey = None,
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
        page = await listing.list_products(
            resources.db, tree, filters, limit=limit, cursor=cursor, searches=resources.searches
        )
        return schemas.ProductList(
            items=summaries_out(page.rows, resources.storage), next_cursor=page.next_cursor
        )

    @get(
        "/products/{product_id:uuid}",
        middleware=[product_page],
        responses=NOT_MODIFIED,
        summary="A product with variants, images, size chart and rating",
    )
    async def product(
        self,
        product_id: FromPath[UUID],
        request: Request[Any, Any, Any],
        resources: NamedDependency[AppResources],
    ) -> Response[schemas.Product]:
        viewer = request.scope.get("user")
        detail = await listing.product_page(
            resources.db, product_id, viewer=viewer.user_id if isinstance(viewer, Principal) else None
        )
        if not detail["is_listed"]:
            # Only its own vendor sees an unlisted product: a personal answer, never cached.
            return Response(product_out(detail, resources.storage), headers=PERSONAL)
        return Response(product_out(detail, resources.storage))

    @get(
        "/products/{product_id:uuid}/similar",
        middleware=[catalog_page],
        responses=NOT_MODIFIED,
        summary="More like this: products that look like this one",
        description="Listed products ranked by the visual similarity of their photos to this "
        "product's first photo (`score`: cosine similarity, 1 is identical), most similar first, "
        "one entry per product, never the product itself. Filters narrow the results without "
        "shortening them: `limit` items are returned whenever that many products match. "
        "A product without a photo embedding yet (no photo, or the worker has not finished) "
        "has no similar products: 200 with empty `items`.",
    )
    async def similar_products(
        self,
        product_id: FromPath[UUID],
        resources: NamedDependency[AppResources],
        category: CategoryKey = None,
        max_price: MaxPrice = None,
        in_stock: FromQuery[bool | None] = None,
        limit: Limit = 20,
    ) -> schemas.SimilarProductList:
        filters = similar.SimilarityFilters(category=category, max_price=max_price, in_stock=in_stock)
        tree = await resources.categories.get()
        found, _ = await similar.similar_products(resources.db, tree, product_id, filters, limit=limit)
        return similar_out(found, resources.storage)

    @post(
        "/search/image",
        status_code=200,
        dependencies={"query_embedder": Provide(provide_query_embedder, sync_to_thread=False)},
        guards=[within_photo_search_rate],
        summary="Search by photo",
        description="Multipart `image` (JPEG, PNG, WebP or HEIC): listed products ranked by how "
        "much their photos look like it, with the same filters and ordering as `/similar`. "
        "413 over the size limit, 415 not an image, 422 an unusable image; 503 with "
        "`Retry-After` when no inference worker answers in time; 429 with `Retry-After` over "
        "`SEARCH_IMAGE_PER_USER_PER_MINUTE` searches by a logged-in user, or "
        "`SEARCH_IMAGE_PER_MINUTE` anonymous searches from one address.",
    )
    async def search_by_photo(
        self,
        data: MultipartBody[schemas.PhotoSearchUpload],
        resources: NamedDependency[AppResources],
        query_embedder: NamedDependency[QueryEmbedder],
        category: CategoryKey = None,
        max_price: MaxPrice = None,
        in_stock: FromQuery[bool | None] = None,
        limit: Limit = 20,
    ) -> schemas.SimilarProductList:
        filters = similar.SimilarityFilters(category=category, max_price=max_price, in_stock=in_stock)
        tree = await resources.categories.get()
        try:
            content = await data.image.read()
        finally:
            await data.image.close()
        found = await similar.search_by_photo(
            resources.db, tree, query_embedder, resources.settings, content, filters, limit=limit
        )
        return similar_out(found, resources.storage)


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

    @get("/{vendor_id:uuid}", middleware=[catalog_page], responses=NOT_MODIFIED, summary="A store")
    async def read(
        self, vendor_id: FromPath[UUID], read_session: NamedDependency[AsyncSession]
    ) -> schemas.Vendor:
        return vendor_out(await vendors.get_store(read_session, vendor_id))
