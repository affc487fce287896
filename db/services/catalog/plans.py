"""EXPLAIN for listing queries: which indexes the catalog's hot queries use."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from db.services.catalog.listing import ListingFilters, listing_statement
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
    built = await listing_statement(session, tree, filters, limit=20, cursor=None)
    if built is None:
        return "(no query: nothing can match)"
    stmt, _ = built
    # Compiled for the live connection and sent with the same parameters as the real query, so
    # the server plans exactly what the API runs.
    connection = await session.connection()
    compiled = stmt.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
    values = compiled.construct_params()
    processors: dict[str, Any] = dict(compiled._bind_processors)  # the dialect's own conversions
    ordered = [
        processors[name](values[name]) if name in processors else values[name]
        for name in compiled.positiontup or []
    ]
    options = "ANALYZE, BUFFERS, COSTS OFF" if analyze else "COSTS OFF"
    driver: Any = (await connection.get_raw_connection()).driver_connection
    rows = await driver.fetch(f"EXPLAIN ({options}) {compiled.string}", *ordered)
    return "\n".join(row[0] for row in rows)


def scans_products_sequentially(plan: str) -> bool:
    return "Seq Scan on products" in plan
