"""Long-lived resources of the API process, kept on ``app.state``."""

from __future__ import annotations

from dataclasses import dataclass, field

from redis.asyncio import Redis
from taskiq import AsyncBroker

from core.jobs import Dispatcher
from core.passwords import PasswordHasher
from core.ratelimit import RateLimiter
from core.settings import Settings
from core.tokens import TokenSigner
from db.engine import Database


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
    # Resources handed in by the caller (tests) are not closed by the app.
    owned: set[str] = field(default_factory=set)

    async def close(self) -> None:
        if "db" in self.owned:
            await self.db.dispose()
        if "redis" in self.owned:
            await self.redis.aclose()
        if "broker" in self.owned:
            await self.broker.shutdown()
