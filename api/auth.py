"""Authentication (bearer access tokens) and authorisation guards.

The middleware decodes an ``Authorization: Bearer`` token when one is sent and puts the
:class:`Principal` in ``scope["user"]`` (None for anonymous requests); a malformed, forged or
expired token is a 401 even on public routes. A genuine token is honoured only while it agrees
with its user's current standing (token version, role, not suspended; ``api/standing.py``), so
a revoked one is a 401 as well. Guards then require a user or a role. Access tokens are only
issued to verified accounts, so "authenticated" implies "verified".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgspec
from litestar.connection import ASGIConnection, Request
from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException

from api.standing import StandingCache
from core.adapters.tokens import AccessClaims, InvalidToken, TokenSigner, VerifiedTokens
from db.replica import reading_as

if TYPE_CHECKING:
    from litestar.handlers.base import BaseRouteHandler
    from litestar.types import ASGIApp, Receive, Scope, Send

    from core.settings import Settings

_BEARER = "bearer "
_INVALID = "The access token is invalid or has expired."


class Principal(msgspec.Struct, frozen=True):
    """The authenticated caller, as the access token says."""

    user_id: UUID
    role: str
    token_id: str


def _unauthorised(detail: str) -> NotAuthorizedException:
    return NotAuthorizedException(detail=detail, headers={"WWW-Authenticate": 'Bearer realm="fashionistar"'})


class BearerAuthMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.tokens = VerifiedTokens(TokenSigner(settings))
        # With a replica, an authenticated caller's replica reads respect their own last write.
        self.fenced_reads = settings.database_replica_url is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            principal = scope["user"] = await self._principal(scope)
            if self.fenced_reads and principal is not None:
                with reading_as(principal.user_id):
                    await self.app(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _principal(self, scope: Scope) -> Principal | None:
        """The caller of a request with a valid token whose version, role and account still stand;
        None without a token.

        Raises:
            NotAuthorizedException: a bad, revoked or outdated token, or a suspended account.
        """
        claims = self._claims(scope)
        if claims is None:
            return None
        cache: StandingCache = scope["app"].state.resources.standing
        standing = cache.cached(claims.sub) or await cache.current(claims.sub)
        if claims.ver > standing.version:
            # Issued after what this process kept (a sign-in after a revocation whose news has
            # not arrived yet): read again rather than refuse a good token.
            standing = await cache.current(claims.sub, fresh=True)
        # Revoked (version behind), demoted or promoted (role), suspended: sign in again.
        if claims.ver != standing.version or claims.role != standing.role or not standing.active:
            raise _unauthorised(_INVALID)
        return Principal(user_id=claims.sub, role=claims.role, token_id=claims.jti)

    def _claims(self, scope: Scope) -> AccessClaims | None:
        header = next((v for k, v in scope["headers"] if k == b"authorization"), None)
        if header is None:
            return None
        value = header.decode("latin-1")
        if not value.lower().startswith(_BEARER) or len(value) > 4096:
            raise _unauthorised("Use 'Authorization: Bearer <access token>'.")
        try:
            return self.tokens.decode(value[len(_BEARER) :].strip())
        except InvalidToken:
            raise _unauthorised(_INVALID) from None


def _principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    user = connection.scope.get("user")
    return user if isinstance(user, Principal) else None


def optional_principal(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    """The caller, or None when anonymous (for public routes that treat users differently)."""
    return _principal_of(connection)


# Guards are coroutines: Litestar runs a plain function guard in a worker thread, a hand-off that
# cost more than the check itself (seen in the suite's py-spy profile of size advice).
async def requires_user(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    if _principal_of(connection) is None:
        raise _unauthorised("Log in to do this.")


def requires_role(*roles: str) -> Any:
    """Guard: the caller is logged in (401) and has one of ``roles`` (403)."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal = _principal_of(connection)
        if principal is None:
            raise _unauthorised("Log in to do this.")
        if principal.role not in roles:
            raise PermissionDeniedException(detail=f"This needs the {' or '.join(roles)} role.")

    return guard


def current_principal(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The caller; 401 when anonymous."""
    principal = _principal_of(connection)
    if principal is None:
        raise _unauthorised("Log in to do this.")
    return principal


def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    """The caller; 401 when anonymous."""
    return current_principal(request)
