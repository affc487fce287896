"""EXPLAIN for listing queries: which indexes the catalog's hot queries use."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from db.services.catalog.listing import ListingFilters, listing_query
from db.services.catalog.taxonomy import CategoryTree

# The listing queries clients send most, by name.
SCENARIOS: dict[str, ListingFilters] = {
    "newest": ListingFilters(sort="newest"),
    "price_asc": ListingFilters(sort="price_asc"),
    "price_desc": ListingFilters(sort="price_desc"),
    "category (with subcategories), newest": ListingFilters(category="women-dresses"),
    "leaf category, price_asc": ListingFilters(category="men-tops-shirts", sort="price_asc"),
    "brand": ListingFilters(brand="adire-house"),
    "price range": ListingFilters(min_price=1_000_000, max_price=1_200_000, sort="price_asc"),
    "colour": ListingFilters(color="teal"),
    "search, relevance": ListingFilters(q="floral maxi dress"),
    "search as you type": ListingFilters(q="pleated ski"),
    "category + size + in stock": ListingFilters(category="women-bottoms-jeans", size="28", in_stock=True),
}


async def explain(
    session: AsyncSession, tree: CategoryTree, filters: ListingFilters, *, analyze: bool = False
) -> str:
    query = listing_query(tree, filters, limit=20, cursor=None)
    if query is None:
        return "(no query: nothing can match)"
    # The very statement and values the API sends, so the server plans exactly what it runs.
    options = "ANALYZE, BUFFERS, COSTS OFF" if analyze else "COSTS OFF"
    driver: Any = (await (await session.connection()).get_raw_connection()).driver_connection
    rows = await driver.fetch(f"EXPLAIN ({options}) {query.sql}", *query.args)
    return "\n".join(row[0] for row in rows)


def scans_products_sequentially(plan: str) -> bool:
    return "Seq Scan on products" in plan
