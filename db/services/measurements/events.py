"""Status changes of a measurement over Redis pub/sub (channel ``measurement:{id}``).

The worker publishes after it commits; readers (the API's event stream) take a message as a
hint to re-read the committed row, so a message lost in transit only delays an update until
the reader's next periodic re-read.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import msgspec
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from core.logging import get_logger

log = get_logger(__name__)


class StatusChanged(msgspec.Struct, frozen=True):
    id: UUID
    status: str


def channel(measurement_id: UUID) -> str:
    return f"measurement:{measurement_id}"


async def publish_status(redis: Redis, measurement_id: UUID, status: str) -> None:
    """Tell listeners that a measurement's status changed. Never raises: the change is already
    committed, and readers re-read the row on their own from time to time."""
    try:
        await redis.publish(
            channel(measurement_id), msgspec.json.encode(StatusChanged(measurement_id, status))
        )
    except Exception:  # Redis down: listeners catch up on their next re-read
        log.warning(
            "could not publish a measurement status", measurement_id=str(measurement_id), exc_info=True
        )


class StatusWatch:
    """A subscription to one measurement's channel."""

    def __init__(self, pubsub: PubSub) -> None:
        self._pubsub = pubsub

    async def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for a change; True if one was announced."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            message: dict[str, Any] | None = await self._pubsub.get_message(
                ignore_subscribe_messages=True, timeout=left
            )
            if message is not None and message.get("type") == "message":
                return True
        return False


@contextlib.asynccontextmanager
async def watch_status(redis: Redis, measurement_id: UUID) -> AsyncIterator[StatusWatch]:
    """Subscribe to a measurement's changes for the duration of the block."""
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe(channel(measurement_id))
        yield StatusWatch(pubsub)
