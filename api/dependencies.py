"""Request-scoped dependencies shared by every domain."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from litestar.datastructures import State
from sqlalchemy.ext.asyncio import AsyncSession

from api.resources import AppResources
from core.jobs import current_buffer
from db.uow import unit_of_work


async def provide_db_session(state: State) -> AsyncGenerator[AsyncSession, None]:
    """The request's unit of work: committed after the handler returns, before the response
    is sent (a failed commit becomes an error response, never a false success), then the
    request's jobs are sent. Rolled back when the handler raises.
    """
    resources: AppResources = state.resources
    async with unit_of_work(
        resources.db.session_maker, resources.dispatcher, buffer=current_buffer()
    ) as session:
        yield session


def provide_resources(state: State) -> AppResources:
    resources: AppResources = state.resources
    return resources
