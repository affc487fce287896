"""Errors of the identity domain (mapped to HTTP by ``api/errors.py`` through their base class)."""

from __future__ import annotations

from core.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    RateLimited,
)


class WeakPassword(InvalidInput):
    code = "weak_password"

    def __init__(self, problems: list[str], field: str = "password") -> None:
        super().__init__(
            "The password is not strong enough.",
            errors=[{"field": field, "message": message} for message in problems],
        )


class InvalidCredentials(NotAuthenticated):
    """Wrong email or password (never says which). The failed attempt is kept (audit, counter)."""

    title = "Invalid credentials"
    code = "invalid_credentials"
    preserve_changes = True


class EmailNotVerified(PermissionDenied):
    title = "Email not verified"
    code = "email_not_verified"
    preserve_changes = True


class AccountSuspended(PermissionDenied):
    """Right password, but staff suspended the account. The attempt is kept (audit)."""

    title = "Account suspended"
    code = "account_suspended"
    preserve_changes = True


class OwnAccount(Conflict):
    title = "Not on your own account"
    code = "own_account"


class InvalidCode(DomainError):
    """Wrong, expired, used or burned one-time code. The wrong try is counted (kept)."""

    status_code = 400
    title = "Invalid code"
    code = "invalid_code"
    preserve_changes = True


class InvalidRefreshToken(NotAuthenticated):
    """Unknown, expired, revoked or reused refresh token. A detected reuse revokes the family (kept)."""

    title = "Invalid refresh token"
    code = "invalid_refresh_token"
    preserve_changes = True


class LoginThrottled(RateLimited):
    """This address failed too often for the account and must wait; the refusal is audited (kept).
    Only the failing address waits: the account itself is never locked."""

    code = "login_throttled"
    preserve_changes = True


class UserNotFound(NotFound):
    title = "User not found"
    code = "user_not_found"


class SessionNotFound(NotFound):
    title = "Session not found"
    code = "session_not_found"
