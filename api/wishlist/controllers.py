"""The caller's wishlist: list, save, unsave. Each shopper only ever sees their own."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, delete, get, put
from litestar.di import NamedDependency
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Principal, requires_user
from api.catalog.present import summary_out
from api.common import Cursor, Limit
from api.resources import AppResources
from api.wishlist import schemas
from db.services.wishlist import wishlist
from db.services.wishlist.wishlist import MAX_ITEMS


class WishlistController(Controller):
    path = "/me/wishlist"
    tags = ["wishlist"]
    guards = [requires_user]

    @get(
        "/",
        summary="Your saved products, most recently saved first",
        description="Products that are no longer listed are left out.",
    )
    async def list_saved(
        self,
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        resources: NamedDependency[AppResources],
        limit: Limit = 20,
        cursor: Cursor = None,
    ) -> schemas.Wishlist:
        page = await wishlist.list_saved(db_session, principal.user_id, limit=limit, cursor=cursor)
        return schemas.Wishlist(
            items=[
                schemas.WishlistItem(
                    product=summary_out(item.product, resources.storage), added_at=item.added_at
                )
                for item in page.items
            ],
            next_cursor=page.next_cursor,
        )

    @put(
        "/{product_id:uuid}",
        status_code=204,
        summary="Save a product",
        description=f"Saving it again changes nothing (204). 404 when the product is unknown or not "
        f"listed; 422 `wishlist_full` beyond {MAX_ITEMS} products.",
    )
    async def save(
        self,
        product_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> None:
        await wishlist.add(db_session, principal.user_id, product_id)

    @delete(
        "/{product_id:uuid}",
        status_code=204,
        summary="Unsave a product",
        description="204 also when it was not saved.",
    )
    async def unsave(
        self,
        product_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> None:
        await wishlist.remove(db_session, principal.user_id, product_id)
