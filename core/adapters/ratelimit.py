"""Fixed-window rate limits kept in Redis, shared by every API process."""

from __future__ import annotations

import hashlib

import msgspec
from redis.asyncio import Redis

from core.errors import RateLimited

# INCR and set the window's expiry on the first hit, atomically (works on Redis 6 too).
_HIT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('TTL', KEYS[1])
return {count, ttl}
"""


class Window(msgspec.Struct, frozen=True):
    count: int
    retry_after: int


def subject(value: str) -> str:
    """A stable key part for a user-provided value (emails are not kept in Redis in clear)."""
    return hashlib.sha256(value.strip().lower().encode()).hexdigest()[:24]


class RateLimiter:
    def __init__(self, redis: Redis, prefix: str = "fashionistar:rl") -> None:
        self._redis = redis
        self._prefix = prefix
        self._hit = redis.register_script(_HIT)

    def _key(self, bucket: str, who: str) -> str:
        return f"{self._prefix}:{bucket}:{who}"

    async def count(self, bucket: str, who: str, *, window: int) -> Window:
        """Count one event in the current window (which starts with the first event)."""
        count, ttl = await self._hit(keys=[self._key(bucket, who)], args=[window])
        return Window(count=int(count), retry_after=max(int(ttl), 1))

    async def hit(self, bucket: str, who: str, *, limit: int, window: int) -> Window:
        """Count one attempt; raise :class:`RateLimited` if it goes over ``limit`` in ``window`` s."""
        result = await self.count(bucket, who, window=window)
        if result.count > limit:
            raise RateLimited(retry_after=result.retry_after)
        return result

    async def check(self, bucket: str, who: str, *, limit: int) -> None:
        """Raise :class:`RateLimited` if ``limit`` attempts were already counted, without counting."""
        key = self._key(bucket, who)
        pipe = self._redis.pipeline(transaction=False)
        pipe.get(key)
        pipe.ttl(key)
        raw, ttl = await pipe.execute()
        if raw is not None and int(raw) >= limit:
            raise RateLimited(retry_after=max(int(ttl), 1))

    async def reset(self, bucket: str, who: str) -> None:
        await self._redis.delete(self._key(bucket, who))
