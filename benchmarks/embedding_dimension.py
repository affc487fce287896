"""Which dimension to store product image embeddings at (``just bench-dimension``).

The model gives 1280-d vectors; a linear projection fitted offline (``embedding_projection``:
centred PCA, uncentred SVD, or a random orthonormal baseline) could store 128-512 instead.

**Quality** (real model outputs only, ``embedding_photos``): the catalog photos are split in
two halves by index; each projection is fitted on the first half and judged on the second, so
no judged photo was seen by the fit. On the judged half every photo is a query against the other
photos of that half (never itself):

* recall@k of the projected cosine kNN against the exact 1280-d cosine kNN (the ground truth),
  per query then averaged, also on subsets of the judged half (a growing pool makes neighbours
  closer and harder to keep apart), and on the reshot photos (another framing and light, same
  projection, fitted on catalog photos);
* precision@k of "more like this" under ``search_quality.precision``'s rule (same garment kind
  and the same colour family or pattern; strict: and both), for 1280-d and each projection,
  with a random ranking's expected precision as the floor.

**Size and speed** (``embedding_dimension_db``, unless ``--no-database``): 100k rows per
variant side by side in the benchmark's PostgreSQL: table and HNSW index size, index build
time, exact filtered search and HNSW round trips. By default the variants are 1280-d and the
*candidate*: the smallest PCA dimension whose recall@k on the judged half is at least
``--min-recall`` and whose precision@k is within ``--max-precision-loss`` of 1280-d's.

Writes ``benchmarks/results/embedding_dimension-<UTC time>.json`` and
``embedding_dimension-latest.json`` and prints a summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import numpy as np

from benchmarks import embedding_dimension_db, embedding_photos
from benchmarks.embedding_projection import (
    METHODS,
    Looks,
    Method,
    Projection,
    fit,
    pgvector_bytes,
    precision,
    random_precision,
    recall,
    top_k,
)
from benchmarks.measurement_flow import machine
from benchmarks.search_quality.dataset import DatasetSpec, ensure_dataset
from benchmarks.search_quality.stack import SearchStack
from inference.manifest import all_manifests

RESULTS_DIR = Path(__file__).resolve().parent / "results"
FULL = 1280


@dataclass(frozen=True)
class Judged:
    """A set of photos to judge projections on, with what does not depend on the projection."""

    vectors: np.ndarray  # 1280-d unit vectors
    truth: np.ndarray  # exact 1280-d top-k per photo
    relevance: np.ndarray
    relevance_strict: np.ndarray

    @classmethod
    def of(cls, vectors: np.ndarray, looks: Looks, k: int) -> Judged:
        return cls(vectors, top_k(vectors, k), looks.relevance(), looks.relevance(strict=True))

    def true_cosine(self, neighbours: np.ndarray) -> np.ndarray:
        """Per query: the mean 1280-d cosine of its neighbours."""
        result: np.ndarray = np.einsum("qkd,qd->qk", self.vectors[neighbours], self.vectors).mean(axis=1)
        return result


def _judge(projected: np.ndarray, judged: Judged) -> dict[str, Any]:
    """Recall@k against the exact 1280-d top-k, how much less similar (in 1280-d) the projected
    neighbours are, and precision@k, for the kNN of ``projected`` (unit rows)."""
    found = top_k(projected, judged.truth.shape[1])
    per_query = recall(judged.truth, found)
    gap = judged.true_cosine(judged.truth) - judged.true_cosine(found)
    return {
        "recall_at_k": round(float(per_query.mean()), 4),
        "recall_at_k_p5": round(float(np.percentile(per_query, 5)), 2),
        "queries_below_0_8": int((per_query < 0.8).sum()),
        "cosine_loss_mean": round(float(gap.mean()), 5),
        "cosine_loss_p95": round(float(np.percentile(gap, 95)), 5),
        "precision_at_k": round(precision(judged.relevance, found), 4),
        "precision_at_k_strict": round(precision(judged.relevance_strict, found), 4),
    }


def _reference(judged: Judged) -> dict[str, Any]:
    vectors, found = judged.vectors, judged.truth
    return {
        "photos": len(vectors),
        "queries": len(vectors),
        "precision_at_k": round(precision(judged.relevance, found), 4),
        "precision_at_k_strict": round(precision(judged.relevance_strict, found), 4),
        "random_ranking_precision_at_k": round(random_precision(judged.relevance), 4),
        "random_ranking_precision_at_k_strict": round(random_precision(judged.relevance_strict), 4),
        "neighbour_cosine_1st": round(float(np.mean(np.sum(vectors[found[:, 0]] * vectors, axis=1))), 4),
        f"neighbour_cosine_{found.shape[1]}th": round(
            float(np.mean(np.sum(vectors[found[:, -1]] * vectors, axis=1))), 4
        ),
    }


def quality(
    catalog: embedding_photos.Photos,
    reshot: embedding_photos.Photos,
    dims: list[int],
    methods: list[Method],
    k: int,
    seed: int,
) -> tuple[dict[str, Any], dict[tuple[str, int], Projection]]:
    half = len(catalog.vectors) // 2
    fit_set = catalog.vectors[:half]
    judged = Judged.of(catalog.vectors[half:], catalog.looks.subset(np.arange(half, len(catalog.vectors))), k)
    again = Judged.of(reshot.vectors, reshot.looks, k)
    pools = sorted({half // 8, half // 4, half // 2, len(judged.vectors)})
    pool_truth = {n: top_k(judged.vectors[:n], k) for n in pools}
    rows: list[dict[str, Any]] = []
    projections: dict[tuple[str, int], Projection] = {}
    for method in methods:
        for d in dims:
            started = time.perf_counter()
            projection = fit(method, fit_set, d, seed=seed)
            projections[(method, d)] = projection
            projected = projection.apply(judged.vectors)
            row = {
                "method": method,
                "dims": d,
                "bytes_per_vector": pgvector_bytes(d),
                "energy_kept_fit": round(projection.kept_of_fit, 4),
                "energy_kept_judged": round(projection.kept(judged.vectors), 4),
                **_judge(projected, judged),
                "recall_at_k_by_pool": {
                    str(n): round(float(recall(pool_truth[n], top_k(projected[:n], k)).mean()), 4)
                    for n in pools
                },
                "reshot": _judge(projection.apply(reshot.vectors), again),
                "seconds": round(time.perf_counter() - started, 2),
            }
            rows.append(row)
    report = {
        "k": k,
        "split": f"catalog photos 0..{half - 1} fit every projection; photos {half}.."
        f"{len(catalog.vectors) - 1} are judged (each one a query against the others); the reshot photos "
        "are judged with the same fit",
        "fit_photos": half,
        "judged_photos": len(judged.vectors),
        "reshot_photos": len(reshot.vectors),
        "pools": pools,
        "reference_1280": {
            "judged": _reference(judged),
            "reshot": _reference(again),
        },
        "projections": rows,
    }
    return report, projections


def candidate(
    rows: list[dict[str, Any]], reference: dict[str, Any], min_recall: float, max_loss: float
) -> str | None:
    """The smallest dimension at which a fitted projection (pca or svd) keeps recall@k at least
    ``min_recall`` and precision@k within ``max_loss`` of 1280-d's, by the better method there
    (e.g. ``"svd256"``; None: none does)."""
    good = [
        r
        for r in rows
        if r["method"] != "random"
        and r["recall_at_k"] >= min_recall
        and r["precision_at_k"] >= reference["precision_at_k"] - max_loss
    ]
    best = min(good, key=lambda r: (r["dims"], -r["recall_at_k"]), default=None)
    return None if best is None else f"{best['method']}{best['dims']}"


def parse_variant(name: str) -> tuple[Method, int]:
    """``"svd256"`` -> ("svd", 256).

    Raises:
        ValueError: not a method followed by a dimension.
    """
    match = re.fullmatch(r"(pca|svd|random)(\d+)", name.strip())
    if match is None:
        raise ValueError(f"not a projection like svd256 or pca384: {name!r}")
    return cast(Method, match.group(1)), int(match.group(2))


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="just bench-dimension", description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--photos", type=int, default=6000, help="catalog photos: half fit, half judged (default 6000)")
    add("--reshot", type=int, default=1500, help="reshot photos, judged only (default 1500)")
    add("--dims", default="128,256,384,512", help="projected dimensions (default 128,256,384,512)")
    add("--methods", default=",".join(METHODS), help=f"projections (default {','.join(METHODS)})")
    add("--k", type=int, default=10, help="neighbours judged (default 10)")
    add("--seed", type=int, default=7)
    add("--min-recall", type=float, default=0.95, help="candidate rule: recall@k at least (default 0.95)")
    add("--max-precision-loss", type=float, default=0.01, help="candidate rule (default 0.01)")
    add("--no-database", action="store_true", help="quality only: no 100k-row tables")
    add(
        "--db",
        default="",
        help="projections measured on 100k rows, e.g. svd256,pca384 (default: the candidate)",
    )
    add("--queries", type=int, default=100, help="queries per variant on 100k rows (default 100)")
    add("--limit", type=int, default=20, help="results per query on 100k rows (default 20)")
    add(
        "--data-dir",
        type=Path,
        default=Path(".data"),
        help="photo cache and benchmark PostgreSQL (default .data)",
    )
    add("--keep-database", action="store_true", help="leave the 100k-row tables in place")
    return parser.parse_args(argv)


def _database(args: argparse.Namespace, projections: list[Projection]) -> dict[str, Any]:
    stack = SearchStack(args.data_dir / "bench-search")
    stack.start_services()
    try:
        spec = DatasetSpec("similarity", 100_000, args.seed, 2_000, 0.9, 16)
        dataset = ensure_dataset(stack, spec, rebuild=False)
        return asyncio.run(
            embedding_dimension_db.measure(
                stack,
                spec.name,
                projections,
                queries=args.queries,
                limit=args.limit,
                seed=args.seed,
                keep=args.keep_database,
            )
        ) | {"dataset_reused": dataset.reused}
    finally:
        stack.stop_services()


def run(args: argparse.Namespace) -> dict[str, Any]:
    manifest = all_manifests()["product_embedding"]
    started = datetime.now(UTC)
    cache = args.data_dir / "embedding-dimension"
    catalog = embedding_photos.load_or_embed("catalog", args.photos, args.seed, manifest, cache)
    reshot = embedding_photos.load_or_embed("reshot", args.reshot, args.seed, manifest, cache)
    dims = [int(d) for d in args.dims.split(",") if d]
    methods: list[Method] = [m for m in METHODS if m in args.methods.split(",")]
    measured, projections = quality(catalog, reshot, dims, methods, args.k, args.seed)
    reference = measured["reference_1280"]["judged"]
    chosen = candidate(measured["projections"], reference, args.min_recall, args.max_precision_loss)
    variants = [parse_variant(v) for v in args.db.split(",") if v] or (
        [parse_variant(chosen)] if chosen else []
    )
    half = len(catalog.vectors) // 2
    for method, d in variants:
        if (method, d) not in projections:
            projections[(method, d)] = fit(method, catalog.vectors[:half], d, seed=args.seed)
    report: dict[str, Any] = {
        "benchmark": "embedding_dimension",
        "started_at": started.isoformat(timespec="seconds"),
        "command": "just bench-dimension " + " ".join(sys.argv[1:]),
        "machine": machine(),
        # Other programs share this machine: its 1/5/15-minute load averages at the start and the end.
        "load_average": {"start": [round(x, 2) for x in os.getloadavg()]},
        "model": {
            "name": manifest.name,
            "version": manifest.version,
            "sha256": manifest.sha256,
            "dims": FULL,
        },
        "photos": {
            "construction": embedding_photos.__doc__,
            "seed": args.seed,
            "catalog": len(catalog.vectors),
            "reshot": len(reshot.vectors),
            "render_seconds": {"catalog": catalog.render_seconds, "reshot": reshot.render_seconds},
            "embed_seconds": {"catalog": catalog.embed_seconds, "reshot": reshot.embed_seconds},
        },
        "quality": measured,
        "candidate_rule": f"smallest dims of a fitted projection (pca, svd) with recall@{args.k} >= "
        f"{args.min_recall} and precision@{args.k} >= 1280-d's - {args.max_precision_loss} on the judged "
        "half, the better method there",
        "candidate": chosen,
    }
    if args.no_database or not variants:
        report["database"] = {"skipped": "--no-database" if args.no_database else "no candidate"}
    else:
        report["database"] = _database(args, [projections[v] for v in variants])
    report["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    report["load_average"]["end"] = [round(x, 2) for x in os.getloadavg()]
    return report


def summary(report: dict[str, Any]) -> str:
    q = report["quality"]
    ref, k = q["reference_1280"], q["k"]
    lines = [
        f"Embedding dimension: {q['fit_photos']} photos fit, {q['judged_photos']} judged, "
        f"{q['reshot_photos']} reshot (k={k})",
        f"  1280-d precision@{k}: {ref['judged']['precision_at_k']} "
        f"(strict {ref['judged']['precision_at_k_strict']}, "
        f"random {ref['judged']['random_ranking_precision_at_k']}); reshot {ref['reshot']['precision_at_k']}",
        f"  {'method':<8}{'dims':>5}{'bytes':>7}{'recall':>8}{'cos loss':>9}{'prec':>7}{'strict':>8}"
        f"{'reshot rec':>11}{'reshot prec':>12}",
    ]
    for r in q["projections"]:
        lines.append(
            f"  {r['method']:<8}{r['dims']:>5}{r['bytes_per_vector']:>7}{r['recall_at_k']:>8}"
            f"{r['cosine_loss_mean']:>9}{r['precision_at_k']:>7}{r['precision_at_k_strict']:>8}{r['reshot']['recall_at_k']:>11}"
            f"{r['reshot']['precision_at_k']:>12}"
        )
    lines.append(f"  candidate: {report['candidate']} ({report['candidate_rule']})")
    db = report["database"]
    for name, v in db.get("variants", {}).items():
        lines.append(
            f"  100k {name:<8} table {v['table_mb']} MB, HNSW {v['hnsw_mb']} MB "
            f"(built in {v['hnsw_build_seconds']} s), exact 2% p50 {v['exact_filtered_ms']['2%']['p50']} ms, "
            f"10% p50 {v['exact_filtered_ms']['10%']['p50']} ms, HNSW p50 {v['hnsw_ms']['p50']} ms"
        )
    for dims, estimate in db.get("product_images_estimate", {}).items():
        lines.append(f"  product_images at {dims}-d (estimate): {estimate['table_mb']} MB")
    lines.append(
        f"  load average start {report['load_average']['start']}, end {report['load_average']['end']}"
    )
    if "skipped" in db:
        lines.append(f"  100k rows: skipped ({db['skipped']})")
    return "\n".join(lines)


def write(report: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n"
    path = RESULTS_DIR / f"embedding_dimension-{stamp}.json"
    path.write_text(text)
    (RESULTS_DIR / "embedding_dimension-latest.json").write_text(text)
    return path


def main(argv: list[str] | None = None) -> None:
    report = run(_parse(argv))
    path = write(report)
    print(summary(report))
    print(f"  written to {path}")


if __name__ == "__main__":
    main()
