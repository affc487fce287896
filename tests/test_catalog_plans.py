"""The listing's queries use indexes on a realistically sized catalog (the demo generator's)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from core.settings import Settings
from db.engine import Database
from db.services.catalog.plans import SCENARIOS, explain, scans_products_sequentially
from db.services.catalog.taxonomy import load_category_tree
from devstack.demo.catalog import seed_catalog
from tests.conftest import empty_tables

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

PRODUCTS = 20_000


@pytest.fixture(scope="module")
async def seeded(database: Database, settings: Settings) -> AsyncIterator[Database]:
    """A committed demo catalog for this module, removed afterwards."""
    written = await seed_catalog(settings, products=PRODUCTS, pictures_for=0, only_if_empty=False)
    assert written == PRODUCTS
    yield database
    await empty_tables(database)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_listing_query_uses_an_index(seeded: Database, scenario: str) -> None:
    async with seeded.session_maker() as session:
        tree = await load_category_tree(session)
        plan = await explain(session, tree, SCENARIOS[scenario])
    assert not scans_products_sequentially(plan), f"{scenario}:\n{plan}"
    assert "products" in plan


async def test_demo_catalog_is_realistic(seeded: Database) -> None:
    from sqlalchemy import func, select

    from db.models import FitProfile, Product, ProductImage, SizeChartRow, Variant

    async with seeded.session_maker() as session:
        products = await session.scalar(select(func.count()).select_from(Product))
        listed = await session.scalar(select(func.count()).select_from(Product).where(Product.is_listed))
        variants = await session.scalar(select(func.count()).select_from(Variant))
        charts = await session.scalar(select(func.count(func.distinct(SizeChartRow.product_id))))
        profiles = await session.scalar(select(func.count()).select_from(FitProfile))
        in_stock = await session.scalar(select(func.count()).select_from(Product).where(Product.in_stock))
        images = await session.scalar(select(func.count()).select_from(ProductImage))
    assert products == PRODUCTS
    assert listed is not None
    assert 0.9 * PRODUCTS < listed < PRODUCTS
    assert variants is not None
    assert variants > 2 * PRODUCTS
    assert charts is not None
    assert charts > PRODUCTS / 2
    # Products share standard charts: each distinct row is one fit profile.
    assert profiles is not None
    assert 10 < profiles < 100
    assert in_stock is not None
    assert in_stock > 0.8 * PRODUCTS
    assert images == 0
