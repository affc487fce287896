"""Apply and inspect migrations from code (the dev stack, the test harness, readiness checks).

Alembic is imported only by the functions that migrate: the API checks readiness on every
probe, and reads the revisions it needs for that straight from the migration scripts rather
than load Alembic (~20 MB) for it.
"""

from __future__ import annotations

import ast
import functools

from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncConnection

from core.settings import Settings
from db.config import MIGRATIONS_DIR, VERSION_TABLE, make_alchemy_config


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Migrate the database named by ``settings`` to ``revision``.

    Blocking (Alembic runs its own event loop): call it from a thread in async code.
    """
    from advanced_alchemy.alembic.commands import AlembicCommands  # noqa: PLC0415

    AlembicCommands(sqlalchemy_config=make_alchemy_config(settings)).upgrade(revision=revision)


def downgrade(settings: Settings, revision: str) -> None:
    from advanced_alchemy.alembic.commands import AlembicCommands  # noqa: PLC0415

    AlembicCommands(sqlalchemy_config=make_alchemy_config(settings)).downgrade(revision=revision)


def _parents(value: ast.expr) -> frozenset[str]:
    """The revisions named by a ``down_revision`` value: None, a string, or a tuple of them (a merge)."""
    literal = ast.literal_eval(value)
    if literal is None:
        return frozenset()
    if isinstance(literal, str):
        return frozenset({literal})
    return frozenset(literal)


@functools.cache
def _revision_graph() -> dict[str, frozenset[str]]:
    """Each revision of the shipped migration scripts with its parents, read from the scripts'
    module-level ``revision`` and ``down_revision`` assignments (what Alembic reads too)."""
    graph: dict[str, frozenset[str]] = {}
    for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        values: dict[str, ast.expr] = {}
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.AnnAssign | ast.Assign) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                values.update({t.id: node.value for t in targets if isinstance(t, ast.Name)})
        if "revision" in values:
            parents = _parents(values.get("down_revision", ast.Constant(None)))
            graph[ast.literal_eval(values["revision"])] = parents
    return graph


def head_revisions() -> frozenset[str]:
    """The head revision(s) of the migration scripts shipped with this code."""
    graph = _revision_graph()
    parents = frozenset().union(*graph.values()) if graph else frozenset()
    return frozenset(graph) - parents


def known_revisions() -> frozenset[str]:
    """Every revision of the migration scripts shipped with this code."""
    return frozenset(_revision_graph())


async def current_revisions(conn: AsyncConnection) -> frozenset[str]:
    """Revisions recorded in the database; empty when it was never migrated."""
    try:
        async with conn.begin_nested():
            rows = await conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))  # noqa: S608  # constant name
            return frozenset(r[0] for r in rows)
    except ProgrammingError:
        return frozenset()


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
