"""Request-scoped dependencies shared by every domain."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import AbstractAsyncContextManager
from typing import Any
from uuid import UUID

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Principal, optional_principal
from api.resources import AppResources
from core.jobs import current_buffer
from db.services.identity.audit import ClientInfo
from db.uow import unit_of_work


async def provide_db_session(
    state: State, request: Request[Any, Any, Any]
) -> AsyncGenerator[AsyncSession, None]:
    """The request's unit of work: committed after the handler returns, before the response
    is sent (a failed commit becomes an error response, never a false success), then the
    request's jobs are sent. Rolled back when the handler raises.

    With a replica, a write request by a logged-in user then leaves its fence (db/replica.py), also
    before the response is sent: that user's next reads see the write.
    """
    resources: AppResources = state.resources
    writer = _writer(resources, request)
    try:
        async with _request_unit_of_work(resources) as session:
            yield session
    finally:
        # Also after an error: a DomainError may have committed what came before it.
        if writer is not None:
            await resources.db.note_write(writer)


def _request_unit_of_work(resources: AppResources) -> AbstractAsyncContextManager[AsyncSession]:
    """The request's unit of work: its job buffer, the page versions it bumps, its write position."""
    return unit_of_work(
        resources.db.session_maker,
        resources.dispatcher,
        buffer=current_buffer(),
        versions=resources.versions,
        written_position=resources.db.written_position,
    )


def _writer(resources: AppResources, request: Request[Any, Any, Any]) -> UUID | None:
    """The logged-in caller of a request that may write, when there is a replica to fence."""
    if resources.db.replica is None or request.method in _SAFE_METHODS:
        return None
    user = request.scope.get("user")
    return user.user_id if isinstance(user, Principal) else None


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def provide_read_session(state: State) -> AsyncGenerator[AsyncSession, None]:
    """A session for handlers that only read (public catalog pages): no transaction, so no BEGIN
    and COMMIT round trips; each statement sees the latest committed data. On the replica when
    one may serve the request (db/replica.py)."""
    resources: AppResources = state.resources
    async with (await resources.db.replica_reader())() as session:
        yield session


async def provide_replica_session(state: State) -> AsyncGenerator[AsyncSession, None]:
    """A session in a transaction for catalog reads and vector searches that use transaction-local
    settings: on the replica when one may serve the request, never committed (they only read).
    Without a replica, the request's unit of work, as for any handler."""
    resources: AppResources = state.resources
    if resources.db.replica is None:
        async with _request_unit_of_work(resources) as session:
            yield session
        return
    async with (await resources.db.replica_session_maker())() as session:
        yield session


def client_ip(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The caller's address, honouring ``TRUSTED_PROXY_HOPS`` of X-Forwarded-For."""
    resources: AppResources = connection.app.state.resources
    hops = resources.settings.trusted_proxy_hops
    ip = connection.client.host if connection.client else None
    if hops > 0:
        forwarded = [
            part.strip() for part in connection.headers.get("x-forwarded-for", "").split(",") if part.strip()
        ]
        if len(forwarded) >= hops:
            ip = forwarded[-hops]
    return ip


def rate_subject(connection: ASGIConnection[Any, Any, Any, Any]) -> tuple[str, bool]:
    """Whom a per-caller rate limit counts against (:attr:`ClientInfo.caller`), and whether that
    is a logged-in user. A logged-in user is counted per account and never per address: thousands
    of people can share one address (a mobile carrier's gateway), and an anonymous flood from it
    must not stop them."""
    principal = optional_principal(connection)
    client = ClientInfo(ip=client_ip(connection), user_id=principal.user_id if principal else None)
    return client.caller or "ip:unknown", principal is not None


def provide_client_info(request: Request[Any, Any, Any]) -> ClientInfo:
    """The caller's address (see :func:`client_ip`), user agent and user when logged in."""
    principal = optional_principal(request)
    return ClientInfo(
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
        user_id=principal.user_id if principal else None,
    )


def provide_resources(state: State) -> AppResources:
    resources: AppResources = state.resources
    return resources
