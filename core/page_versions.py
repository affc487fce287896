"""Versions of the public catalog pages, kept in Redis so every API process sees every change.

The API caches encoded public pages (product page, listing, reviews, ...) keyed by these
counters (``api/page_cache.py``). Domain code that changes what such a page shows calls
:func:`touch_product` (or :func:`touch_shared`) while it works inside a unit of work; nothing is
bumped then. The unit of work bumps the counters only after its transaction commits, so a
reader that sees the new version also sees the committed data: a body built from the old data
can only ever be stored under the old version, never the new one.

Four kinds of counter:

- ``catalog``: every listing shape (listing, similar items, brands, categories, stores); bumped
  by any change that can alter a listing.
- ``shared``: what many product pages show (store names and status); bumped by store changes.
- ``reviewers``: the names shown on reviews; bumped when an account's name changes.
- ``product:<id>``: one product's page and reviews; bumped by changes to that product, its
  variants (stock included), images, size chart and reviews.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from uuid import UUID

from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.jobs import open_buffer
from core.logging import get_logger

log = get_logger(__name__)

PREFIX = "fashionistar:pv"
CATALOG = f"{PREFIX}:catalog"
SHARED = f"{PREFIX}:shared"
REVIEWERS = f"{PREFIX}:reviewers"
# With a read replica: the primary's WAL position after the latest bumped write. A page built
# under counters read together with it must be read at or past it (db/replica.py).
WRITTEN_POSITION = f"{PREFIX}:written-position"
# Raise the stored position, never lower it (writers finish in any order).
_RAISE = (
    "local c = tonumber(redis.call('get', KEYS[1]) or '0') "
    "if c < tonumber(ARGV[1]) then redis.call('set', KEYS[1], ARGV[1]) end"
)
# A product's counter is dropped after a week without a change; a page cached under its old
# value is long gone by then (cached pages live at most a minute).
_PRODUCT_KEY_TTL_SECONDS = 7 * 24 * 3600


def product_key(product_id: UUID | str) -> str:
    return f"{PREFIX}:product:{product_id}"


def _record(keys: Iterable[str]) -> None:
    buffer = open_buffer()
    # Outside a unit of work (seed scripts, migrations) nothing waits for a commit; pages cached
    # elsewhere expire within a minute on their own.
    if buffer is not None:
        buffer.versions.update(keys)


def touch_product(*product_ids: UUID, listing: bool = True) -> None:
    """These products' pages change; ``listing``: so may any listing that shows them (price,
    in-stock flag, title, status, photos). A change seen only on the product page (a variant's
    stock count, a review) passes ``listing=False``."""
    keys = [product_key(pid) for pid in product_ids]
    if listing:
        keys.append(CATALOG)
    _record(keys)


def touch_shared() -> None:
    """Something many product pages show changed (a store's name or status)."""
    _record([SHARED, CATALOG])


def touch_catalog() -> None:
    """A listing changed without any product page changing (a new brand, a new store)."""
    _record([CATALOG])


def touch_reviewers() -> None:
    """An account's name changed: reviews show it."""
    _record([REVIEWERS])


class PageVersions:
    """Reads and bumps the counters in Redis."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def read(self, keys: Sequence[str]) -> tuple[int, ...]:
        """The current value of each counter (0 when never bumped), in one round trip.

        Raises:
            RedisError, OSError: Redis is unreachable (the caller serves without caching).
        """
        values = await self._redis.mget(keys)
        return tuple(int(v) if v is not None else 0 for v in values)

    async def read_with_position(self, keys: Sequence[str]) -> tuple[tuple[int, ...], int | None]:
        """:meth:`read`, and the written position that goes with those values (None before any
        write with one), in the same round trip.

        Raises:
            RedisError, OSError: Redis is unreachable (the caller serves without caching).
        """
        values = await self._redis.mget([*keys, WRITTEN_POSITION])
        position = values.pop()
        return tuple(int(v) if v is not None else 0 for v in values), int(position) if position else None

    async def bump(self, keys: Sequence[str], position: int | None = None) -> None:
        """Increment the counters, in one round trip. Never raises: the data is committed
        already; a failed bump leaves cached pages stale until they expire (a minute at most).

        ``position`` (with a read replica): the primary's WAL position after the write, stored
        before the counters move, so whoever reads a new value also reads a position at or past
        the write."""
        if not keys:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                if position is not None:
                    pipe.eval(_RAISE, 1, WRITTEN_POSITION, position)
                for key in keys:
                    pipe.incr(key)
                    if key.startswith(f"{PREFIX}:product:"):
                        pipe.expire(key, _PRODUCT_KEY_TTL_SECONDS)
                await pipe.execute()
        except (RedisError, OSError):
            log.warning("page versions not bumped; cached pages expire on their own", keys=len(keys))
