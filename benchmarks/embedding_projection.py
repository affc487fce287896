"""Linear projections of product image embeddings and the measures that compare them.

Pure numpy, no database: fitting a projection on one set of unit vectors, applying it to
others, exact cosine kNN within a pool, recall of one kNN against another and precision@k
under "more like this"'s relevance rule.

Three projections, all to ``dims`` dimensions and renormalised to unit length afterwards:

* ``pca``: centred PCA, ``(x - mean) @ components.T`` (the top principal axes of the fit set).
  Removing the mean changes the geometry: the ranking then follows the cosine of the centred
  vectors, not of the stored ones (EfficientNet's pooled features are all non-negative, so they
  share a large common direction).
* ``svd``: uncentred, ``x @ components.T`` with the top right singular vectors of the fit
  matrix itself: the rank-``dims`` map that keeps inner products of the fit vectors best in the
  least-squares sense, i.e. the one aimed squarely at reproducing the 1280-d cosine ranking.
* ``random``: a random orthonormal basis (QR of a Gaussian matrix), the data-blind baseline
  (Johnson-Lindenstrauss).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from benchmarks.search_quality.precision import COLOUR_FAMILY

Method = Literal["pca", "svd", "random"]
METHODS: tuple[Method, ...] = ("pca", "svd", "random")


@dataclass(frozen=True)
class Projection:
    method: Method
    # (dims, input dimensions), orthonormal rows.
    components: np.ndarray
    # Subtracted before projecting (pca only).
    mean: np.ndarray | None
    # Share of the fit set's energy (svd, random: sum of squares; pca: variance) the rows keep.
    kept_of_fit: float

    @property
    def dims(self) -> int:
        return int(self.components.shape[0])

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        """(n, input dimensions) -> (n, dims) unit vectors."""
        centred = vectors if self.mean is None else vectors - self.mean
        projected = centred.astype(np.float64) @ self.components.T.astype(np.float64)
        return unit(projected)

    def kept(self, vectors: np.ndarray) -> float:
        """Share of ``vectors``' energy (after centring, for pca) the projection keeps."""
        centred = (vectors if self.mean is None else vectors - self.mean).astype(np.float64)
        total = float(np.sum(centred**2))
        return float(np.sum((centred @ self.components.T.astype(np.float64)) ** 2)) / total if total else 0.0


def unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    result: np.ndarray = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
    return result


def fit(method: Method, fit_set: np.ndarray, dims: int, *, seed: int = 0) -> Projection:
    """A ``method`` projection to ``dims`` dimensions fitted on ``fit_set`` (n, d).

    Raises:
        ValueError: ``dims`` is not below the input's dimensions, or a fitted projection asks for
            more dimensions than the fit set has rows.
    """
    n, d = fit_set.shape
    if not 0 < dims < d:
        raise ValueError(f"dims must be between 1 and {d - 1}, not {dims}")
    matrix = fit_set.astype(np.float64)
    if method == "random":
        q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, dims)))
        components = q.T
        mean = None
        total = float(np.sum(matrix**2))
        kept = float(np.sum((matrix @ q) ** 2)) / total if total else 0.0
        return Projection(method, components.astype(np.float32), mean, kept)
    if dims > n:
        raise ValueError(f"cannot fit {dims} {method} components on {n} vectors")
    mean_vector = matrix.mean(axis=0) if method == "pca" else None
    centred = matrix - mean_vector if mean_vector is not None else matrix
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    energy = singular**2
    kept = float(energy[:dims].sum() / energy.sum()) if energy.sum() else 0.0
    return Projection(
        method,
        vt[:dims].astype(np.float32),
        None if mean_vector is None else mean_vector.astype(np.float32),
        kept,
    )


def top_k(pool: np.ndarray, k: int, queries: np.ndarray | None = None) -> np.ndarray:
    """Indices (len(queries), k) of each query's k most cosine-similar unit vectors of ``pool``,
    best first. Without ``queries`` every pool vector is a query and never its own neighbour."""
    similarity = (pool if queries is None else queries) @ pool.T
    if queries is None:
        np.fill_diagonal(similarity, -np.inf)
    part = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(similarity, part, axis=1), axis=1, kind="stable")
    result: np.ndarray = np.take_along_axis(part, order, axis=1)
    return result


def recall(truth: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Per query: the share of ``truth``'s k ids that ``found`` also returned (both (n, k))."""
    k = truth.shape[1]
    hits = (found[:, :, None] == truth[:, None, :]).any(axis=2).sum(axis=1)
    result: np.ndarray = hits / k
    return result


@dataclass(frozen=True)
class Looks:
    """What a photo shows, per photo: garment kind, colour and pattern (the generator's labels)."""

    garment: np.ndarray  # str
    colour: np.ndarray  # str
    pattern: np.ndarray  # str

    def subset(self, index: np.ndarray) -> Looks:
        return Looks(self.garment[index], self.colour[index], self.pattern[index])

    def relevance(self, *, strict: bool = False) -> np.ndarray:
        """(n, n) bool: the relevance rule of ``search_quality.precision.relevant`` for every pair
        (same garment kind and the same colour family or, strict, and the same pattern)."""
        family = np.array([COLOUR_FAMILY.get(c, c) for c in self.colour])
        garment = self.garment[:, None] == self.garment[None, :]
        colour = family[:, None] == family[None, :]
        pattern = self.pattern[:, None] == self.pattern[None, :]
        result: np.ndarray = garment & (colour & pattern if strict else colour | pattern)
        return result


def precision(relevance: np.ndarray, neighbours: np.ndarray) -> float:
    """Mean precision@k of the neighbour lists (n, k) under a (n, n) relevance matrix."""
    hits = np.take_along_axis(relevance, neighbours, axis=1)
    return float(hits.mean())


def random_precision(relevance: np.ndarray) -> float:
    """Expected precision@k of a uniformly random ranking of the other pool members (any k)."""
    n = len(relevance)
    others = relevance.sum(axis=1) - np.diagonal(relevance)
    return float(np.mean(others / (n - 1)))


def pgvector_bytes(dims: int) -> int:
    """Bytes of one stored ``vector(dims)``: a 4-byte varlena header, int16 dims, int16 unused,
    then float4s."""
    return 8 + 4 * dims
