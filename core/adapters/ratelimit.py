"""Rate limits kept in Redis, shared by every API process: fixed windows counted per key, and
failure backoff per (account, source) for logins."""

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


# One login attempt of a source for an account (KEYS[1]: the account's hash of sources, KEYS[2]:
# its failure count in the ceiling window). A source's entry is "failures:last_failure:wait_until"
# (Redis clock, milliseconds); failures older than the memory are forgotten. A source that must
# still wait is refused (returns minus the milliseconds left); otherwise the attempt is counted as a
# failure at once, with the wait that failure earns (returned), and taken back if it succeeds.
# Counting before the password is checked means parallel attempts cannot slip past the backoff.
_ATTEMPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local source, memory, free, base, cap, ceiling =
    ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local failures = 0
local entry = redis.call('HGET', KEYS[1], source)
if entry then
  local count, last, until_ = string.match(entry, '^(%d+):(%d+):(%d+)$')
  if until_ and tonumber(until_) > now then return now - tonumber(until_) end
  if count and tonumber(last) + memory * 1000 > now then failures = tonumber(count) end
end
local total = redis.call('INCR', KEYS[2])
if total == 1 then redis.call('EXPIRE', KEYS[2], memory) end
failures = failures + 1
local wait = 0
if total > ceiling then
  wait = cap
elseif failures >= free then
  wait = math.min(base * 2 ^ (failures - free), cap)
end
wait = math.floor(wait * 1000)
redis.call('HSET', KEYS[1], source, string.format('%d:%d:%d', failures, now, now + wait))
redis.call('EXPIRE', KEYS[1], memory + cap)
return wait
"""

# The attempt succeeded: forget the source's failures and take the attempt back from the total.
_SUCCEEDED = """
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('EXISTS', KEYS[2]) == 1 and tonumber(redis.call('GET', KEYS[2])) > 0 then
  redis.call('DECR', KEYS[2])
end
return 0
"""


class Backoff(msgspec.Struct, frozen=True):
    """How failures of one source against one account slow it down.

    The first ``free - 1`` failures cost nothing; from the ``free``-th on, the source waits
    ``base * 2**(failures - free)`` seconds (capped at ``cap``) before its next attempt. Failures
    are remembered ``memory`` seconds after the last one. Past ``ceiling`` failures for the
    account from all sources together within ``memory`` (a guess spread over many addresses),
    every source that fails waits ``cap`` at once; a source that has not failed is never made
    to wait, so the owner can still come in from their own address.
    """

    free: int
    base: int
    cap: int
    memory: int
    ceiling: int


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
        self._attempt = redis.register_script(_ATTEMPT)
        self._succeeded = redis.register_script(_SUCCEEDED)

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

    # --- failure backoff per (account, source) ------------------------------------------------

    def _sources_key(self, bucket: str, account: str) -> str:
        return self._key(bucket, f"{account}:sources")

    def _total_key(self, bucket: str, account: str) -> str:
        return self._key(bucket, f"{account}:total")

    async def attempt(self, bucket: str, account: str, source: str, policy: Backoff) -> None:
        """Count an attempt of ``source`` for ``account`` as a failure until :meth:`succeeded`
        says otherwise (so parallel attempts cannot slip past the backoff).

        Raises:
            RateLimited: ``source`` must still wait after failing for ``account`` (not counted).
        """
        keys = [self._sources_key(bucket, account), self._total_key(bucket, account)]
        args: list[str | int] = [source, policy.memory, policy.free, policy.base, policy.cap, policy.ceiling]
        result_ms = int(await self._attempt(keys=keys, args=args))
        if result_ms < 0:
            raise RateLimited(retry_after=-(result_ms // 1000))

    async def succeeded(self, bucket: str, account: str, source: str) -> None:
        """The attempt was right: forget the failures of ``source`` for ``account`` (it has proved
        it knows the secret) and take the attempt back from the account's total."""
        keys = [self._sources_key(bucket, account), self._total_key(bucket, account)]
        await self._succeeded(keys=keys, args=[source])

    async def forgive_all(self, bucket: str, account: str) -> None:
        """Forget every failure for ``account``, from every source (its secret has been reset)."""
        await self._redis.delete(self._sources_key(bucket, account), self._total_key(bucket, account))
