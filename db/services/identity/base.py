"""What every identity use case works with: the transaction, settings, hashing, limits, audit."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from core.adapters.passwords import PasswordHasher
from core.adapters.ratelimit import RateLimiter
from core.settings import Settings
from db.services.identity.audit import AuditLog, ClientInfo
from db.services.identity.standing import StandingListener
from db.services.identity.users import UserService


class IdentityService:
    def __init__(
        self,
        session: AsyncSession,
        settings: Settings,
        hasher: PasswordHasher,
        limiter: RateLimiter,
        client: ClientInfo,
        listener: StandingListener | None = None,
    ) -> None:
        self.session = session
        self.settings = settings
        self.hasher = hasher
        self.limiter = limiter
        self.client = client
        # Told of revoked access tokens after the commit (None: processes notice within a second).
        self.listener = listener
        self.users = UserService(session=session)
        self.audit = AuditLog(session, client)
