"""Part 3: precision@k of "more like this" on the demo catalog, every product photographed.

For every listed product with an embedding, ``GET /products/{id}/similar?limit=k``. A result is
*relevant* when it is the same garment kind as the query (tops, bottoms, dresses, outerwear,
shoes, accessories: what the generated photo's silhouette shows) **and** the same colour family
or the same pattern (the generator's ``colour`` and ``pattern`` attributes; colour families
below, patterns are their own family). A *strict* variant asks for the same garment kind, colour
family and pattern. Precision divides by k, so a short answer counts its missing items as
misses.

For comparison: the expected precision of a random ranking of the same candidates (per query:
relevant candidates / candidates, averaged), and the precision of an exact in-process ranking by
cosine similarity of the same embeddings (what the endpoint would return with a perfect index:
any gap between the two is the index's, the rest is the model's).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import numpy as np

from benchmarks.measurement_flow import distribution
from db.services.catalog.taxonomy import CategoryTree

API = "/api/v1"
# The demo generator's 15 colours in 8 families a shopper would call "the same colour".
COLOUR_FAMILY = {
    "black": "dark", "grey": "dark",
    "white": "light", "beige": "light",
    "navy": "blue", "blue": "blue", "indigo": "blue",
    "green": "green", "teal": "green",
    "red": "red", "pink": "red",
    "yellow": "warm", "orange": "warm",
    "purple": "purple",
    "brown": "brown",
}  # fmt: skip


@dataclass(frozen=True)
class Item:
    product_id: UUID
    garment: str | None
    colour: str
    pattern: str
    vector: np.ndarray


def relevant(query: Item, other: Item, *, strict: bool = False) -> bool:
    if query.garment != other.garment:
        return False
    same_colour = COLOUR_FAMILY.get(query.colour, query.colour) == COLOUR_FAMILY.get(
        other.colour, other.colour
    )
    same_pattern = query.pattern == other.pattern
    return same_colour and same_pattern if strict else same_colour or same_pattern


async def load_items(conn: asyncpg.Connection, tree: CategoryTree) -> list[Item]:
    """Listed products with an embedded photo (their first), with the generator's attributes."""
    rows = await conn.fetch(
        "SELECT DISTINCT ON (p.id) p.id, p.category_id, p.attributes->>'colour' AS colour,"
        " p.attributes->>'pattern' AS pattern, i.embedding"
        " FROM products p JOIN product_images i ON i.product_id = p.id"
        " WHERE p.is_listed AND i.embedding IS NOT NULL AND i.embedding_status = 'ready'"
        " ORDER BY p.id, i.position, i.id"
    )
    return [
        Item(
            r["id"], tree.garment_of(r["category_id"]), r["colour"] or "", r["pattern"] or "", r["embedding"]
        )
        for r in rows
    ]


def _precision(query: Item, results: list[Item], k: int, *, strict: bool = False) -> float:
    return sum(relevant(query, r, strict=strict) for r in results[:k]) / k


async def precision_at_k(client: httpx.AsyncClient, items: list[Item], k: int) -> dict[str, Any]:
    by_id = {item.product_id: item for item in items}
    lenient, strict, garment_only, latencies = [], [], [], []
    short = errors = unknown = 0
    samples: set[str] = set()
    for query in items:
        started = time.perf_counter()
        response = await client.get(f"{API}/products/{query.product_id}/similar", params={"limit": k})
        latencies.append(round((time.perf_counter() - started) * 1000, 2))
        if response.status_code != 200:
            errors += 1
            samples.add(f"{response.status_code}: {response.text[:160]}")
            continue
        ids = [UUID(entry["product"]["id"]) for entry in response.json()["items"]]
        short += len(ids) < min(k, len(items) - 1)
        unknown += sum(i not in by_id for i in ids)
        results = [by_id[i] for i in ids if i in by_id and i != query.product_id]
        lenient.append(_precision(query, results, k))
        strict.append(_precision(query, results, k, strict=True))
        garment_only.append(sum(r.garment == query.garment for r in results[:k]) / k)
    random_lenient, random_strict = _random_baseline(items)
    exact_lenient, exact_strict = _exact_reference(items, k)
    return {
        "k": k,
        "queries": len(items),
        "errors": errors,
        "error_samples": sorted(samples)[:3],
        "short_answers": short,
        "results_not_in_candidates": unknown,
        "relevance": "same garment kind AND (same colour family OR same pattern)",
        "relevance_strict": "same garment kind AND same colour family AND same pattern",
        "colour_families": COLOUR_FAMILY,
        "precision_at_k": _mean(lenient),
        "precision_at_k_strict": _mean(strict),
        "same_garment_kind_at_k": _mean(garment_only),
        "random_ranking_precision_at_k": random_lenient,
        "random_ranking_precision_at_k_strict": random_strict,
        "exact_ranking_precision_at_k": exact_lenient,
        "exact_ranking_precision_at_k_strict": exact_strict,
        "latency_ms_sequential": distribution(latencies),
    }


def _mean(values: list[float]) -> float | None:
    return round(float(np.mean(values)), 4) if values else None


def _random_baseline(items: list[Item]) -> tuple[float | None, float | None]:
    """Expected precision@k of a uniformly random ranking of the other candidates (any k)."""
    if len(items) < 2:
        return None, None
    lenient, strict = [], []
    for query in items:
        others = [o for o in items if o.product_id != query.product_id]
        lenient.append(sum(relevant(query, o) for o in others) / len(others))
        strict.append(sum(relevant(query, o, strict=True) for o in others) / len(others))
    return _mean(lenient), _mean(strict)


def _exact_reference(items: list[Item], k: int) -> tuple[float | None, float | None]:
    if len(items) < 2:
        return None, None
    matrix = np.stack([item.vector for item in items])
    similarity = matrix @ matrix.T
    np.fill_diagonal(similarity, -np.inf)
    lenient, strict = [], []
    for index, query in enumerate(items):
        top = np.argsort(-similarity[index], kind="stable")[:k]
        results = [items[j] for j in top]
        lenient.append(_precision(query, results, k))
        strict.append(_precision(query, results, k, strict=True))
    return _mean(lenient), _mean(strict)
