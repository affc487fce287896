"""Staff-only endpoints: users and their roles, stores, order moves, the security audit log."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

import msgspec
from litestar import Controller, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Principal, requires_role
from api.catalog.present import vendor_out
from api.catalog.schemas import StoreStatus, Vendor
from api.common import user_out
from api.identity.schemas import User
from api.orders.present import order_out
from api.orders.schemas import Order, StaffOrderMove
from api.resources import AppResources
from api.staff import schemas
from db.services.catalog.vendors import set_store_status
from db.services.identity.audit import AuditLog, ClientInfo
from db.services.identity.users import UserService
from db.services.orders import lifecycle, queries

Limit = Annotated[int, QueryParameter(ge=1, le=100, description="Page size")]
Cursor = Annotated[
    str | None, QueryParameter(max_length=200, description="`next_cursor` of the previous page")
]


class StaffController(Controller):
    path = "/staff"
    tags = ["staff"]
    guards = [requires_role("staff")]

    @get("/users", summary="List users, newest first")
    async def list_users(
        self,
        db_session: NamedDependency[AsyncSession],
        limit: Limit = 20,
        cursor: Cursor = None,
        role: FromQuery[Literal["client", "vendor", "staff"] | None] = None,
        email: Annotated[str | None, QueryParameter(max_length=254)] = None,
    ) -> schemas.UserList:
        page = await UserService(session=db_session).list_users(
            limit=limit, cursor=cursor, role=role, email=email
        )
        return schemas.UserList(items=[user_out(u) for u in page.items], next_cursor=page.next_cursor)

    @patch(
        "/users/{user_id:uuid}/role",
        summary="Change a user's role (their sessions and access tokens end at once)",
    )
    async def change_role(
        self,
        user_id: FromPath[UUID],
        data: JSONBody[schemas.RoleChange],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        client: NamedDependency[ClientInfo],
        resources: NamedDependency[AppResources],
    ) -> User:
        user = await UserService(session=db_session).change_role(
            user_id,
            data.role,
            actor_id=principal.user_id,
            audit_log=AuditLog(db_session, client),
            listener=resources.notices,
        )
        return user_out(user)

    @patch(
        "/users/{user_id:uuid}/status",
        summary="Suspend or reinstate a user (suspending ends their sessions and access tokens at once)",
    )
    async def user_status(
        self,
        user_id: FromPath[UUID],
        data: JSONBody[schemas.UserStatus],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        client: NamedDependency[ClientInfo],
        resources: NamedDependency[AppResources],
    ) -> User:
        user = await UserService(session=db_session).set_status(
            user_id,
            data.status,
            actor_id=principal.user_id,
            audit_log=AuditLog(db_session, client),
            listener=resources.notices,
        )
        return user_out(user)

    @patch(
        "/vendors/{vendor_id:uuid}/status",
        summary="Suspend or reinstate a store (suspending ends its owner's access tokens at once)",
    )
    async def store_status(
        self,
        vendor_id: FromPath[UUID],
        data: JSONBody[StoreStatus],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        client: NamedDependency[ClientInfo],
        resources: NamedDependency[AppResources],
    ) -> Vendor:
        vendor = await set_store_status(db_session, vendor_id, data.status, resources.notices)
        AuditLog(db_session, client).record(
            "store_status_changed", user_id=vendor.owner_id, actor_id=principal.user_id, status=data.status
        )
        return vendor_out(vendor)

    @post(
        "/orders/{order_id:uuid}/status",
        status_code=200,
        summary="Refund or cancel an order",
        description="Checked against the order state machine (409 when not allowed); audit-logged. "
        "Refunding or cancelling a paid order gives back what its payments still hold; what has "
        "not shipped goes back on sale and its fulfilments are cancelled. Shipping and delivery "
        "move per fulfilment (`/staff/fulfilments/{id}/...`).",
    )
    async def move_order(
        self,
        order_id: FromPath[UUID],
        data: JSONBody[StaffOrderMove],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> Order:
        order = await lifecycle.staff_move(
            db_session, order_id, data.status, staff_id=principal.user_id, reason=data.reason
        )
        view = await queries.order_view(db_session, order)
        return order_out(view.order, view.lines, view.fulfilments, view.payments)

    @get("/audit-events", summary="The security audit log, newest first")
    async def audit_events(
        self,
        db_session: NamedDependency[AsyncSession],
        limit: Limit = 50,
        cursor: Cursor = None,
        user_id: FromQuery[UUID | None] = None,
        event_type: Annotated[str | None, QueryParameter(max_length=64)] = None,
    ) -> schemas.AuditEventList:
        page = await AuditLog(db_session).list(
            limit=limit, cursor=cursor, user_id=user_id, event_type=event_type
        )
        return schemas.AuditEventList(
            items=[msgspec.convert(e, schemas.AuditEvent, from_attributes=True) for e in page.items],
            next_cursor=page.next_cursor,
        )
