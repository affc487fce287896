"""Login, refresh-token rotation with reuse detection, logout and the list of sessions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from core.adapters.passwords import PasswordHasher, needs_rehash
from core.adapters.ratelimit import Backoff, RateLimiter, subject
from core.adapters.tokens import TokenSigner, hash_refresh_token, new_refresh_token
from core.errors import RateLimited
from core.ids import new_id
from core.settings import Settings
from db.models import RefreshToken, User
from db.services.identity import audit
from db.services.identity.audit import ClientInfo
from db.services.identity.base import IdentityService
from db.services.identity.errors import (
    AccountSuspended,
    EmailNotVerified,
    InvalidCredentials,
    InvalidRefreshToken,
    LoginThrottled,
    SessionNotFound,
)
from db.services.identity.standing import StandingListener
from db.services.identity.users import normalise_email

LOGIN_FAILURES = "login-failures"
LOGIN_IP = "login-ip"


def login_backoff(settings: Settings) -> Backoff:
    """How failed logins of one address for one account slow that address down (LOGIN_* settings)."""
    return Backoff(
        free=settings.login_free_failures_per_source,
        base=settings.login_backoff_base_seconds,
        cap=settings.login_backoff_max_seconds,
        memory=settings.login_failure_window_seconds,
        ceiling=settings.login_max_failures_per_account,
    )


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One login (a refresh-token family) as the user sees it."""

    id: UUID
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    user_agent: str | None
    ip: str | None


