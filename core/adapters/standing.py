"""News of users whose access tokens were revoked, sent to every API process through Redis pub/sub.

Publishing is best effort (pub/sub keeps nothing for a subscriber that is away): each process keeps
a user's standing for at most a second anyway, so a lost message delays a revocation by at most
that second. A process that loses its subscription forgets everything it kept once it is back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from uuid import UUID

from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.logging import get_logger

log = get_logger(__name__)

CHANNEL = "fashionistar:standing"
# None: forget every user (the subscription was lost, messages may have been missed).
Forget = Callable[[Sequence[UUID] | None], None]


class StandingNotices:
    """Announces revocations (to this process directly, to the others through Redis) and hears them."""

    def __init__(self, redis: Redis, local: Forget | None = None) -> None:
        self._redis = redis
        self._local = local

    async def announce(self, user_ids: Sequence[UUID]) -> None:
        """Tell every API process to drop what it kept of ``user_ids``.

        Raises:
            RedisError: Redis is unreachable (this process has already forgotten them).
        """
        if self._local is not None:
            self._local(user_ids)
        await self._redis.publish(CHANNEL, ",".join(str(user_id) for user_id in user_ids))

    async def listen(self, forget: Forget, *, poll_seconds: float = 1.0) -> None:
        """Call ``forget`` for every announcement until cancelled; reconnects after Redis errors."""
        delay = 0.1
        while True:
            try:
                async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    forget(None)  # anything announced while unsubscribed was missed
                    delay = 0.1
                    while True:
                        message = await pubsub.get_message(timeout=poll_seconds)
                        if message is not None:
                            forget(_user_ids(message.get("data")))
            except (RedisError, OSError):
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    # The client turns a cancelled read into a connection error: stop, as asked.
                    raise asyncio.CancelledError from None
                log.warning("standing notices: subscription lost; retrying", retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)


def _user_ids(data: object) -> list[UUID] | None:
    """The ids of a message; None (forget everyone) for one this version cannot read."""
    try:
        text = data.decode() if isinstance(data, bytes) else str(data)
        return [UUID(part) for part in text.split(",") if part]
    except ValueError:
        return None
