"""Demo data for the local stack, written once into an empty database.

Later capabilities add their own demo data here (catalog, body profiles, orders). Accounts
use the password below; it is for local demo use only and is refused in production.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from core.adapters.passwords import hash_password_sync
from core.logging import get_logger
from core.settings import Settings
from db.engine import create_database
from db.models import User

log = get_logger(__name__)

DEMO_PASSWORD = "fashionistar-demo-2026"  # noqa: S105  # published demo credential, dev only
DEMO_ACCOUNTS = (
    ("staff@demo.fashionistar.dev", "Funmi Staff", "staff"),
    ("vendor@demo.fashionistar.dev", "Tunde Threads", "vendor"),
    ("shopper@demo.fashionistar.dev", "Amara Shopper", "client"),
)


async def seed_demo_data(settings: Settings) -> bool:
    """Create the demo accounts when there are no users yet. Returns whether anything was written.

    Raises:
        RuntimeError: called with production settings.
    """
    if settings.is_production:
        raise RuntimeError("demo data is never written to a production database")
    database = create_database(settings, "cli")
    try:
        async with database.session_maker() as session, session.begin():
            if await session.scalar(select(func.count()).select_from(User)):
                return False
            password_hash = hash_password_sync(DEMO_PASSWORD)
            now = datetime.now(UTC)
            for email, name, role in DEMO_ACCOUNTS:
                session.add(
                    User(
                        email=email,
                        full_name=name,
                        role=role,
                        password_hash=password_hash,
                        is_verified=True,
                        verified_at=now,
                    )
                )
        log.info("demo data written", accounts=[a[0] for a in DEMO_ACCOUNTS])
        return True
    finally:
        await database.dispose()
