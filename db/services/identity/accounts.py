"""Registration, email verification and password reset."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from sqlalchemy.exc import IntegrityError

from core.adapters.passwords import password_problems
from core.adapters.ratelimit import subject
from core.jobs import defer
from core.task_names import SEND_ACCOUNT_EXISTS, SEND_CODE
from db.models import User
from db.models.one_time_code import CodePurpose
from db.services.identity import audit
from db.services.identity.base import IdentityService
from db.services.identity.codes import consume_code
from db.services.identity.errors import WeakPassword
from db.services.identity.sessions import LOGIN_FAILURES
from db.services.identity.users import normalise_email


class AccountService(IdentityService):
    def _check_password(
        self, password: str, email: str, full_name: str = "", field: str = "password"
    ) -> None:
        guessable = [email, email.split("@", maxsplit=1)[0], *full_name.split()]
        problems = password_problems(password, user_inputs=guessable)
        if problems:
            raise WeakPassword(problems, field=field)

    async def register(
        self, *, email: str, password: str, full_name: str, role: Literal["client", "vendor"]
    ) -> None:
        """Create an unverified account and send it a verification code (after commit); for an
        email that already has an account, mail its owner instead. The caller's answer is the
        same either way, so registration does not tell whether an address has an account.

        Raises:
            WeakPassword: too short, too long or too guessable (422; judged on the request alone).
        """
        email = normalise_email(email)
        full_name = full_name.strip()
        self._check_password(password, email, full_name)
        # Hashed whether or not the account exists, so both answers take as long.
        password_hash = await self.hasher.hash(password)
        if await self.users.by_email(email) is not None:
            await self._notify_owner(email)
            return
        user = User(email=email, password_hash=password_hash, full_name=full_name, role=role)
        try:
            async with self.session.begin_nested():
                self.session.add(user)
                await self.session.flush()
        except IntegrityError:  # registered concurrently between the check and the insert
            if user in self.session:
                self.session.expunge(user)
            await self._notify_owner(email)
            return
        self.audit.record(audit.REGISTERED, user_id=user.id, role=role)
        defer(SEND_CODE, email, "verify_email", durable=True)

    async def _notify_owner(self, email: str) -> None:
        """Mail the owner of ``email`` that someone tried to register with it. Past the per-email
        cap the notice is skipped rather than refused: a 429 here would tell that the account
        exists, and the owner has been told already."""
        window = await self.limiter.count(
            "register-existing", subject(email), window=self.settings.otp_window_seconds
        )
        if window.count <= self.settings.otp_max_sends_per_email:
            defer(SEND_ACCOUNT_EXISTS, email, durable=True)

    async def request_code(self, email: str, purpose: CodePurpose) -> None:
        """Ask for a (new) code by email. Known and unknown emails take the same path (the mail
        task decides whether there is anyone to write to), so the answer and its timing do not
        tell whether an account exists.

        Sends are counted per (client address, email), so one address asking again and again
        is refused without using up the owner's, and per email (looser) so no one can flood a
        mailbox from many addresses.

        Raises:
            RateLimited: too many requests from this address (or this logged-in user), for this
                email from this address, or for this email (429).
        """
        email = normalise_email(email)
        s = self.settings
        if self.client.caller:
            await self.limiter.hit(
                "otp-request-ip",
                self.client.caller,
                limit=s.otp_max_requests_per_ip,
                window=s.otp_window_seconds,
            )
        await self._limit_per_source_and_email(
            f"otp-send-{purpose}", email, s.otp_max_sends_per_source_email, s.otp_max_sends_per_email
        )
        defer(SEND_CODE, email, purpose, durable=True)

    async def _limit_per_source_and_email(
        self, bucket: str, email: str, per_source: int, per_email: int
    ) -> None:
        """Count one attempt for ``email`` from this address, then for ``email`` from anywhere. The
        address's own bound comes first, so an address past it is refused without counting
        against the looser bound the owner shares."""
        who = subject(email)
        window = self.settings.otp_window_seconds
        source = subject(self.client.ip or "unknown")
        await self.limiter.hit(f"{bucket}-source", f"{source}:{who}", limit=per_source, window=window)
        await self.limiter.hit(bucket, who, limit=per_email, window=window)

    async def _limit_verifications(self, email: str) -> None:
        """Code checks per (address, email) and per email; codes also burn after
        ``OTP_MAX_ATTEMPTS`` wrong tries, which is what stops guessing."""
        s = self.settings
        await self._limit_per_source_and_email(
            "otp-verify", email, s.otp_max_verifications_per_source_email, s.otp_max_verifications_per_email
        )

    async def verify_email(self, email: str, code: str) -> User:
        """Raises InvalidCode (400) or RateLimited (429)."""
        email = normalise_email(email)
        await self._limit_verifications(email)
        user = await self.users.by_email(email)
        await consume_code(self.session, self.settings, self.audit, user, "verify_email", code)
        assert user is not None  # consume_code rejects a missing user
        user.is_verified = True
        user.verified_at = datetime.now(UTC)
        self.audit.record(audit.EMAIL_VERIFIED, user_id=user.id)
        await self.session.flush()
        return user

    async def reset_password(self, email: str, code: str, new_password: str) -> None:
        """Set a new password with a reset code; every session and access token of the account ends.

        Raises:
            WeakPassword (422), InvalidCode (400), RateLimited (429).

        A reset also forgets every failed login for the account, from every address.
        """
        email = normalise_email(email)
        await self._limit_verifications(email)
        user = await self.users.by_email(email)
        # The policy is checked before the code, so a weak password does not use up the code.
        self._check_password(new_password, email, user.full_name if user else "", field="new_password")
        await consume_code(self.session, self.settings, self.audit, user, "reset_password", code)
        assert user is not None
        user.password_hash = await self.hasher.hash(new_password)
        revoked = await self.users.end_sessions(user.id, self.listener)
        self.audit.record(audit.PASSWORD_RESET, user_id=user.id, sessions_revoked=revoked)
        await self.session.flush()
        # Whoever failed to log in before no longer has to wait: the password they were
        # guessing is gone. (Redis is not rolled back with the transaction; a failed commit
        # after this only means failures were forgotten early.)
        await self.limiter.forgive_all(LOGIN_FAILURES, subject(email))
