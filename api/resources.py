"""Long-lived resources of the API process, kept on ``app.state``."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from redis.asyncio import Redis
from taskiq import AsyncBroker

from api.page_cache import PageCache
from api.standing import StandingCache
from core.adapters.passwords import PasswordHasher
from core.adapters.payments import PaymentProvider
from core.adapters.ratelimit import RateLimiter
from core.adapters.standing import StandingNotices
from core.adapters.storage import MediaStorage, ObjectStorage
from core.adapters.tokens import TokenSigner
from core.jobs import Dispatcher
from core.page_versions import PageVersions
from core.settings import Settings
from db.engine import Database
from db.services.catalog.ranked_search import RankedSearches
from db.services.catalog.taxonomy import CategoryTree, load_category_tree


class CategoryCache:
    """The category tree, reloaded at most every ``ttl`` seconds (it changes by migration)."""

    def __init__(self, db: Database, ttl: float = 60.0) -> None:
        self._db = db
        self._ttl = ttl
        self._tree: CategoryTree | None = None
        self._loaded = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> CategoryTree:
        if self._tree is not None and time.monotonic() - self._loaded < self._ttl:
            return self._tree
        async with self._lock:
            if self._tree is None or time.monotonic() - self._loaded >= self._ttl:
                async with self._db.session_maker() as session:
                    self._tree = await load_category_tree(session)
                self._loaded = time.monotonic()
        return self._tree

    def invalidate(self) -> None:
        self._tree = None


@dataclass(slots=True)
class AppResources:
    settings: Settings
    db: Database
    redis: Redis
    broker: AsyncBroker
    dispatcher: Dispatcher
    hasher: PasswordHasher
    limiter: RateLimiter
    signer: TokenSigner
    storage: MediaStorage
    # Personal files (body photos): never served, no URLs.
    private_storage: ObjectStorage
    categories: CategoryCache
    payments: PaymentProvider
    # The counters every catalog write bumps, and the public pages cached against them.
    versions: PageVersions
    pages: PageCache
    # Searches' rankings, kept against the same counters (db/services/catalog/ranked_search.py).
    searches: RankedSearches
    # Users' standing (token version, role, suspension) as every authenticated request checks it,
    # and the news of revocations that keeps it current across processes.
    standing: StandingCache
    notices: StandingNotices
    # Resources handed in by the caller (tests) are not closed by the app.
    owned: set[str] = field(default_factory=set)
    listening: asyncio.Task[None] | None = None

    def start_listening(self) -> None:
        """Hear revocations announced by any process (until :meth:`close`)."""
        self.listening = asyncio.create_task(self.notices.listen(self.standing.forget))

    async def close(self) -> None:
        if self.listening is not None:
            self.listening.cancel()
            # Bounded: shutting down must not wait on Redis.
            await asyncio.wait({self.listening}, timeout=5)
        if "db" in self.owned:
            await self.db.dispose()
        if "redis" in self.owned:
            await self.redis.aclose()
        if "broker" in self.owned:
            await self.broker.shutdown()
        if "payments" in self.owned:
            await self.payments.close()
