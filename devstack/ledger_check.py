"""Check the ledger's invariants on a database (``just ledger-check``): exit 1 on any breach.

python -m devstack.ledger_check                 # DATABASE_URL, or the dev stack's database
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from core.settings import Settings
from db.engine import create_database
from db.services.ledger.checks import check, totals
from devstack.up import cli_settings


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
    sys.exit(asyncio.run(run(cli_settings())))


if __name__ == "__main__":
    main()
