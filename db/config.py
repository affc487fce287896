"""advanced-alchemy configuration, used for migrations (programmatic and CLI).

CLI: ``alchemy --config db.config.alchemy upgrade --no-prompt`` (``just db upgrade``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from advanced_alchemy.config import AlembicAsyncConfig, SQLAlchemyAsyncConfig
from sqlalchemy.ext.asyncio import AsyncEngine

from core.settings import Settings, get_settings
from db.engine import normalise_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version"


def make_alchemy_config(settings: Settings, engine: AsyncEngine | None = None) -> SQLAlchemyAsyncConfig:
    import db.models  # noqa: F401, PLC0415  # registers every table in the metadata

    alembic = AlembicAsyncConfig(
        script_location=str(MIGRATIONS_DIR),
        version_table_name=VERSION_TABLE,
        render_as_batch=False,
    )
    if engine is not None:
        return SQLAlchemyAsyncConfig(engine_instance=engine, alembic_config=alembic)
    return SQLAlchemyAsyncConfig(
        connection_string=normalise_url(settings.require_database_url()), alembic_config=alembic
    )


def __getattr__(name: str) -> Any:
    # Built on first access so importing this module does no configuration work.
    if name == "alchemy":
        return make_alchemy_config(get_settings())
    raise AttributeError(name)
