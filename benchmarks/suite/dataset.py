"""The suite's dataset: the search benchmark's catalog plus shoppers and their order history.

Built in three layers, each cached in the benchmark's PostgreSQL (``.data/bench-search/pg``):

1. the similarity dataset of ``benchmarks.search_quality`` (products with variants, size charts,
   fit profiles and image embeddings; ``DatasetSpec("similarity", ...)``), built or reused by that
   package's ``ensure_dataset``;
2. the suite database ``suite_v<DATASET_VERSION>_u<users>_o<orders per user x10>_<catalog>``: a
   copy of (1) (``CREATE DATABASE ... TEMPLATE``) plus ``people.py``'s shoppers, body profiles and
   orders, then ``VACUUM ANALYZE``; its JSON marker (``<data dir>/datasets/<name>.json``) holds the
   parameters, build steps and row counts, and a later run reuses it when the marker matches;
3. per run, a working copy ``bench_run`` of (2), dropped and re-created at the start of every run,
   so what one run writes (orders, reservations, stock raised for the order scenario) never reaches
   the next.

Bump ``DATASET_VERSION`` when the rows people.py writes change.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from benchmarks.search_quality.dataset import Dataset, DatasetSpec, category_tree, ensure_dataset
from benchmarks.search_quality.stack import SearchStack, Timer, connect
from benchmarks.suite import people
from db import migrate
from db.engine import create_database
from db.services.fit.shopper_sizes import rebuild_all
from devstack.progress import progress

# 3: "shoppers like me" counted per body-shape cell (migration 0018) after the COPY.
DATASET_VERSION = 3
RUN_DATABASE = "bench_run"


@dataclass(frozen=True)
class SuiteSpec:
    catalog: DatasetSpec
    users: int = 10_000
    orders_per_user: float = 3.0

    @property
    def name(self) -> str:
        return (
            f"suite_v{DATASET_VERSION}_u{self.users}_o{round(self.orders_per_user * 10)}_{self.catalog.name}"
        )

    def params(self) -> dict[str, Any]:
        return {
            "version": DATASET_VERSION,
            "catalog": self.catalog.params(),
            "users": self.users,
            "orders_per_user": self.orders_per_user,
        }


@dataclass
class SuiteDataset:
    spec: SuiteSpec
    catalog: Dataset
    reused: bool
    marker: dict[str, Any]
    steps: list[dict[str, Any]] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        return {
            "database": self.spec.name,
            "params": self.spec.params(),
            "reused": self.reused,
            "built_at": self.marker.get("built_at"),
            "build_steps": self.marker.get("build_steps"),
            "stats": self.marker.get("stats"),
            "steps_this_run": self.steps,
            "catalog": self.catalog.report(),
            "people_construction": (people.__doc__ or "").strip(),
        }


def copy_database(stack: SearchStack, source: str, target: str) -> None:
    """``target`` as a file-level copy of ``source`` (dropped first). A copy needs ``source`` to have
    no sessions: idle ones left by this process's own pools (migrations) are ended first."""
    stack.postgres.drop_database(target)
    stack.postgres.psql(
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{source}'"  # noqa: S608  # our own name
        " AND pid <> pg_backend_pid()"
    )
    stack.postgres.psql(f'CREATE DATABASE "{target}" TEMPLATE "{source}" STRATEGY FILE_COPY')


def _exists(stack: SearchStack, name: str) -> bool:
    return stack.postgres.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'") == "1"  # noqa: S608  # our own name


def ensure_suite_dataset(stack: SearchStack, spec: SuiteSpec, *, rebuild: bool) -> SuiteDataset:
    """The suite database of ``spec``: reused when a finished build matches, else built."""
    catalog = ensure_dataset(stack, spec.catalog, rebuild=rebuild)
    marker_path = stack.root / "datasets" / f"{spec.name}.json"
    marker = json.loads(marker_path.read_text()) if marker_path.exists() else None
    timer = Timer([])
    fresh_catalog = not catalog.reused
    matches = marker is not None and marker.get("params") == spec.params() and _exists(stack, spec.name)
    if matches and marker is not None and not (rebuild or fresh_catalog):
        with timer.step("migrations (reused suite dataset)"):
            migrate.upgrade(stack.dataset_settings(spec.name))
        return SuiteDataset(spec, catalog, reused=True, marker=marker, steps=timer.steps)
    marker_path.unlink(missing_ok=True)
    step = "copy the catalog database (CREATE DATABASE ... TEMPLATE)"
    with timer.step(step), progress(step):
        copy_database(stack, spec.catalog.name, spec.name)
    settings = stack.dataset_settings(spec.name)
    with timer.step("migrations"):
        migrate.upgrade(settings)
    stats = asyncio.run(_add_people(stack, spec, timer))
    marker = {
        "name": spec.name,
        "params": spec.params(),
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "build_steps": timer.steps,
        "build_seconds": round(sum(s["seconds"] for s in timer.steps), 1),
        "stats": stats,
    }
    marker_path.parent.mkdir(parents=True, exist_ok=True)
    marker_path.write_text(json.dumps(marker, indent=2) + "\n")
    return SuiteDataset(spec, catalog, reused=False, marker=marker, steps=timer.steps)


async def _add_people(stack: SearchStack, spec: SuiteSpec, timer: Timer) -> dict[str, Any]:
    settings = stack.dataset_settings(spec.name)
    tree = await category_tree(settings)
    async with connect(settings.require_database_url()) as conn:
        step = f"shoppers, body profiles and order history planned ({spec.users:,} shoppers)"
        with timer.step(step), progress(f"planning {spec.users:,} shoppers", spec.users) as bar:
            products = await people.chart_products(conn, tree, people.POPULAR_PRODUCTS)
            rows = people.plan_people(spec.users, spec.orders_per_user, spec.catalog.seed, products, bar)
        step = "COPY users, measurements, orders, order lines, order events"
        with timer.step(step), progress(step, len(people.COLUMNS)) as bar:
            counts = await people.write_people(conn, rows, bar)
        step = "shoppers like me counted per body-shape cell"
        with timer.step(step), progress(step):
            database = create_database(settings, "cli")
            try:
                async with database.session_maker() as session:
                    await rebuild_all(session)
                    await session.commit()
            finally:
                await database.dispose()
        tables = [*people.COLUMNS, "shopper_cells", "shopper_totals", "shopper_sizes"]
        with timer.step("VACUUM ANALYZE"), progress("VACUUM ANALYZE", len(tables)) as bar:
            for table in tables:
                bar.describe(f"VACUUM ANALYZE {table}")
                await conn.execute(f"VACUUM ANALYZE {table}")
                bar.advance()
    lines = max(1, len(rows.lines))
    return {
        "rows": counts,
        "order_statuses": dict(rows.statuses),
        "lines_in_the_advised_size": round(rows.advised_sizes / lines, 3),
        "products_bought_from": len(products),
    }


def working_copy(stack: SearchStack, dataset: SuiteDataset, timer: Timer) -> str:
    """A fresh ``bench_run`` database copied from the suite database; returns its name."""
    step = f"working copy {RUN_DATABASE} of {dataset.spec.name}"
    with timer.step(step), progress(step):
        copy_database(stack, dataset.spec.name, RUN_DATABASE)
    return RUN_DATABASE
