"""Returns: shoppers ask to return delivered items; the vendor approves or rejects, then receives
them, which refunds the shopper."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Principal, requires_role, requires_user
from api.catalog.schemas import VendorRef
from api.common import Cursor, Limit, money
from api.returns import schemas
from api.seller.controllers import provide_store
from db.models import Vendor
from db.services.orders.queries import own_order
from db.services.returns import handling, requests, views


def return_out(view: views.ReturnView) -> schemas.Return:
    r = view.ret
    vendor_name = next((line.vendor_name for _, line in view.lines), "")
    return schemas.Return(
        id=r.id,
        order_id=r.order_id,
        fulfilment_id=r.fulfilment_id,
        vendor=VendorRef(id=r.vendor_id, name=vendor_name),
        status=r.status,  # type: ignore[arg-type]  # constrained by a CHECK constraint
        lines=[
            schemas.ReturnLine(
                order_line_id=line.id,
                title=line.title,
                size=line.size,
                color=line.color,
                quantity=rl.quantity,
                reason=rl.reason,
                unit_price=money(line.unit_price_amount, r.currency),
            )
            for rl, line in view.lines
        ],
        note=r.note,
        vendor_note=r.vendor_note,
        refund=money(r.refund_amount, r.currency) if r.refund_amount is not None else None,
        restocked=r.restocked,
        created_at=r.created_at,
        decided_at=r.decided_at,
        received_at=r.received_at,
        refunded_at=r.refunded_at,
    )


class OrderReturnsController(Controller):
    path = "/orders/{order_id:uuid}/returns"
    tags = ["orders", "returns"]
    guards = [requires_user]

    @post(
        "/",
        status_code=201,
        summary="Ask to return delivered items of one seller",
        description="Inside the seller's return window after delivery; final-sale items, items not "
        "delivered yet, items of two sellers at once or more units than were delivered are 422, "
        "naming the line.",
    )
    async def request_return(
        self,
        order_id: FromPath[UUID],
        data: JSONBody[schemas.ReturnIn],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> schemas.Return:
        lines = [requests.LineIn(i.order_line_id, i.quantity, i.reason.strip()) for i in data.lines]
        view = await requests.request_return(db_session, principal.user_id, order_id, lines, data.note)
        return return_out(view)

    @get("/", summary="Your returns of this order")
    async def list_returns(
        self,
        order_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> schemas.ReturnList:
        await own_order(db_session, principal.user_id, order_id)  # 404 for anyone else's order
        return schemas.ReturnList(items=[return_out(v) for v in await views.of_order(db_session, order_id)])


class VendorReturnsController(Controller):
    path = "/vendor/returns"
    tags = ["vendor", "returns"]
    guards = [requires_role("vendor")]
    dependencies = {"store": Provide(provide_store)}

    @get("/", summary="Returns of your items, newest first")
    async def list_returns(
        self,
        db_session: NamedDependency[AsyncSession],
        store: NamedDependency[Vendor],
        status: FromQuery[schemas.ReturnStatus | None] = None,
        limit: Limit = 20,
        cursor: Cursor = None,
    ) -> schemas.ReturnList:
        page = await views.of_vendor(db_session, store.id, status=status, limit=limit, cursor=cursor)
        return schemas.ReturnList(items=[return_out(v) for v in page.items], next_cursor=page.next_cursor)

    @post(
        "/{return_id:uuid}/approve", status_code=200, summary="Approve a return (the shopper sends the items)"
    )
    async def approve(
        self,
        return_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        store: NamedDependency[Vendor],
        data: JSONBody[schemas.DecisionIn | None] = None,
    ) -> schemas.Return:
        note = data.note if data is not None else None
        return return_out(await handling.decide(db_session, return_id, store.id, approve=True, note=note))

    @post("/{return_id:uuid}/reject", status_code=200, summary="Reject a return, saying why")
    async def reject(
        self,
        return_id: FromPath[UUID],
        data: JSONBody[schemas.RejectionIn],
        db_session: NamedDependency[AsyncSession],
        store: NamedDependency[Vendor],
    ) -> schemas.Return:
        return return_out(
            await handling.decide(db_session, return_id, store.id, approve=False, note=data.note)
        )

    @post(
        "/{return_id:uuid}/receive",
        status_code=200,
        summary="You have the items back: the shopper is refunded what they paid for them",
        description="`restock: false` keeps items that cannot be sold again out of stock. 409 unless the "
        "return was approved.",
    )
    async def receive(
        self,
        return_id: FromPath[UUID],
        data: JSONBody[schemas.ReceiptIn],
        db_session: NamedDependency[AsyncSession],
        store: NamedDependency[Vendor],
    ) -> schemas.Return:
        return return_out(await handling.receive(db_session, return_id, store.id, restock=data.restock))
