"""The user aggregate: lookups, profile and staff changes."""

from __future__ import annotations

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
from db.services.identity.errors import UserNotFound


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

    async def change_role(self, user_id: UUID, role: str, *, actor_id: UUID, audit_log: AuditLog) -> User:
        """Set ``role``; the user's sessions are revoked so the new role applies from the next login."""
        user = await self.require(user_id)
        if user.role == role:
            return user
        previous, user.role = user.role, role
        await self.repository.session.execute(
            update(RefreshToken)
            .where(RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now())
        )
        audit_log.record(audit.ROLE_CHANGED, user_id=user.id, actor_id=actor_id, old=previous, new=role)
        await self.repository.session.flush()
        return user
