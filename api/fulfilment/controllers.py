"""Fulfilments: vendors ship their own part of each paid order; staff can act on any."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Principal, requires_role
from api.common import Cursor, Limit
from api.fulfilment import schemas
from api.fulfilment.present import vendor_fulfilment_out
from api.seller.controllers import provide_store
from db.models import Vendor
from db.services.fulfilment import cancellation, moves, queries
from db.services.fulfilment.moves import Acting, Tracking

_MOVES = (
    "409 when the move is not allowed (e.g. delivering what has not shipped) or the order was "
    "cancelled or refunded meanwhile; 404 for a fulfilment that is not yours."
)


async def _view(
    session: AsyncSession, fulfilment_id: UUID, vendor_id: UUID | None
) -> schemas.VendorFulfilment:
    return vendor_fulfilment_out(await queries.get_fulfilment(session, fulfilment_id, vendor_id))


async def _pack(session: AsyncSession, fulfilment_id: UUID, acting: Acting) -> schemas.VendorFulfilment:
    await moves.pack(session, fulfilment_id, acting)
    return await _view(session, fulfilment_id, acting.vendor_id)


async def _ship(
    session: AsyncSession, fulfilment_id: UUID, acting: Acting, data: schemas.ShipIn
) -> schemas.VendorFulfilment:
    tracking = Tracking(
        carrier=data.carrier.strip(),
        tracking_number=data.tracking_number.strip(),
        tracking_url=data.tracking_url,
    )
    await moves.ship(session, fulfilment_id, acting, tracking)
    return await _view(session, fulfilment_id, acting.vendor_id)


async def _deliver(session: AsyncSession, fulfilment_id: UUID, acting: Acting) -> schemas.VendorFulfilment:
    await moves.deliver(session, fulfilment_id, acting)
    return await _view(session, fulfilment_id, acting.vendor_id)


async def _cancel(
    session: AsyncSession, fulfilment_id: UUID, acting: Acting, data: schemas.CancelIn
) -> schemas.VendorFulfilment:
    lines = [(line.order_line_id, line.quantity) for line in data.lines] if data.lines is not None else None
    await cancellation.cancel(session, fulfilment_id, acting, lines=lines, reason=data.reason.strip())
    return await _view(session, fulfilment_id, acting.vendor_id)


class VendorFulfilmentsController(Controller):
    path = "/vendor/fulfilments"
    tags = ["vendor", "fulfilment"]
    guards = [requires_role("vendor")]
    dependencies = {"store": Provide(provide_store)}

    @get("/", summary="Your parts of paid orders to ship, newest first")
    async def list_fulfilments(
        self,
        db_session: NamedDependency[AsyncSession],
        store: NamedDependency[Vendor],
        status: FromQuery[schemas.FulfilmentStatus | None] = None,
        limit: Limit = 20,
        cursor: Cursor = None,
    ) -> schemas.FulfilmentList:
        page = await queries.list_fulfilments(db_session, store.id, status=status, limit=limit, cursor=cursor)
        return schemas.FulfilmentList(
            items=[vendor_fulfilment_out(v) for v in page.items], next_cursor=page.next_cursor
        )

    @get("/{fulfilment_id:uuid}", summary="One of your fulfilments, with the address to ship to")
    async def read(
        self,
        fulfilment_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        store: NamedDependency[Vendor],
    ) -> schemas.VendorFulfilment:
        return await _view(db_session, fulfilment_id, store.id)

    @post("/{fulfilment_id:uuid}/pack", status_code=200, summary="Mark it packed", description=_MOVES)
    async def pack(
        self,
        fulfilment_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        store: NamedDependency[Vendor],
        principal: NamedDependency[Principal],
    ) -> schemas.VendorFulfilment:
        return await _pack(db_session, fulfilment_id, _vendor(principal, store))

    @post(
        "/{fulfilment_id:uuid}/ship",
        status_code=200,
        summary="Mark it shipped, with the carrier and tracking number (the shopper is told)",
        description=_MOVES,
    )
    async def ship(
        self,
        fulfilment_id: FromPath[UUID],
        data: JSONBody[schemas.ShipIn],
        db_session: NamedDependency[AsyncSession],
        store: NamedDependency[Vendor],
        principal: NamedDependency[Principal],
    ) -> schemas.VendorFulfilment:
        return await _ship(db_session, fulfilment_id, _vendor(principal, store), data)

    @post("/{fulfilment_id:uuid}/deliver", status_code=200, summary="Mark it delivered", description=_MOVES)
    async def deliver(
        self,
        fulfilment_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        store: NamedDependency[Vendor],
        principal: NamedDependency[Principal],
    ) -> schemas.VendorFulfilment:
        return await _deliver(db_session, fulfilment_id, _vendor(principal, store))

    @post(
        "/{fulfilment_id:uuid}/cancel",
        status_code=200,
        summary="Cancel it, or some units of some lines, before it ships (refunded to the shopper)",
        description="Cancelled units go back on sale and what the shopper paid for them is refunded; "
        "cancelling everything also refunds the shipping. " + _MOVES + " 422 names a line or quantity "
        "that cannot be cancelled.",
    )
    async def cancel(
        self,
        fulfilment_id: FromPath[UUID],
        data: JSONBody[schemas.CancelIn],
        db_session: NamedDependency[AsyncSession],
        store: NamedDependency[Vendor],
        principal: NamedDependency[Principal],
    ) -> schemas.VendorFulfilment:
        return await _cancel(db_session, fulfilment_id, _vendor(principal, store), data)


def _vendor(principal: Principal, store: Vendor) -> Acting:
    return Acting(actor="vendor", user_id=principal.user_id, vendor_id=store.id)


def _staff(principal: Principal) -> Acting:
    return Acting(actor="staff", user_id=principal.user_id, vendor_id=None)


class StaffFulfilmentsController(Controller):
    path = "/staff/fulfilments"
    tags = ["staff", "fulfilment"]
    guards = [requires_role("staff")]

    @get("/", summary="Fulfilments of paid orders of every vendor, newest first")
    async def list_fulfilments(
        self,
        db_session: NamedDependency[AsyncSession],
        status: FromQuery[schemas.FulfilmentStatus | None] = None,
        vendor: FromQuery[UUID | None] = None,
        order: FromQuery[UUID | None] = None,
        limit: Limit = 20,
        cursor: Cursor = None,
    ) -> schemas.FulfilmentList:
        page = await queries.list_fulfilments(
            db_session, vendor, status=status, order_id=order, limit=limit, cursor=cursor
        )
        return schemas.FulfilmentList(
            items=[vendor_fulfilment_out(v) for v in page.items], next_cursor=page.next_cursor
        )

    @post(
        "/{fulfilment_id:uuid}/pack",
        status_code=200,
        summary="Mark any fulfilment packed",
        description=_MOVES,
    )
    async def pack(
        self,
        fulfilment_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> schemas.VendorFulfilment:
        return await _pack(db_session, fulfilment_id, _staff(principal))

    @post(
        "/{fulfilment_id:uuid}/ship",
        status_code=200,
        summary="Mark any fulfilment shipped",
        description=_MOVES,
    )
    async def ship(
        self,
        fulfilment_id: FromPath[UUID],
        data: JSONBody[schemas.ShipIn],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> schemas.VendorFulfilment:
        return await _ship(db_session, fulfilment_id, _staff(principal), data)

    @post(
        "/{fulfilment_id:uuid}/deliver",
        status_code=200,
        summary="Mark any fulfilment delivered",
        description=_MOVES,
    )
    async def deliver(
        self,
        fulfilment_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> schemas.VendorFulfilment:
        return await _deliver(db_session, fulfilment_id, _staff(principal))

    @post(
        "/{fulfilment_id:uuid}/cancel",
        status_code=200,
        summary="Cancel any fulfilment (or lines)",
        description=_MOVES,
    )
    async def cancel(
        self,
        fulfilment_id: FromPath[UUID],
        data: JSONBody[schemas.CancelIn],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> schemas.VendorFulfilment:
        return await _cancel(db_session, fulfilment_id, _staff(principal), data)
