"""The API's own connection pool in tests (the fast read paths use it directly)."""

from __future__ import annotations

from sqlalchemy import text

from db.engine import Database


async def drop_api_connections(database: Database) -> int:
    """Terminate every server connection of the API's pools (application_name fashionistar-api)
    in the test database, as a restart, a failover or an idle timeout would; how many."""
    async with database.engine.connect() as conn:
        dropped = await conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'fashionistar-api' AND datname = current_database()"
            )
        )
        return int(dropped.scalar_one())
