"""Recount "shoppers like me" from the orders and measurements (``just shopper-sizes``).

python -m devstack.shopper_sizes             # DATABASE_URL, or the dev stack's database
python -m devstack.shopper_sizes --check     # compare the kept counts with a recount; exit 1 if
                                             # they differ; change nothing

The counts are kept by jobs as orders are paid or undone and bodies are measured; this rebuilds
them all in one transaction: after a bulk load that bypassed the jobs (a restored dump, the
benchmark dataset), after the migration that introduced them, or to check them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.settings import Settings
from db.engine import create_database
from db.models import shopper_cells, shopper_sizes, shopper_totals
from db.services.fit.shopper_sizes import rebuild_all
from devstack.up import cli_settings

TABLES = (shopper_cells, shopper_totals, shopper_sizes)


async def _rows(session: AsyncSession) -> list[set[tuple[object, ...]]]:
    # shopper_cells.updated_at changes on every rebuild: compare who is in which cell only.
    found = [{tuple(r)[:2] for r in await session.execute(select(TABLES[0]))}]
    return found + [{tuple(r) for r in await session.execute(select(t))} for t in TABLES[1:]]


async def run(settings: Settings, *, check: bool) -> int:
    database = create_database(settings, "cli")
    try:
        async with database.session_maker() as session:
            kept = await _rows(session)
            stats = await rebuild_all(session)
            recounted = await _rows(session)
            await (session.rollback() if check else session.commit())
    finally:
        await database.dispose()
    # Rows whose key (all but the last column: the cell, or the count) is missing or differs.
    differing = sum(len({row[:-1] for row in a ^ b}) for a, b in zip(kept, recounted, strict=True))
    print(  # a command's report
        f"{stats['shoppers_placed']:,} shoppers in cells, {stats['scope_cells']:,} (scope, cell) "
        f"counts; {differing:,} rows differed from the kept ones"
        + (" (checked only: nothing changed)" if check else "")
    )
    return 1 if check and differing else 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare with a recount; change nothing")
    args = parser.parse_args(argv)
    sys.exit(asyncio.run(run(cli_settings(), check=args.check)))


if __name__ == "__main__":
    main()
