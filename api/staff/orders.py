"""The staff order console: every order, searched and read in full (read-only).

Changing an order stays where it was: ``POST /staff/orders/{id}/status`` (``controllers.py``).
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import requires_role
from api.common import Cursor, Limit
from api.staff import present, schemas
from core.rules.orders import OrderStatus
from db.services.staff_console import detail, search

# Times arrive as text and are parsed by the service, so a bad one is reported under its query
# name (`from`, which cannot be a Python parameter name).
_TIME = "RFC 3339 with its offset, e.g. 2026-12-01T09:30:00Z"
FromTime = Annotated[
    str | None, QueryParameter(name="from", max_length=64, description=f"Placed at or after ({_TIME})")
]
ToTime = Annotated[str | None, QueryParameter(max_length=64, description=f"Placed before ({_TIME})")]
BuyerEmail = Annotated[
    str | None, QueryParameter(min_length=1, max_length=254, description="The buyer's email, any case")
]
Reference = Annotated[
    str | None, QueryParameter(min_length=1, max_length=100, description="A payment reference of the order")
]


class StaffOrdersController(Controller):
    path = "/staff/orders"
    tags = ["staff"]
    guards = [requires_role("staff")]

    @get(
        "/",
        summary="Search every order, newest first",
        description="Every filter given must hold: `status`, `vendor` (orders holding a line of that "
        "store), `buyer_email` (exact, any case), `reference` (a payment reference of the order), "
        "`from`/`to` (placed in [from, to)).",
    )
    async def search_orders(
        self,
        db_session: NamedDependency[AsyncSession],
        limit: Limit = 20,
        cursor: Cursor = None,
        status: FromQuery[OrderStatus | None] = None,
        vendor: FromQuery[UUID | None] = None,
        buyer_email: BuyerEmail = None,
        reference: Reference = None,
        from_: FromTime = None,
        to: ToTime = None,
    ) -> schemas.StaffOrderList:
        wanted = search.order_search(
            status=status,
            vendor_id=vendor,
            buyer_email=buyer_email,
            reference=reference,
            created_from=from_,
            created_to=to,
        )
        page = await search.search_orders(db_session, wanted, limit=limit, cursor=cursor)
        return schemas.StaffOrderList(
            items=[present.summary_out(found) for found in page.items], next_cursor=page.next_cursor
        )

    @get(
        "/{order_id:uuid}",
        summary="One order in full",
        description="Lines, fulfilments, payments, refunds, returns, the provider's webhook events "
        "about its payments and the timeline of every move of the order and its fulfilments.",
    )
    async def read_order(
        self, order_id: FromPath[UUID], db_session: NamedDependency[AsyncSession]
    ) -> schemas.StaffOrderDetail:
        return present.detail_out(await detail.order_in_full(db_session, order_id))
