"""What a task can use: built once per worker process in its startup hook."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

import anyio
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession
from taskiq import Context, TaskiqDepends

from core.adapters.mail import Mailer
from core.adapters.payments import PaymentProvider
from core.adapters.storage import MediaStorage, ObjectStorage
from core.jobs import Dispatcher
from core.page_versions import PageVersions
from core.settings import Settings
from db.engine import Database
from db.uow import unit_of_work

if TYPE_CHECKING:
    # Only inference workers load models; the others never import them or onnxruntime.
    from inference.body import PersonSegmenter, PoseEstimator
    from inference.body_measure.measurer import BodyMeasurer
    from tasks.runtime.batching import EmbeddingBatcher


@dataclass(slots=True)
class Models:
    """ONNX models of a worker that serves the inference queue."""

    batcher: EmbeddingBatcher
    embedding_model: str  # "name@version", stored next to each vector
    segmenter: PersonSegmenter
    pose: PoseEstimator
    # Front + side photo -> measurements; shares the segmenter and pose sessions above.
    body: BodyMeasurer
    # Photos are decoded in threads; a few at a time keeps memory flat.
    decode_limiter: anyio.CapacityLimiter = field(default_factory=lambda: anyio.CapacityLimiter(2))
    # One body measurement at a time: each already uses the onnxruntime threads it is given.
    body_limiter: anyio.CapacityLimiter = field(default_factory=lambda: anyio.CapacityLimiter(1))


class ModelsNotLoaded(RuntimeError):
    """An inference task reached a worker that does not serve the inference queue."""


@dataclass(slots=True)
class TaskResources:
    settings: Settings
    db: Database
    redis: Redis
    dispatcher: Dispatcher
    mailer: Mailer
    storage: MediaStorage
    # Personal files (body photos).
    private_storage: ObjectStorage
    # The payment provider (PAYMENT_PROVIDER): verifies charges and refunds them.
    payments: PaymentProvider
    models: Models | None = None

    def require_models(self) -> Models:
        if self.models is None:
            raise ModelsNotLoaded("this worker does not serve the inference queue")
        return self.models

    @contextlib.asynccontextmanager
    async def uow(self) -> AsyncIterator[AsyncSession]:
        """One transaction for (part of) a task; jobs it defers are sent after the commit.

        Opened inside the task body (not as a dependency) so a failed commit is a task failure
        that the retry middleware sees.
        """
        versions = PageVersions(self.redis)
        async with unit_of_work(
            self.db.session_maker,
            self.dispatcher,
            versions=versions,
            written_position=self.db.written_position,
        ) as session:
            yield session


def _resources(context: Annotated[Context, TaskiqDepends()]) -> TaskResources:
    resources: TaskResources = context.state.resources
    return resources


Resources = Annotated[TaskResources, TaskiqDepends(_resources)]
