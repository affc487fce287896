"""The dimension benchmark's pure parts: projections fitted and applied, exact kNN, recall,
the "more like this" relevance rule, vector sizes, the photo sets and the filter picker."""

from __future__ import annotations

import io
from uuid import uuid4

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from benchmarks.embedding_dimension import candidate, parse_variant
from benchmarks.embedding_dimension_db import estimate_product_images, pick_categories
from benchmarks.embedding_photos import render
from benchmarks.embedding_projection import (
    Looks,
    fit,
    pgvector_bytes,
    precision,
    random_precision,
    recall,
    top_k,
    unit,
)
from benchmarks.search_quality.precision import Item, relevant


def low_rank(n: int, d: int, rank: int, seed: int = 1, offset: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return unit(rng.standard_normal((n, rank)) @ rng.standard_normal((rank, d)) + offset)


def test_pca_finds_the_subspace_of_low_rank_data_and_keeps_its_ranking() -> None:
    data = low_rank(300, 40, 4, offset=0.0)
    projection = fit("pca", data[:150], 5)
    assert projection.kept_of_fit > 0.999
    assert projection.kept(data[150:]) > 0.999
    projected = projection.apply(data[150:])
    assert projected.shape == (150, 5)
    assert np.allclose(np.linalg.norm(projected, axis=1), 1, atol=1e-5)
    assert np.allclose(projection.components @ projection.components.T, np.eye(5), atol=1e-5)
    # Centred data of rank 4 loses nothing, but PCA ranks by the cosine of *centred* vectors.
    assert projection.mean is not None


def test_svd_projection_of_data_inside_its_subspace_preserves_every_cosine() -> None:
    data = low_rank(200, 30, 6, offset=0.3)  # rank 7: six directions and the common offset
    projection = fit("svd", data[:100], 7)
    judged = data[100:]
    projected = projection.apply(judged)
    assert np.allclose(projected @ projected.T, judged @ judged.T, atol=1e-4)
    assert recall(top_k(judged, 5), top_k(projected, 5)).mean() == 1.0


def test_a_projection_that_drops_the_signal_loses_recall() -> None:
    data = low_rank(200, 30, 12, seed=3)
    truth = top_k(data, 10)
    poor = recall(truth, top_k(fit("svd", data[:100], 2).apply(data), 10)).mean()
    good = recall(truth, top_k(fit("svd", data[:100], 12).apply(data), 10)).mean()
    assert good > 0.99
    assert poor < 0.6


def test_random_projection_is_orthonormal_seeded_and_data_blind() -> None:
    data = low_rank(50, 64, 8)
    a, b = fit("random", data, 16, seed=5), fit("random", data[:10], 16, seed=5)
    assert np.allclose(a.components @ a.components.T, np.eye(16), atol=1e-5)
    assert np.array_equal(a.components, b.components)
    assert not np.array_equal(a.components, fit("random", data, 16, seed=6).components)
    assert 0 < a.kept_of_fit < 1
    assert a.mean is None


@pytest.mark.parametrize(("method", "dims", "rows"), [("pca", 64, 10), ("pca", 0, 10), ("svd", 20, 10)])
def test_fit_refuses_dimensions_it_cannot_give(method: str, dims: int, rows: int) -> None:
    with pytest.raises(ValueError, match=r"dims|cannot fit"):
        fit(method, low_rank(rows, 64, 4), dims)  # type: ignore[arg-type]


def test_top_k_is_best_first_and_never_the_query_itself() -> None:
    data = low_rank(40, 8, 8, seed=9)
    found = top_k(data, 5)
    similarity = data @ data.T
    for i, row in enumerate(found):
        assert i not in row
        expected = [j for j in np.argsort(-similarity[i]) if j != i][:5]
        assert list(row) == expected
    queries = data[:3]
    assert list(top_k(data, 1, queries=queries)[:, 0]) == [0, 1, 2]  # with a query pool: itself first


def test_recall_counts_shared_ids_whatever_their_order() -> None:
    truth = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    found = np.array([[4, 3, 9, 1], [0, 10, 11, 12]])
    assert list(recall(truth, found)) == [0.75, 0.0]


def test_relevance_matrix_is_search_qualitys_rule_for_every_pair() -> None:
    looks = [
        ("tops", "navy", "solid"),
        ("tops", "blue", "stripes"),  # same colour family as navy
        ("tops", "red", "solid"),  # same pattern as the first
        ("tops", "red", "dots"),
        ("dresses", "navy", "solid"),  # another garment kind
        (None, "teal", "checks"),
        ("tops", "mauve", "checks"),  # a colour outside the families
    ]
    matrix = Looks(*(np.array(c, dtype=object) for c in zip(*looks, strict=True)))
    items = [Item(uuid4(), g, c, p, np.zeros(1)) for g, c, p in looks]
    for strict in (False, True):
        expected = [[relevant(a, b, strict=strict) for b in items] for a in items]
        assert matrix.relevance(strict=strict).tolist() == expected
    assert matrix.relevance()[0, 1]
    assert matrix.relevance()[0, 2]
    assert not matrix.relevance()[0, 4]


def test_precision_and_the_random_floor() -> None:
    relevance = np.array([[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 1]], dtype=bool)
    neighbours = np.array([[1, 2], [0, 3], [1, 0], [0, 1]])
    assert precision(relevance, neighbours) == pytest.approx((1 + 1 + 1 + 0) / 8)
    # Others relevant per query: 1, 2, 1, 0 of 3.
    assert random_precision(relevance) == pytest.approx((1 + 2 + 1 + 0) / 3 / 4)


@pytest.mark.anyio
async def test_pgvector_bytes_is_what_postgresql_stores(session: AsyncSession) -> None:
    for dims in (128, 256, 1280):
        literal = "[" + ",".join(["0.5"] * dims) + "]"
        size = await session.scalar(text(f"SELECT pg_column_size(CAST('{literal}' AS vector))"))
        assert size == pgvector_bytes(dims)


def test_product_images_estimate_fits_more_rows_per_page_for_smaller_vectors() -> None:
    full, small = estimate_product_images(100_000, 300, 1280), estimate_product_images(100_000, 300, 256)
    assert full["rows_per_page"] == 1  # 5.4 KB rows: one per 8 KiB page
    assert small["rows_per_page"] == 6  # 1.3 KB rows
    assert full["table_mb"] == pytest.approx(781.2, abs=0.1)
    assert small["table_mb"] == pytest.approx(130.2, abs=0.1)


def test_pick_categories_comes_closest_to_the_share() -> None:
    categories = np.array([f"c{i}" for i in range(50) for _ in range(20)], dtype=object)  # 2% each
    assert len(pick_categories(categories, 0.02, seed=1)) == 1
    tenth = pick_categories(categories, 0.10, seed=1)
    assert len(set(tenth)) == len(tenth) == 5
    lopsided = np.array(["big"] * 900 + ["small"] * 100, dtype=object)
    assert pick_categories(lopsided, 0.02, seed=1) in (["small"], ["big"])  # never empty


def test_photo_sets_are_deterministic_and_reshot_photos_differ() -> None:
    first, look = render("catalog", 3, seed=7)
    assert render("catalog", 3, seed=7) == (first, look)
    assert render("catalog", 4, seed=7)[0] != first
    reshot, reshot_look = render("reshot", 3, seed=7)
    assert reshot != first
    assert reshot_look[0] in ("tops", "outerwear", "dresses", "bottoms", "shoes", "accessories")
    assert all(isinstance(x, str) for x in (*look, *reshot_look))
    with Image.open(io.BytesIO(first)) as a, Image.open(io.BytesIO(reshot)) as b:
        assert (a.format, a.size) == ("JPEG", (512, 512))
        assert (b.format, b.size) == ("JPEG", (512, 640))  # a portrait frame: the model pads it square


def test_candidate_is_the_smallest_fitted_projection_that_keeps_recall_and_precision() -> None:
    reference = {"precision_at_k": 0.90}
    rows = [
        {"method": "random", "dims": 128, "recall_at_k": 0.99, "precision_at_k": 0.90},  # never a candidate
        {"method": "pca", "dims": 128, "recall_at_k": 0.94, "precision_at_k": 0.90},  # recall too low
        {"method": "svd", "dims": 128, "recall_at_k": 0.97, "precision_at_k": 0.88},  # precision lost
        {"method": "pca", "dims": 256, "recall_at_k": 0.95, "precision_at_k": 0.895},
        {"method": "svd", "dims": 256, "recall_at_k": 0.96, "precision_at_k": 0.90},
        {"method": "svd", "dims": 384, "recall_at_k": 0.99, "precision_at_k": 0.90},
    ]
    assert candidate(rows, reference, min_recall=0.95, max_loss=0.01) == "svd256"
    assert candidate(rows, reference, min_recall=0.98, max_loss=0.01) == "svd384"
    assert candidate(rows, reference, min_recall=0.999, max_loss=0.01) is None


def test_parse_variant_takes_a_method_and_a_dimension_and_nothing_else() -> None:
    assert parse_variant("svd256") == ("svd", 256)
    assert parse_variant(" pca384 ") == ("pca", 384)
    for bad in ("svd", "256", "lda128", "svd-256", "svd256x"):
        with pytest.raises(ValueError, match="not a projection"):
            parse_variant(bad)
