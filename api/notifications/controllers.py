"""``/me/notifications``: a shopper's notices (order placed, paid, shipped, ...), newest first."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Principal, requires_user
from api.common import Cursor, Limit
from api.notifications import schemas
from db.models import Notification
from db.services.notifications import inbox

UnreadOnly = Annotated[bool, QueryParameter(description="Only the notifications not read yet")]


def notification_out(notification: Notification) -> schemas.Notification:
    return schemas.Notification(
        id=notification.id,
        kind=notification.kind,
        title=notification.title,
        body=notification.body,
        data=notification.data,
        read_at=notification.read_at,
        created_at=notification.created_at,
    )


class NotificationsController(Controller):
    path = "/me/notifications"
    tags = ["notifications"]
    guards = [requires_user]

    @get("/", summary="Your notifications, newest first, with how many are unread")
    async def list_notifications(
        self,
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        limit: Limit = 20,
        cursor: Cursor = None,
        unread: UnreadOnly = False,
    ) -> schemas.NotificationList:
        page = await inbox.list_notifications(
            db_session, principal.user_id, limit=limit, cursor=cursor, unread_only=unread
        )
        return schemas.NotificationList(
            items=[notification_out(n) for n in page.items],
            next_cursor=page.next_cursor,
            unread_count=await inbox.unread_count(db_session, principal.user_id),
        )

    @post("/{notification_id:uuid}/read", status_code=204, summary="Mark one of your notifications read")
    async def mark_read(
        self,
        notification_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> None:
        await inbox.mark_read(db_session, principal.user_id, notification_id)

    @post("/read-all", status_code=204, summary="Mark all your notifications read")
    async def mark_all_read(
        self, db_session: NamedDependency[AsyncSession], principal: NamedDependency[Principal]
    ) -> None:
        await inbox.mark_all_read(db_session, principal.user_id)
