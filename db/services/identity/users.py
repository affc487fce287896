"""The user aggregate: lookups, profile and staff changes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal
from uuid import UUID

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import select, update
from sqlalchemy.sql.functions import now

from core.page_versions import touch_reviewers
from db.models import RefreshToken, User
from db.pagination import Page, keyset_page
from db.services.identity import audit
from db.services.identity.audit import AuditLog
from db.services.identity.errors import OwnAccount, UserNotFound
from db.services.identity.standing import StandingListener, revoke_access


def normalise_email(email: str) -> str:
    return email.strip().lower()


class UserService(SQLAlchemyAsyncRepositoryService[User]):
    class Repo(SQLAlchemyAsyncRepository[User]):
        model_type = User

    repository_type = Repo

    async def by_email(self, email: str) -> User | None:
        found: User | None = await self.repository.get_one_or_none(email=normalise_email(email))
        return found

    async def require(self, user_id: UUID) -> User:
        """Raises UserNotFound."""
        user: User | None = await self.repository.get_one_or_none(id=user_id)
        if user is None:
            raise UserNotFound()
        return user

    async def update_profile(
        self,
        user_id: UUID,
        audit_log: AuditLog,
        *,
        full_name: str | None,
        phone: str | None,
        clear_phone: bool,
    ) -> User:
        user = await self.require(user_id)
        changed = []
        if full_name is not None and full_name != user.full_name:
            user.full_name = full_name
            changed.append("full_name")
            touch_reviewers()
        if clear_phone or (phone is not None and phone != user.phone):
            user.phone = None if clear_phone else phone
            changed.append("phone")
        if changed:
            audit_log.record(audit.PROFILE_UPDATED, user_id=user.id, fields=changed)
            await self.repository.session.flush()
        return user

    async def list_users(
        self, *, limit: int, cursor: str | None, role: str | None = None, email: str | None = None
    ) -> Page[User]:
        stmt = select(User)
        if role is not None:
            stmt = stmt.where(User.role == role)
        if email is not None:
            stmt = stmt.where(User.email == normalise_email(email))
        return await keyset_page(self.repository.session, stmt, User.id, limit=limit, cursor=cursor)

    async def end_sessions(self, user_id: UUID, listener: StandingListener | None) -> int:
        """Revoke every refresh token and every access token of the user; the count of sessions ended."""
        ended = await self.repository.session.execute(
            update(RefreshToken)
            .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now())
        )
        await revoke_access(self.repository.session, [user_id], listener)
        return int(ended.rowcount)

    async def change_role(
        self,
        user_id: UUID,
        role: str,
        *,
        actor_id: UUID,
        audit_log: AuditLog,
        listener: StandingListener | None = None,
    ) -> User:
        """Set ``role``; the user's sessions and access tokens end at once (the new role applies
        from the next login)."""
        user = await self.require(user_id)
        if user.role == role:
            return user
        previous, user.role = user.role, role
        await self.end_sessions(user.id, listener)
        audit_log.record(audit.ROLE_CHANGED, user_id=user.id, actor_id=actor_id, old=previous, new=role)
        await self.repository.session.flush()
        return user

    async def set_status(
        self,
        user_id: UUID,
        status: Literal["active", "suspended"],
        *,
        actor_id: UUID,
        audit_log: AuditLog,
        listener: StandingListener | None = None,
    ) -> User:
        """Suspend a user (sessions and access tokens end at once, no login until reinstated) or
        reinstate one. Doing it again changes nothing.

        Raises:
            UserNotFound (404). OwnAccount: staff cannot suspend themselves (409).
        """
        user = await self.require(user_id)
        if status == "suspended" and user.suspended_at is None:
            if user.id == actor_id:
                raise OwnAccount("You cannot suspend your own account.")
            user.suspended_at = datetime.now(UTC)
            ended = await self.end_sessions(user.id, listener)
            audit_log.record(audit.USER_SUSPENDED, user_id=user.id, actor_id=actor_id, sessions_revoked=ended)
        elif status == "active" and user.suspended_at is not None:
            user.suspended_at = None
            # Tokens from before the suspension stay refused; the news makes every process
            # read the user again, so a new sign-in works at once.
            await revoke_access(self.repository.session, [user.id], listener)
            audit_log.record(audit.USER_REINSTATED, user_id=user.id, actor_id=actor_id)
        await self.repository.session.flush()
        return user
