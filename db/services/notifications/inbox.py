"""A shopper's notifications: newest first, the unread ones, marking them read."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Notification
from db.pagination import Page, keyset_page
from db.services.notifications.errors import NotificationNotFound


async def list_notifications(
    session: AsyncSession, user_id: UUID, *, limit: int, cursor: str | None, unread_only: bool = False
) -> Page[Notification]:
    """``user_id``'s notifications, newest first; only the unread ones with ``unread_only``.

    Raises:
        InvalidInput: ``cursor`` was not made by this listing (422).
    """
    stmt = select(Notification).where(Notification.user_id == user_id)
    if unread_only:
        # Matches the partial index ix_notifications_user_unread (user_id, id) WHERE read_at IS NULL.
        stmt = stmt.where(Notification.read_at.is_(None))
    return await keyset_page(session, stmt, Notification.id, limit=limit, cursor=cursor)


async def unread_count(session: AsyncSession, user_id: UUID) -> int:
    """How many of ``user_id``'s notifications are unread (an index-only count on the partial index)."""
    count = await session.scalar(
        select(func.count())
        .select_from(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
    )
    return int(count or 0)


async def mark_read(session: AsyncSession, user_id: UUID, notification_id: UUID) -> None:
    """Mark one of ``user_id``'s notifications read. Marking it again keeps the first ``read_at``.

    Raises:
        NotificationNotFound: no such notification, or another user's (404).
    """
    now = datetime.now(UTC)
    marked = await session.scalar(
        update(Notification)
        .where(
            Notification.id == notification_id,
            Notification.user_id == user_id,
            Notification.read_at.is_(None),
        )
        .values(read_at=now, updated_at=now)
        .returning(Notification.id)
    )
    if marked is not None:
        return
    owned = await session.scalar(
        select(exists().where(Notification.id == notification_id, Notification.user_id == user_id))
    )
    if not owned:
        raise NotificationNotFound()


async def mark_all_read(session: AsyncSession, user_id: UUID) -> int:
    """Mark every unread notification of ``user_id`` read; returns how many were unread."""
    now = datetime.now(UTC)
    result = await session.execute(
        update(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=now, updated_at=now)
        .returning(Notification.id)
    )
    return len(result.all())
