"""Print the plans of the listing queries (``just explain``), e.g. on the 100k demo catalog:

    just seed --products 100000 --pictures 0 && just explain

Exits non-zero if a listing query scans the products table sequentially.
"""

from __future__ import annotations

import asyncio
import sys

from core.settings import get_settings
from db.engine import create_database
from db.services.catalog.plans import SCENARIOS, explain, scans_products_sequentially
from db.services.catalog.taxonomy import load_category_tree


async def main() -> int:
    settings = get_settings()
    database = create_database(settings, "cli")
    failures = []
    try:
        async with database.session_maker() as session:
            tree = await load_category_tree(session)
            for name, filters in SCENARIOS.items():
                plan = await explain(session, tree, filters, analyze="--analyze" in sys.argv)
                print(f"\n=== {name} ===\n{plan}")
                if scans_products_sequentially(plan):
                    failures.append(name)
    finally:
        await database.dispose()
    if failures:
        print(f"\nsequential scans over products: {failures}")
        return 1
    print("\nno listing query scans products sequentially")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
