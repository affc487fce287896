"""Each API process's copy of its users' standing, for the check every authenticated request makes.

A request with an access token is honoured only while the token's version and role are the user's
current ones and the user is not suspended (``db/services/identity/standing.py``). Reading that
from PostgreSQL or Redis on every request would cost a round trip; instead each process keeps a
user's standing for at most ``ttl`` (one second), forgets it at once when a revocation is announced
(Redis pub/sub, ``core/adapters/standing.py``), and reads it again on the next request. A hit
costs a dictionary lookup and a clock read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from uuid import UUID

from db.engine import Database
from db.services.identity.standing import Standing, load_standing

DEFAULT_TTL_SECONDS = 1.0


class StandingCache:
    """Users' standing, each kept until ``ttl`` seconds after it was read or until forgotten."""

    def __init__(self, db: Database, *, ttl: float = DEFAULT_TTL_SECONDS, max_entries: int = 65536) -> None:
        self._db = db
        self._ttl = ttl
        self._max_entries = max_entries
        self._entries: dict[UUID, tuple[float, Standing]] = {}
        self._loading: dict[UUID, asyncio.Future[Standing]] = {}
        # Bumped by every forget: a read that began before one is used but not kept.
        self._generation = 0

    def cached(self, user_id: UUID) -> Standing | None:
        """The kept standing if it is fresh enough; the hot path (no await)."""
        entry = self._entries.get(user_id)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        return None

    async def current(self, user_id: UUID, *, fresh: bool = False) -> Standing:
        """The user's standing: kept (unless ``fresh``), or read (one read per user at a time,
        however many ask).

        Raises:
            the database's errors when it cannot be read (503).
        """
        standing = None if fresh else self.cached(user_id)
        if standing is not None:
            return standing
        pending = self._loading.get(user_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Standing] = asyncio.get_running_loop().create_future()
        self._loading[user_id] = future
        generation = self._generation
        try:
            standing = await load_standing(self._db, user_id)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here, so a future nobody else awaited does not warn
            raise
        finally:
            del self._loading[user_id]
        future.set_result(standing)
        if generation == self._generation:
            self._keep(user_id, standing)
        return standing

    def _keep(self, user_id: UUID, standing: Standing) -> None:
        if len(self._entries) >= self._max_entries:
            now = time.monotonic()
            stale = [key for key, (until, _) in self._entries.items() if until <= now]
            # Oldest first (dicts keep insertion order) when nothing has expired.
            for key in stale or list(self._entries)[: max(1, self._max_entries // 10)]:
                del self._entries[key]
        self._entries[user_id] = (time.monotonic() + self._ttl, standing)

    def forget(self, user_ids: Sequence[UUID] | None) -> None:
        """Drop what is kept of ``user_ids`` (of everyone with None)."""
        self._generation += 1
        if user_ids is None:
            self._entries.clear()
            return
        for user_id in user_ids:
            self._entries.pop(user_id, None)
