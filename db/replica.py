"""Reads that may be served by a streaming replica (``DATABASE_REPLICA_URL``).

Catalog reads and vector searches ask for a replica read (``Database.fetch(..., replica=True)``,
``Database.replica_reader()``, ``Database.replica_session_maker()``); writes and everything
transactional stay on the primary. Whether a read that asks is served by the replica is decided
here, per read:

- the replica must answer and replay within ``DATABASE_REPLICA_MAX_LAG_MS`` of the primary. Its
  state (replay position, lag) is asked at most every ``DATABASE_REPLICA_CHECK_MS`` per process,
  by one query at a time however many reads are waiting, so a busy API does not ask on every
  request; a replica that did not answer is asked again after a second;
- pages cached under page versions (api/page_cache.py): the versions are read with the primary's
  WAL position after the write that last moved them, and a page built to be filed under them is
  read at or past that position, so no page is cached under a version older than its data;
- read-your-writes: a request by a user that committed a write leaves a *fence*, the primary's
  WAL position after that commit, in Redis for ``DATABASE_REPLICA_FENCE_SECONDS``. That user's
  reads go to the primary until the replica has replayed past it. Anonymous reads never wait
  for anyone's fence.

Otherwise the read goes to the primary: logged when the replica's state changes, and counted in
``fashionistar_replica_reads_total`` (``served_by``, ``reason``). A replica never fails a read
that the primary can serve.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING
from uuid import UUID

import asyncpg
from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError

from core.logging import get_logger

if TYPE_CHECKING:
    from core.settings import Settings
    from db.engine import Database

log = get_logger(__name__)

# The user whose request is running (set by the API for authenticated requests when a replica is
# configured): their reads respect their own fence.
_reader: ContextVar[UUID | None] = ContextVar("replica_reader", default=None)
# The position the current request's reads must be at or past, whoever asks: a public page built
# to be cached under page versions must contain the writes those versions count (api/page_cache).
_not_before: ContextVar[int | None] = ContextVar("replica_not_before", default=None)

READS = Counter(
    "fashionistar_replica_reads",
    "Reads that asked for the replica, by where they were served and why",
    ("served_by", "reason"),
)
_SERVED = {
    reason: READS.labels("replica" if reason == "ok" else "primary", reason)
    for reason in ("ok", "fence", "lag", "down", "error")
}

# Where the replica has replayed to, as a byte position (pg_lsn minus 0/0), and how far behind it
# is: nothing if it has replayed all it received, else the age of the last transaction replayed.
STATE_SQL = """
SELECT pg_is_in_recovery() AS standby,
       (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint AS replayed,
       CASE WHEN pg_last_wal_receive_lsn() IS NULL
                 OR pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0
            ELSE COALESCE(1000 * EXTRACT(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp()), 0)
       END::float8 AS lag_ms
"""
WRITTEN_SQL = "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint"

_STATE_TIMEOUT_SECONDS = 2.0
# After a failed state query the replica is left alone this long (no connection attempt per read).
_DOWN_RETRY_SECONDS = 1.0
# Errors of a read on the replica after which the same read is served by the primary.
REPLICA_READ_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,  # a conflict with recovery cancels queries on a standby, among others
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    DBAPIError,
    OSError,
    TimeoutError,
)


@contextmanager
def reading_as(user_id: UUID | None) -> Iterator[None]:
    """Within the block, replica reads are those of ``user_id`` (None: anonymous)."""
    token = _reader.set(user_id)
    try:
        yield
    finally:
        _reader.reset(token)


@contextmanager
def reading_from(position: int | None) -> Iterator[None]:
    """Within the block, replica reads need the replica at or past ``position`` (None: any)."""
    token = _not_before.set(position)
    try:
        yield
    finally:
        _not_before.reset(token)


def fence_key(user_id: UUID) -> str:
    return f"fashionistar:replica-fence:{user_id}"


class Fences:
    """Each user's last write position, in Redis (shared by every API process)."""

    def __init__(self, redis: Redis, ttl_seconds: int) -> None:
        self._redis = redis
        self._ttl_ms = ttl_seconds * 1000

    async def remember(self, user_id: UUID, lsn: int) -> None:
        await self._redis.set(fence_key(user_id), lsn, px=self._ttl_ms)

    async def of(self, user_id: UUID) -> int | None:
        value = await self._redis.get(fence_key(user_id))
        return int(value) if value is not None else None


@dataclass(frozen=True, slots=True)
class ReplicaState:
    up: bool
    replayed: int = 0
    lag_ms: float = 0.0
    asked_at: float = 0.0


class Replica:
    """The replica's own engine and pools (``replica.database``) and the routing decision."""

    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.max_lag_ms = settings.database_replica_max_lag_ms
        self.check_seconds = settings.database_replica_check_ms / 1000
        self.fences: Fences | None = None
        self._state = ReplicaState(up=False, asked_at=-1e9)
        self._lock: asyncio.Lock | None = None

    def attach_fences(self, fences: Fences) -> None:
        """Use ``fences`` for read-your-writes (the API's Redis); without, no reader is fenced."""
        self.fences = fences

    async def usable(self) -> bool:
        """Whether a read asked for by the current request may go to the replica now."""
        state = await self.state()
        if not state.up:
            _SERVED["down"].inc()
            return False
        if state.lag_ms > self.max_lag_ms:
            _SERVED["lag"].inc()
            return False
        required = _not_before.get()
        user = _reader.get()
        if user is not None and self.fences is not None:
            try:
                fence = await self.fences.of(user)
            except RedisError:
                log.warning("replica fence unreadable; reading from the primary", exc_info=True)
                _SERVED["fence"].inc()
                return False
            if fence is not None and (required is None or fence > required):
                required = fence
        if required is not None and state.replayed < required:
            # The cached state may be older than the write: ask once more before giving up.
            state = await self.state(newer_than=time.monotonic())
            if not state.up or state.replayed < required or state.lag_ms > self.max_lag_ms:
                _SERVED["fence"].inc()
                return False
        _SERVED["ok"].inc()
        return True

    def failed(self, exc: BaseException) -> None:
        """A read on the replica failed (it was served by the primary): count it, and stop using
        the replica until it answers again when the connection was the problem."""
        _SERVED["error"].inc()
        if isinstance(exc, asyncpg.PostgresError) and not isinstance(exc, asyncpg.PostgresConnectionError):
            log.warning("replica read failed; served by the primary", error=repr(exc))
            return
        self._set(ReplicaState(up=False, asked_at=time.monotonic()), repr(exc))

    async def state(self, *, newer_than: float | None = None) -> ReplicaState:
        """The replica's state, asked again when older than ``DATABASE_REPLICA_CHECK_MS`` (or
        than ``newer_than``); one query at a time, concurrent callers share its answer."""
        if self._fresh(self._state, newer_than):
            return self._state
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._fresh(self._state, newer_than):
                return self._state
            asked_at = time.monotonic()
            try:
                # Every replica read waits on this answer: a replica that hangs must not hang them.
                async with asyncio.timeout(_STATE_TIMEOUT_SECONDS):
                    row = await self.database.fetch_row(STATE_SQL)
            except REPLICA_READ_ERRORS as exc:
                self._set(ReplicaState(up=False, asked_at=asked_at), repr(exc))
                return self._state
            if row is None or not row["standby"]:
                self._set(ReplicaState(up=False, asked_at=asked_at), "not a standby (promoted?)")
            else:
                self._set(ReplicaState(True, row["replayed"], row["lag_ms"], asked_at), None)
            return self._state

    def _fresh(self, state: ReplicaState, newer_than: float | None) -> bool:
        if newer_than is not None:
            return state.asked_at >= newer_than
        age = time.monotonic() - state.asked_at
        return age < (self.check_seconds if state.up else _DOWN_RETRY_SECONDS)

    def _set(self, state: ReplicaState, problem: str | None) -> None:
        before = self._state
        self._state = state
        lagging = state.up and state.lag_ms > self.max_lag_ms
        was_lagging = before.up and before.lag_ms > self.max_lag_ms
        if not state.up and (before.up or before.asked_at < 0):
            log.warning("replica unavailable; catalog reads go to the primary", problem=problem)
        elif state.up and not before.up and before.asked_at > 0:
            log.info("replica available again")
        if lagging and not was_lagging:
            log.warning("replica lags; catalog reads go to the primary", lag_ms=state.lag_ms)
        elif was_lagging and state.up and not lagging:
            log.info("replica caught up", lag_ms=state.lag_ms)
