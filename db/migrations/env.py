"""Alembic environment: runs migrations on the engine that advanced-alchemy hands over."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, cast

from alembic import context
from sqlalchemy import pool
from sqlalchemy.ext.asyncio import AsyncEngine, async_engine_from_config

import db.models
from db.config import VERSION_TABLE

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

config = context.config
target_metadata = db.models.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=getattr(config, "db_url", None) or config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        version_table=VERSION_TABLE,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        compare_type=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online() -> None:
    engine = cast("AsyncEngine | None", getattr(config, "engine", None))
    owned = engine is None
    if engine is None:
        section = config.get_section(config.config_ini_section) or {}
        engine = async_engine_from_config(section, prefix="sqlalchemy.", poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(do_run_migrations)
    if owned:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
