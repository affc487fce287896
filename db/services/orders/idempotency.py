"""``Idempotency-Key`` handling for ``POST /orders``.

A request takes a transaction-scoped advisory lock on (user, key) first: while it holds it, a
second request with the same key is answered 409 at once instead of waiting or creating a second
order. The key row is written in the same transaction as the order, so it exists exactly when
the order does; a failed request (409 out of stock, 422) leaves no key and may be retried with
the same key. The lock is released at commit, after the row became visible, so a request that
gets the lock always sees a finished predecessor's row.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import IdempotencyKey
from db.services.orders.errors import IdempotencyKeyInUse, IdempotencyKeyReused

_TRY_LOCK = text("SELECT pg_try_advisory_xact_lock(hashtextextended(:lock_key, 0))")


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """What the first request with this key answered; replayed as is."""

    order_id: UUID
    status_code: int
    body: dict[str, Any]


def request_hash(body: Any) -> str:
    """sha256 of the request body in a canonical form (keys sorted), so formatting does not count."""
    return hashlib.sha256(msgspec.json.encode(body, order="sorted")).hexdigest()


async def claim(session: AsyncSession, user_id: UUID, key: str, body_hash: str) -> StoredResponse | None:
    """Take the key for this transaction; the stored response when it was already used.

    Raises:
        IdempotencyKeyInUse: another request with this key is still running (409).
        IdempotencyKeyReused: the key was used for a different body (422).
    """
    if not await session.scalar(_TRY_LOCK, {"lock_key": f"orders:{user_id}:{key}"}):
        raise IdempotencyKeyInUse("A request with this Idempotency-Key is in progress; retry shortly.")
    row = await session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
    )
    if row is None:
        return None
    if row.expires_at <= datetime.now(UTC):
        # Expired keys are free again.
        await session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == row.id))
        return None
    if row.request_hash != body_hash:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used with a different request body.",
            errors=[{"field": "Idempotency-Key", "message": "already used for a different request"}],
        )
    return StoredResponse(order_id=row.order_id, status_code=row.response_status, body=row.response_body)


def remember(
    session: AsyncSession,
    user_id: UUID,
    key: str,
    body_hash: str,
    order_id: UUID,
    *,
    status_code: int,
    body: dict[str, Any],
    ttl: timedelta,
) -> None:
    """Store the response of the request that created ``order_id`` (commits with the order)."""
    session.add(
        IdempotencyKey(
            user_id=user_id,
            key=key,
            request_hash=body_hash,
            order_id=order_id,
            response_status=status_code,
            response_body=body,
            expires_at=datetime.now(UTC) + ttl,
        )
    )


async def purge_expired(session: AsyncSession, *, batch: int = 1000) -> int:
    """Delete up to ``batch`` expired keys; returns how many."""
    ids = select(IdempotencyKey.id).where(IdempotencyKey.expires_at <= datetime.now(UTC)).limit(batch)
    result = await session.execute(delete(IdempotencyKey).where(IdempotencyKey.id.in_(ids.scalar_subquery())))
    return int(getattr(result, "rowcount", 0) or 0)