class SessionService(IdentityService):
    def __init__(
        self,
        session: AsyncSession,
        settings: Settings,
        hasher: PasswordHasher,
        limiter: RateLimiter,
        signer: TokenSigner,
        client: ClientInfo,
        listener: StandingListener | None = None,
    ) -> None:
        super().__init__(session, settings, hasher, limiter, client, listener)
        self.signer = signer

    def _new_refresh(self, user: User, family_id: UUID) -> str:
        token = new_refresh_token()
        self.session.add(
            RefreshToken(
                user_id=user.id,
                family_id=family_id,
                token_hash=hash_refresh_token(token),
                expires_at=datetime.now(UTC) + timedelta(seconds=self.settings.refresh_token_ttl_seconds),
                user_agent=(self.client.user_agent or "")[:300] or None,
                ip=self.client.ip,
            )
        )
        return token

    def _pair(self, user: User, refresh_token: str) -> TokenPair:
        return TokenPair(
            access_token=self.signer.issue(user.id, user.role, version=user.token_version),
            refresh_token=refresh_token,
            expires_in=self.signer.ttl,
        )

    async def login(self, email: str, password: str) -> TokenPair:
        """Check the password and open a session.

        Failures slow down the (account, client address) pair that made them, never the account
        as a whole (see :func:`login_backoff`): someone guessing from elsewhere cannot keep the
        owner out. Unknown emails are counted the same way, so the answers do not tell whether
        an account exists.

        Raises:
            RateLimited: too many attempts from this address (or this logged-in user) (429).
            LoginThrottled: this address must wait after failing for this account (429 with
                Retry-After, also for the right password; it is not checked).
            InvalidCredentials: unknown email or wrong password, indistinguishably (401).
            EmailNotVerified: right password, email not verified yet (403).
            AccountSuspended: right password, account suspended by staff (403).
        """
        email = normalise_email(email)
        who = subject(email)
        source = self.client.ip or "unknown"
        s = self.settings
        if self.client.caller:
            await self.limiter.hit(
                LOGIN_IP,
                self.client.caller,
                limit=s.login_max_attempts_per_ip,
                window=s.login_ip_window_seconds,
            )
        user = await self.users.by_email(email)
        try:
            await self.limiter.attempt(LOGIN_FAILURES, who, source, login_backoff(s))
        except RateLimited as waiting:
            self.audit.record(audit.LOGIN_THROTTLED, user_id=user.id if user else None, email_hash=who)
            raise LoginThrottled(
                "Too many failed logins for this account from your address. Try again after the "
                "time in Retry-After, or reset your password.",
                retry_after=waiting.retry_after,
            ) from None
        if not await self.hasher.verify(user.password_hash if user else None, password):
            self.audit.record(audit.LOGIN_FAILED, user_id=user.id if user else None, email_hash=who)
            raise InvalidCredentials("The email or password is incorrect.")
        assert user is not None  # verify() never accepts a missing hash
        await self.limiter.succeeded(LOGIN_FAILURES, who, source)
        if not user.is_verified:
            self.audit.record(audit.LOGIN_UNVERIFIED, user_id=user.id)
            raise EmailNotVerified("Verify your email address with the code we sent before logging in.")
        if user.suspended_at is not None:
            self.audit.record(audit.LOGIN_SUSPENDED, user_id=user.id)
            raise AccountSuspended("This account is suspended; contact support.")
        if needs_rehash(user.password_hash):
            user.password_hash = await self.hasher.hash(password)
        refresh = self._new_refresh(user, new_id())
        self.audit.record(audit.LOGIN_SUCCEEDED, user_id=user.id)
        await self.session.flush()
        return self._pair(user, refresh)

    async def refresh(self, refresh_token: str) -> TokenPair:
        """Exchange a refresh token for a new pair (rotation).

        The token's row is locked, so of two concurrent refreshes with the same token exactly
        one rotates it; the other then sees a rotated token. Presenting a rotated token again is
        treated as theft: the whole family is revoked, the newest token included.

        Raises:
            InvalidRefreshToken: unknown, expired, revoked or reused (401).
        """
        row = await self.session.scalar(
            select(RefreshToken)
            .where(RefreshToken.token_hash == hash_refresh_token(refresh_token))
            .with_for_update()
        )
        now = datetime.now(UTC)
        if row is None or row.revoked_at is not None or row.expires_at <= now:
            raise InvalidRefreshToken("The refresh token is invalid or has expired.")
        if row.rotated_at is not None:
            await self._revoke_family(row.family_id, now)
            self.audit.record(audit.REFRESH_REUSED, user_id=row.user_id, family_id=str(row.family_id))
            raise InvalidRefreshToken("The refresh token was already used; the session has been ended.")
        user = await self.users.require(row.user_id)
        if user.suspended_at is not None:  # suspension revokes them; this is belt and braces
            raise InvalidRefreshToken("The refresh token is invalid or has expired.")
        row.rotated_at = now
        refresh = self._new_refresh(user, row.family_id)
        await self.session.flush()
        return self._pair(user, refresh)

    async def _revoke_family(self, family_id: UUID, now: datetime) -> None:
        await self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    async def logout(self, refresh_token: str) -> None:
        """End the session the token belongs to. Unknown tokens are ignored (idempotent)."""
        row = await self.session.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == hash_refresh_token(refresh_token))
        )
        if row is None:
            return
        await self._revoke_family(row.family_id, datetime.now(UTC))
        self.audit.record(audit.LOGGED_OUT, user_id=row.user_id, family_id=str(row.family_id))

    async def logout_everywhere(self, refresh_token: str) -> None:
        """End every session of the token's user and refuse every access token issued to them so
        far. Only the live token of a session counts (not revoked, rotated or expired); any other
        changes nothing, so an old stolen token cannot be used to sign the owner out (idempotent)."""
        row = await self.session.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == hash_refresh_token(refresh_token))
        )
        if row is None or row.revoked_at is not None or row.rotated_at is not None:
            return
        if row.expires_at <= datetime.now(UTC):
            return
        ended = await self.users.end_sessions(row.user_id, self.listener)
        self.audit.record(audit.LOGGED_OUT_EVERYWHERE, user_id=row.user_id, sessions_revoked=ended)
        await self.session.flush()

    async def list_sessions(self, user_id: UUID) -> list[SessionInfo]:
        """The user's live sessions, most recently used first."""
        now = datetime.now(UTC)
        rows = await self.session.execute(
            select(
                RefreshToken.family_id,
                func.min(RefreshToken.created_at),
                func.max(RefreshToken.created_at),
                func.max(RefreshToken.expires_at),
            )
            .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
            .group_by(RefreshToken.family_id)
            .having(func.max(RefreshToken.expires_at) > now)
            .order_by(func.max(RefreshToken.created_at).desc())
        )
        families = rows.all()
        latest = {
            t.family_id: t
            for t in await self.session.scalars(
                select(RefreshToken)
                .where(RefreshToken.family_id.in_([f[0] for f in families]))
                .order_by(RefreshToken.family_id, RefreshToken.id.desc())
                .ext(distinct_on(RefreshToken.family_id))
            )
        }
        return [
            SessionInfo(
                id=family_id,
                created_at=created,
                last_used_at=last,
                expires_at=expires,
                user_agent=latest[family_id].user_agent,
                ip=latest[family_id].ip,
            )
            for family_id, created, last, expires in families
        ]

    async def revoke_session(self, user_id: UUID, session_id: UUID) -> None:
        """End one of the caller's own sessions.

        Raises:
            SessionNotFound: no such live session of this user (another user's is not found either).
        """
        owned = await self.session.scalar(
            select(func.count())
            .select_from(RefreshToken)
            .where(
                RefreshToken.family_id == session_id,
                RefreshToken.user_id == user_id,
                RefreshToken.revoked_at.is_(None),
            )
        )
        if not owned:
            raise SessionNotFound()
        await self._revoke_family(session_id, datetime.now(UTC))
        self.audit.record(audit.SESSION_REVOKED, user_id=user_id, family_id=str(session_id))


__all__ = ["SessionInfo", "SessionService", "TokenPair"]
