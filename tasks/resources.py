"""What a task can use: built once per worker process in its startup hook."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession
from taskiq import Context, TaskiqDepends

from core.jobs import Dispatcher
from core.mail import Mailer
from core.settings import Settings
from core.storage import MediaStorage
from db.engine import Database
from db.uow import unit_of_work


@dataclass(slots=True)
class TaskResources:
    settings: Settings
    db: Database
    redis: Redis
    dispatcher: Dispatcher
    mailer: Mailer
    storage: MediaStorage

    @contextlib.asynccontextmanager
    async def uow(self) -> AsyncIterator[AsyncSession]:
        """One transaction for (part of) a task; jobs it defers are sent after the commit.

        Opened inside the task body (not as a dependency) so a failed commit is a task failure
        that the retry middleware sees.
        """
        async with unit_of_work(self.db.session_maker, self.dispatcher) as session:
            yield session


def _resources(context: Annotated[Context, TaskiqDepends()]) -> TaskResources:
    resources: TaskResources = context.state.resources
    return resources


Resources = Annotated[TaskResources, TaskiqDepends(_resources)]
