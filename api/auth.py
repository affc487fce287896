"""Authentication (bearer access tokens) and authorisation guards.

The middleware decodes an ``Authorization: Bearer`` token when one is sent and puts the
:class:`Principal` in ``scope["user"]`` (None for anonymous requests); a malformed, forged or
expired token is a 401 even on public routes. Guards then require a user or a role. Access
tokens are only issued to verified accounts, so "authenticated" implies "verified".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgspec
from litestar.connection import ASGIConnection, Request
from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException

from core.adapters.tokens import InvalidToken, TokenSigner, VerifiedTokens
from db.replica import reading_as

if TYPE_CHECKING:
    from litestar.handlers.base import BaseRouteHandler
    from litestar.types import ASGIApp, Receive, Scope, Send

    from core.settings import Settings

_BEARER = "bearer "


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
            principal = scope["user"] = self._principal(scope)
            if self.fenced_reads and principal is not None:
                with reading_as(principal.user_id):
                    await self.app(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _principal(self, scope: Scope) -> Principal | None:
        header = next((v for k, v in scope["headers"] if k == b"authorization"), None)
        if header is None:
            return None
        value = header.decode("latin-1")
        if not value.lower().startswith(_BEARER) or len(value) > 4096:
            raise _unauthorised("Use 'Authorization: Bearer <access token>'.")
        try:
            claims = self.tokens.decode(value[len(_BEARER) :].strip())
        except InvalidToken:
            raise _unauthorised("The access token is invalid or has expired.") from None
        return Principal(user_id=claims.sub, role=claims.role, token_id=claims.jti)


def _principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    user = connection.scope.get("user")
    return user if isinstance(user, Principal) else None


def optional_principal(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    """The caller, or None when anonymous (for public routes that treat users differently)."""
    return _principal_of(connection)


def requires_user(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    if _principal_of(connection) is None:
        raise _unauthorised("Log in to do this.")


def requires_role(*roles: str) -> Any:
    """Guard: the caller is logged in (401) and has one of ``roles`` (403)."""

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
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
