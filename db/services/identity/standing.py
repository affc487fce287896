"""A user's standing: what their access tokens must agree with, and revoking those tokens.

Every access token carries its user's ``token_version`` and role. Each request compares them with
the user's current standing (``api/standing.py`` keeps it per process for up to a second), so
adding one to the version, changing the role or suspending the user refuses every token issued
before, at once rather than when the token expires.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Protocol
from uuid import UUID

import msgspec
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from core.jobs import after_commit
from db.engine import Database
from db.models import User

_STANDING_SQL = "SELECT token_version, role, suspended_at IS NULL FROM users WHERE id = $1"


class Standing(msgspec.Struct, frozen=True):
    """What a user's access token must say to be honoured (``active`` false: none is)."""

    version: int
    role: str
    active: bool


# No such user (deleted, or a token minted for an id that never existed): no token is honoured.
NO_STANDING = Standing(version=-1, role="", active=False)


class StandingListener(Protocol):
    """Told, after the commit, whose standing changed (``core/adapters/standing.py``)."""

    async def announce(self, user_ids: Sequence[UUID]) -> None: ...


async def load_standing(db: Database, user_id: UUID) -> Standing:
    """The user's current standing, read from PostgreSQL (``NO_STANDING`` when there is no such user).

    Raises:
        the driver's errors when the database is unreachable (answered 503).
    """
    row = await db.fetch_row(_STANDING_SQL, user_id)
    if row is None:
        return NO_STANDING
    return Standing(version=row[0], role=row[1], active=row[2])


async def revoke_access(
    session: AsyncSession, user_ids: Sequence[UUID], listener: StandingListener | None
) -> None:
    """Refuse every access token issued so far to ``user_ids`` (their token version goes up by one).

    Refresh tokens are not touched here; callers end the sessions they mean to end. Once the
    transaction commits, ``listener`` hears of it so that every API process drops what it kept
    of these users' standing; without that news a process still notices within its cache time.
    """
    ids = list(dict.fromkeys(user_ids))
    if not ids:
        return
    await session.execute(
        update(User).where(User.id.in_(ids)).values(token_version=User.token_version + 1),
        execution_options={"synchronize_session": "fetch"},
    )
    if listener is not None:
        after_commit(partial(listener.announce, ids))


__all__ = ["NO_STANDING", "Standing", "StandingListener", "load_standing", "revoke_access"]
