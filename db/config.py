"""advanced-alchemy configuration, used for migrations (programmatic and CLI).

CLI: ``alchemy --config db.config.alchemy upgrade --no-prompt`` (``just db upgrade``), or the same
commands through Litestar's: ``litestar database upgrade --no-prompt`` (``app.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from advanced_alchemy.config import AlembicAsyncConfig, SQLAlchemyAsyncConfig
from sqlalchemy.ext.asyncio import AsyncEngine

from core.settings import Settings, get_settings
from db.engine import normalise_url

if TYPE_CHECKING:
    from advanced_alchemy.extensions.litestar import SQLAlchemyInitPlugin

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version"


def _alembic_options() -> dict[str, Any]:
    return {
        "script_location": str(MIGRATIONS_DIR),
        "version_table_name": VERSION_TABLE,
        "render_as_batch": False,
    }


def make_alchemy_config(settings: Settings, engine: AsyncEngine | None = None) -> SQLAlchemyAsyncConfig:
    import db.models  # noqa: F401, PLC0415  # registers every table in the metadata

    alembic = AlembicAsyncConfig(**_alembic_options())
    if engine is not None:
        return SQLAlchemyAsyncConfig(engine_instance=engine, alembic_config=alembic)
    return SQLAlchemyAsyncConfig(
        connection_string=normalise_url(settings.require_database_url()), alembic_config=alembic
    )


def make_migrations_plugin(settings: Settings) -> SQLAlchemyInitPlugin:
    """advanced-alchemy's Litestar plugin, for the ``litestar database ...`` commands it adds.

    Only the ``litestar`` command's app carries it (``app.py``), never the served API: at app
    start it would also build an engine of its own and add a session dependency, a hook on every
    response and an exception handler, all of which the API has its own of. Its dependency keys
    are renamed anyway, so they cannot stand in for the API's ``db_session``. Without
    ``DATABASE_URL`` the app still builds (``litestar routes`` needs no database); the commands
    that need one fail when they run, with advanced-alchemy's "connection_string" error.
    """
    from advanced_alchemy.extensions.litestar import (  # noqa: PLC0415  # loads Alembic: CLI only
        AlembicAsyncConfig as LitestarAlembicConfig,
    )
    from advanced_alchemy.extensions.litestar import (  # noqa: PLC0415
        SQLAlchemyAsyncConfig as LitestarAlchemyConfig,
    )
    from advanced_alchemy.extensions.litestar import SQLAlchemyInitPlugin  # noqa: PLC0415

    import db.models  # noqa: F401, PLC0415  # registers every table in the metadata (make-migrations)

    url = normalise_url(settings.database_url) if settings.database_url else None
    config = LitestarAlchemyConfig(
        connection_string=url,
        alembic_config=LitestarAlembicConfig(**_alembic_options()),
        engine_dependency_key="migrations_engine",
        session_dependency_key="migrations_session",
        session_scope_key="_migrations_session",
        engine_app_state_key="migrations_engine",
        session_maker_app_state_key="migrations_session_maker",
        set_default_exception_handler=False,
    )
    return SQLAlchemyInitPlugin(config=config)


def __getattr__(name: str) -> Any:
    # Built on first access so importing this module does no configuration work.
    if name == "alchemy":
        return make_alchemy_config(get_settings())
    raise AttributeError(name)
