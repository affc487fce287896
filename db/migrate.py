"""Apply and inspect migrations from code (the dev stack, the test harness, readiness checks)."""

from __future__ import annotations

import functools

from advanced_alchemy.alembic.commands import AlembicCommands
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncConnection

from core.settings import Settings
from db.config import MIGRATIONS_DIR, VERSION_TABLE, make_alchemy_config


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Migrate the database named by ``settings`` to ``revision``.

    Blocking (Alembic runs its own event loop): call it from a thread in async code.
    """
    AlembicCommands(sqlalchemy_config=make_alchemy_config(settings)).upgrade(revision=revision)


def downgrade(settings: Settings, revision: str) -> None:
    AlembicCommands(sqlalchemy_config=make_alchemy_config(settings)).downgrade(revision=revision)


@functools.cache
def head_revisions() -> frozenset[str]:
    """The head revision(s) of the migration scripts shipped with this code."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return frozenset(ScriptDirectory.from_config(config).get_heads())


async def current_revisions(conn: AsyncConnection) -> frozenset[str]:
    """Revisions recorded in the database; empty when it was never migrated."""
    try:
        async with conn.begin_nested():
            rows = await conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))  # noqa: S608  # constant name
            return frozenset(r[0] for r in rows)
    except ProgrammingError:
        return frozenset()


@functools.cache
def known_revisions() -> frozenset[str]:
    """Every revision of the migration scripts shipped with this code."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return frozenset(script.revision for script in ScriptDirectory.from_config(config).walk_revisions())


async def is_current(conn: AsyncConnection) -> bool:
    """The database has this code's migrations: exactly its head, or a revision this code does not
    know, i.e. one a newer release applied (during a rolling deploy the migration job runs first,
    and migrations are written to be backward compatible, so the old pods keep serving). A
    database behind this code, or never migrated, is not current.
    """
    current = await current_revisions(conn)
    if not current:
        return False
    return current == head_revisions() or not current <= known_revisions()
