"""Check the ledger's invariants on a database (``just ledger-check``): exit 1 on any breach.

python -m devstack.ledger_check                 # DATABASE_URL, or the dev stack's database
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import msgspec

from core.logging import configure_logging
from core.settings import Settings, get_settings
from db.engine import create_database
from db.services.ledger.checks import check, totals
from devstack.services import EmbeddedPostgres
from devstack.up import DEV_DATABASE


async def run(settings: Settings) -> int:
    database = create_database(settings, "cli")
    try:
        async with database.session_maker() as session:
            breaches = await check(session)
            balances = await totals(session)
    finally:
        await database.dispose()
    for code, amount in balances.items():
        print(f"{code:<24} {amount:>16,}")  # a command's report
    for breach in breaches:
        print(f"BREACH {breach.invariant}: {breach.detail}")
    print("ledger holds" if not breaches else f"{len(breaches)} breaches")
    return 1 if breaches else 0


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter).parse_args(
        argv
    )
    settings = get_settings()
    configure_logging(level=settings.log_level, fmt=settings.log_format, process="cli")
    if not settings.database_url:
        # The dev stack's embedded database (started here if `up` is not running).
        embedded = EmbeddedPostgres(settings.data_dir / "pg")
        embedded.start()
        settings = msgspec.structs.replace(settings, database_url=embedded.url(DEV_DATABASE))
    sys.exit(asyncio.run(run(settings)))


if __name__ == "__main__":
    main()
