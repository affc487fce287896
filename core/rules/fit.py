"""Size advice: how well each size of a size chart fits a body, and which one to recommend.

Pure functions over plain values (measurements in cm, confidences in 0..1, chart ranges as
``[min, max]`` cm); the services feed them rows from the database.

**Per measurement** the chart covers, the body's value ``v`` is compared with the size's range
``[lo, hi]`` (both ends inclusive):

* ``good`` inside the range, ``delta_cm`` 0;
* ``tight`` when ``v > hi`` (the body is bigger than the garment), ``delta_cm = v - hi`` > 0;
* ``loose`` when ``v < lo``, ``delta_cm = v - lo`` < 0.

Its score is 1 inside and falls off as a Gaussian of the distance outside,
``exp(-(delta / tolerance)²)``. The tolerance is about half a size step of that measurement
(``TOLERANCE_CM``, 3 cm for chest), and is 1.3x wider on the loose side: a garment a little
too big is wearable, one a little too small is not. One size step too tight scores ≈ 0.06.

**Per size** the measurement scores are combined as a weighted *geometric* mean, so one
measurement that does not fit sinks the size however well the others fit. A measurement's
weight is how much it matters for the garment (``IMPORTANCE``: chest and waist for tops, waist,
hip and inside leg for bottoms, chest, waist and hip for dresses; any other measurement a
chart lists counts a little) times the body measurement's confidence. Measurements whose
confidence is below ``MIN_CONFIDENCE`` are reported but left out of the score, and one below
``SURE_CONFIDENCE`` (a wide interval) never changes the recommendation on its own: when leaving
it out alone would recommend another size (or one where there was none), the sizes are scored
without it.

**Recommendation**: the size with the best score (ties: the size whose range centres are
closest to the body), provided it reaches ``FITS`` (0.6); otherwise ``recommended_size`` is
None and ``reason`` says why (the closest size and what is wrong with it, or that the chart
and the body have no reliable measurement in common).

**Shoppers like me**: the sizes that shoppers with the nearest body shapes (the same or a
neighbouring cell of ``core.rules.shape_cells``) kept (paid for and did not return) of the same
product, or failing that of the same brand in the same category.
They are shown only as an aggregate of at least ``SIMILAR_SHOPPERS_MIN`` shoppers (privacy: no
one's purchase can be singled out). They move the recommendation only when a clear majority
(``SHOPPERS_MAJORITY``) kept one size *and* the chart still rates that size at least
``SHOPPERS_MIN_FIT``: the crowd corrects a chart that runs small or large, it never recommends a
size the body is far from.

**Fit vectors** (for "products that fit me"): a size-chart row and a body profile are mapped
to vectors whose inner product is the weighted squared distance from the body to the centre
of each range, in tolerance units, over the measurements the row covers:

    body  q = [c_k·u_k, c_k·u_k², c_k]            (u = value / tolerance, c = confidence)
    row   r = -[-2·w_k·m_k, w_k, w_k·m_k²] / Σw   (m = range centre / tolerance, w = importance,
                                                   0 where the chart has no range)

so ``q · (-r) = Σ c_k·w_k·(u_k - m_k)² / Σw``. pgvector's ``<#>`` (negative inner product)
then orders rows by that distance, ascending, through an HNSW index; candidates are
re-ranked by the exact score above.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from core.rules.measurements import MEASUREMENT_KEYS

FitStatus = Literal["tight", "good", "loose"]

# A size fits when its score reaches this.
FITS: Final = 0.6
# Shoppers like me: the fewest similar shoppers an aggregate may describe, the share of them
# that must have kept one size to move the recommendation, and the least chart score that size
# must still have.
SIMILAR_SHOPPERS_MIN: Final = 5
SHOPPERS_MAJORITY: Final = 0.6
SHOPPERS_MIN_FIT: Final = 0.35
# Body measurements less certain than this are shown but do not count.
MIN_CONFIDENCE: Final = 0.2
# Body measurements less certain than this (their interval is wide: the confidence falls with the
# interval's half-width relative to the value, 0.6 at about a tenth) count, but never change the
# recommendation on their own.
SURE_CONFIDENCE: Final = 0.6
# The loose side forgives this much more than the tight side.
LOOSE_SLACK: Final = 1.3
# Smallest per-measurement score, so the geometric mean stays finite.
_FLOOR: Final = 1e-6

# About half a size step of each measurement in common size tables, in cm.
TOLERANCE_CM: Final[dict[str, float]] = {
    "ankle_cm": 1.5,
    "arm_length_cm": 2.0,
    "bicep_cm": 2.0,
    "calf_cm": 2.0,
    "chest_cm": 3.0,
    "forearm_cm": 1.5,
    "height_cm": 4.0,
    "hip_cm": 3.0,
    "leg_length_cm": 2.5,
    "shoulder_breadth_cm": 1.5,
    "shoulder_to_crotch_cm": 2.5,
    "thigh_cm": 2.5,
    "waist_cm": 3.0,
    "wrist_cm": 1.0,
}
# How much a measurement matters for a kind of garment; others a chart lists weigh OTHER.
IMPORTANCE: Final[dict[str, dict[str, float]]] = {
    "tops": {"chest_cm": 1.0, "waist_cm": 0.8, "shoulder_breadth_cm": 0.5, "arm_length_cm": 0.4},
    "outerwear": {"chest_cm": 1.0, "waist_cm": 0.6, "shoulder_breadth_cm": 0.6, "arm_length_cm": 0.5},
    "bottoms": {"waist_cm": 1.0, "hip_cm": 1.0, "leg_length_cm": 0.8, "thigh_cm": 0.4},
    "dresses": {"chest_cm": 1.0, "waist_cm": 1.0, "hip_cm": 1.0, "shoulder_to_crotch_cm": 0.3},
}
OTHER: Final = 0.25
# Fit vector layout: for each measurement key, value, square, and constant terms.
FIT_KEYS: Final = MEASUREMENT_KEYS
FIT_VECTOR_DIMENSIONS: Final = 3 * len(FIT_KEYS)

Ranges = Mapping[str, Sequence[float]]


@dataclass(frozen=True)
class FitNote:
    measurement: str
    status: FitStatus
    delta_cm: float
    # The body measurement's confidence; below MIN_CONFIDENCE the note did not count.
    confidence: float
    counted: bool


@dataclass(frozen=True)
class SizeFit:
    size: str
    fit_score: float
    notes: list[FitNote]
    # Weighted distance from the body to the centre of the size's ranges (ties, re-ranking).
    centre_distance: float


@dataclass(frozen=True)
class SimilarShoppers:
    """What shoppers with a body like the caller's kept: ``count`` shoppers, and the share of
    kept items per size (shares sum to 1)."""

    count: int
    size_distribution: dict[str, float]
    # "product": they bought this product; "brand": products of its brand in its category.
    scope: Literal["product", "brand"]


@dataclass(frozen=True)
class FitAdvice:
    recommended_size: str | None
    reason: str | None
    sizes: list[SizeFit]
    # What the recommendation rests on: the size chart, or similar shoppers' choices.
    basis: Literal["size_chart", "similar_shoppers"] = "size_chart"
    similar_shoppers: SimilarShoppers | None = None


def importance(garment: str | None, key: str) -> float:
    """How much ``key`` matters for a garment kind (1 for every key when the kind is unknown)."""
    table = IMPORTANCE.get(garment or "")
    if table is None:
        return 1.0
    return table.get(key, OTHER)


def measurement_fit(value: float, low: float, high: float, key: str) -> tuple[FitStatus, float, float]:
    """``(status, delta_cm, score)`` of one body measurement against one range."""
    if value > high:
        delta = value - high
        return "tight", delta, math.exp(-((delta / TOLERANCE_CM[key]) ** 2))
    if value < low:
        delta = value - low
        return "loose", delta, math.exp(-((delta / (LOOSE_SLACK * TOLERANCE_CM[key])) ** 2))
    return "good", 0.0, 1.0


def score_size(
    size: str,
    ranges: Ranges,
    body: Mapping[str, float],
    confidence: Mapping[str, float],
    garment: str | None,
    *,
    use_uncertain: bool = False,
) -> SizeFit:
    """How well one size fits: notes for every measurement both the chart and the body have,
    and the confidence- and importance-weighted geometric mean of their scores (0 when no
    measurement counts). ``use_uncertain`` counts low-confidence measurements too."""
    notes: list[FitNote] = []
    log_sum = weight_sum = distance = 0.0
    for key in FIT_KEYS:
        if key not in ranges or key not in body:
            continue
        low, high = float(ranges[key][0]), float(ranges[key][1])
        value = float(body[key])
        conf = float(confidence.get(key, 1.0))
        status, delta, score = measurement_fit(value, low, high, key)
        counted = conf >= MIN_CONFIDENCE or use_uncertain
        notes.append(FitNote(key, status, round(delta, 1), round(conf, 2), counted))
        if not counted:
            continue
        weight = importance(garment, key) * max(conf, 0.05)
        log_sum += weight * math.log(max(score, _FLOOR))
        weight_sum += weight
        distance += weight * ((value - (low + high) / 2) / TOLERANCE_CM[key]) ** 2
    if weight_sum == 0:
        return SizeFit(size, 0.0, notes, math.inf)
    return SizeFit(size, round(math.exp(log_sum / weight_sum), 4), notes, distance / weight_sum)


def advise(
    chart: Sequence[tuple[str, Ranges]],
    body: Mapping[str, float],
    confidence: Mapping[str, float],
    garment: str | None,
) -> FitAdvice:
    """Every size of the chart scored, in chart order, and the recommendation (or why none)."""
    sizes = [score_size(size, ranges, body, confidence, garment) for size, ranges in chart]
    if not any(note.counted for fit in sizes for note in fit.notes):
        if not any(fit.notes for fit in sizes):
            reason = "The size chart lists none of the measurements in your body profile."
            return FitAdvice(None, reason, sizes)
        # Only uncertain measurements in common: show their scores, recommend nothing.
        sizes = [
            score_size(size, ranges, body, confidence, garment, use_uncertain=True) for size, ranges in chart
        ]
        return FitAdvice(
            None,
            "Your body profile is not certain enough about the measurements this size chart uses; "
            "take new photos to get a recommendation.",
            sizes,
        )
    best = min(sizes, key=lambda fit: (-fit.fit_score, fit.centre_distance))
    recommended = best.size if best.fit_score >= FITS else None
    # An uncertain measurement (a wide interval) never changes the recommendation on its own: when
    # leaving out one of them alone gives another recommendation, the sizes are scored without it.
    notes = [note for fit in sizes for note in fit.notes if note.counted]
    uncertain = sorted({note.measurement for note in notes if note.confidence < SURE_CONFIDENCE})
    flipping = [key for key in uncertain if _recommend(chart, body, confidence, garment, key) != recommended]
    if flipping:
        rest = {k: v for k, v in body.items() if k not in flipping}
        if any(note.counted for fit in _scores(chart, rest, confidence, garment) for note in fit.notes):
            kept = advise(chart, rest, confidence, garment)
            return FitAdvice(kept.recommended_size, kept.reason, sizes)
    if recommended is not None:
        return FitAdvice(recommended, None, sizes)
    return FitAdvice(None, _why_nothing_fits(best), sizes)


def _scores(
    chart: Sequence[tuple[str, Ranges]], body: Mapping[str, float], confidence: Mapping[str, float],
    garment: str | None,
) -> list[SizeFit]:  # fmt: skip
    return [score_size(size, ranges, body, confidence, garment) for size, ranges in chart]


def _recommend(
    chart: Sequence[tuple[str, Ranges]], body: Mapping[str, float], confidence: Mapping[str, float],
    garment: str | None, leave_out: str,
) -> str | None:  # fmt: skip
    """The size recommended from the chart alone without the measurement ``leave_out``."""
    sizes = _scores(chart, {k: v for k, v in body.items() if k != leave_out}, confidence, garment)
    if not any(note.counted for fit in sizes for note in fit.notes):
        return None
    best = min(sizes, key=lambda fit: (-fit.fit_score, fit.centre_distance))
    return best.size if best.fit_score >= FITS else None


def summarise_shoppers(
    kept: Sequence[tuple[str, str]], scope: Literal["product", "brand"]
) -> SimilarShoppers | None:
    """Aggregate ``(shopper, size)`` pairs of kept items; None below ``SIMILAR_SHOPPERS_MIN``
    distinct shoppers (too few to show without exposing individual purchases)."""
    counts: dict[str, int] = {}
    for _, size in set(kept):
        counts[size] = counts.get(size, 0) + 1
    return summarise_counts(len({shopper for shopper, _ in kept}), counts, scope)


def summarise_counts(
    shoppers: int, kept_by_size: Mapping[str, int], scope: Literal["product", "brand"]
) -> SimilarShoppers | None:
    """The aggregate of ``shoppers`` distinct shoppers, ``kept_by_size`` of whom kept each size
    (a shopper who kept two sizes counts in both); None below ``SIMILAR_SHOPPERS_MIN``."""
    counts = {size: n for size, n in kept_by_size.items() if n > 0}
    total = sum(counts.values())
    if shoppers < SIMILAR_SHOPPERS_MIN or total == 0:
        return None
    distribution = {size: round(n / total, 3) for size, n in sorted(counts.items(), key=lambda kv: -kv[1])}
    return SimilarShoppers(count=shoppers, size_distribution=distribution, scope=scope)


def with_shoppers(advice: FitAdvice, shoppers: SimilarShoppers | None) -> FitAdvice:
    """``advice`` with the similar shoppers attached, and its recommendation moved to the size a
    clear majority of them kept when the chart still rates that size ``SHOPPERS_MIN_FIT``."""
    if shoppers is None:
        return advice
    kept = FitAdvice(advice.recommended_size, advice.reason, advice.sizes, advice.basis, shoppers)
    size, share = max(shoppers.size_distribution.items(), key=lambda kv: kv[1])
    if share < SHOPPERS_MAJORITY or size == advice.recommended_size:
        return kept
    fit = next((s for s in advice.sizes if s.size == size), None)
    if fit is None or fit.fit_score < SHOPPERS_MIN_FIT:
        return kept
    return FitAdvice(size, None, advice.sizes, "similar_shoppers", shoppers)


def _why_nothing_fits(closest: SizeFit) -> str:
    off = [note for note in closest.notes if note.counted and note.status != "good"]
    worst = max(off, key=lambda note: abs(note.delta_cm) / TOLERANCE_CM[note.measurement])
    label = worst.measurement.removesuffix("_cm").replace("_", " ")
    side = "larger" if worst.status == "tight" else "smaller"
    return (
        f"No size fits well enough. The closest is {closest.size}, which is {worst.status} on {label}: "
        f"you measure {abs(worst.delta_cm):.1f} cm {side} than its range."
    )


def fit_query_vector(body: Mapping[str, float], confidence: Mapping[str, float]) -> list[float]:
    """A body profile as the query side of the fit-vector inner product (see the module doc)."""
    linear, square, constant = [], [], []
    for key in FIT_KEYS:
        conf = float(confidence.get(key, 1.0))
        # As in score_size: uncertain or missing measurements do not count.
        weight = conf if key in body and conf >= MIN_CONFIDENCE else 0.0
        u = float(body.get(key, 0.0)) / TOLERANCE_CM[key]
        linear.append(weight * u)
        square.append(weight * u * u)
        constant.append(weight)
    return linear + square + constant


def fit_row_vector(ranges: Ranges, garment: str | None) -> list[float]:
    """A size-chart row as the stored side of the fit-vector inner product (negated, so that
    pgvector's ``<#>`` is the distance itself)."""
    weights = {key: importance(garment, key) for key in FIT_KEYS if key in ranges}
    total = sum(weights.values())
    linear, square, constant = [], [], []
    for key in FIT_KEYS:
        weight = weights.get(key, 0.0) / total if total else 0.0
        centre = (float(ranges[key][0]) + float(ranges[key][1])) / 2 / TOLERANCE_CM[key] if weight else 0.0
        linear.append(2 * weight * centre)  # -(-2·w·m)
        square.append(-weight)
        constant.append(-weight * centre * centre)
    return linear + square + constant


def fit_profile_key(ranges: Ranges, garment: str | None) -> str:
    """Identity of a size-chart row in fit space: rows with equal ranges (to 0.1 cm) and garment
    kind share one fit profile."""
    canonical = {key: [round(float(v), 1) for v in ranges[key]] for key in sorted(ranges)}
    text = json.dumps([garment or "", canonical], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
