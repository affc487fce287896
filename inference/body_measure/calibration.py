"""Raw features to measurements: the shipped calibration, its linear models and the body-shape
embedding."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

from inference.manifest import MODELS_DIR

MEASUREMENT_KEYS: Final[tuple[str, ...]] = (
    "ankle_cm", "arm_length_cm", "bicep_cm", "calf_cm", "chest_cm", "forearm_cm", "height_cm", "hip_cm",
    "leg_length_cm", "shoulder_breadth_cm", "shoulder_to_crotch_cm", "thigh_cm", "waist_cm", "wrist_cm",
)  # fmt: skip
# front widths and side depths sampled at this many torso/leg levels (the embedding's profile)
PROFILE_LEVELS: Final = 9
BODY_EMBEDDING_DIM: Final = len(MEASUREMENT_KEYS) + 2 * PROFILE_LEVELS
CALIBRATION_PATH: Final = MODELS_DIR / "body_calibration" / "calibration.json"


@dataclass(frozen=True)
class Calibration:
    """Raw features → measurements: one linear model per measurement, fitted on rendered bodies."""

    version: str
    scale: dict[str, dict[str, list[float]]]  # per view: floor and stature, linear in (1, heel, ankle ratio)
    models: dict[str, dict[str, Any]]  # key -> {"features": [...], "coefficients": [...], "p90": x, ...}
    population: dict[str, list[float]]  # embedding feature -> [mean, sd]
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path = CALIBRATION_PATH) -> Calibration:
        data = json.loads(path.read_text())
        return cls(
            version=data["version"], scale=data["scale"], models=data["models"],
            population=data["population"], raw=data,
        )  # fmt: skip

    @classmethod
    def identity(cls) -> Calibration:
        """No correction: raw features as they are (used while fitting a calibration)."""
        return cls(version="uncalibrated", scale={}, models={}, population={})


@dataclass(frozen=True)
class Calibrated:
    values: dict[str, float]  # cm
    confidence: dict[str, float]  # 0..1
    intervals: dict[str, tuple[float, float]]  # cm (low, high) where the calibration states one
    band: int  # the body band (``band_index``) the band corrections and intervals were read for


def apply_calibration(features: dict[str, float], cal: Calibration) -> Calibrated:
    """Measurements, their confidences and intervals.

    Each linear model's value is corrected by the bands' offsets when the calibration states them,
    joined linearly between the bands' centres (``band_offset``; the ratio from the uncorrected
    waist and height, as the offsets were fitted). A
    confidence falls with the measurement's typical error relative to its size: the half-width of
    its interval for the body's band when the calibration states intervals (so a measurement with
    a wide interval is less certain), else the held-out 90th percentile error; and it drops when a
    feature is outside the range seen in training."""
    values: dict[str, float] = {"height_cm": features["height"]}
    confidence: dict[str, float] = {"height_cm": 1.0}
    for key, spec in cal.models.items():
        x = np.array([1.0] + [features[name] for name in spec["features"]])
        values[key] = float(x @ np.array(spec["coefficients"]))
    ratio = values["waist_cm"] / max(values["height_cm"], 1.0) if "waist_cm" in values else 0.0
    band = band_index(values["waist_cm"], values["height_cm"]) if "waist_cm" in values else 0
    for key, spec in cal.models.items():
        offsets = spec.get("band_offsets")
        values[key] = round(values[key] + (band_offset(offsets, ratio) if offsets else 0.0), 1)
    stated = intervals(values, cal, band)
    spread = {key: (high - low) / 2 for key, (low, high) in stated.items()}
    for key, spec in cal.models.items():
        inside = all(
            lo <= features[name] <= hi
            for name, (lo, hi) in zip(spec["features"], spec["ranges"], strict=True)
        )
        relative = spread.get(key, spec["p90"]) / max(abs(values[key]), 1.0)
        confidence[key] = round(float(np.clip(1 - 4 * relative, 0.05, 0.99) * (1.0 if inside else 0.6)), 2)
    return Calibrated(values, confidence, stated, band)


# Body bands by waist-to-height ratio: the band corrections and intervals are fitted per band
# (training.body.population draws its held-out sets by the same bands).
BAND_EDGES: Final = (0.48, 0.55, 0.62, 0.70)


# Where each band's offset applies in full (about the middle of its bodies' ratios): between two
# centres the offset moves linearly, so a body near a band edge is not moved by a step when a photo
# puts it on the other side.
BAND_CENTRES: Final = (0.44, 0.515, 0.585, 0.66, 0.75)


def band_offset(offsets: list[float], ratio: float) -> float:
    """The offset for a waist-to-height ``ratio``: the bands' offsets joined linearly between
    their centres, flat beyond the outer ones."""
    return float(np.interp(ratio, BAND_CENTRES[: len(offsets)], offsets))


def band_index(waist_cm: float, height_cm: float) -> int:
    """0 (waist-to-height ratio under 0.48) to 4 (0.70 and over)."""
    ratio = waist_cm / max(height_cm, 1.0)
    return sum(ratio >= edge for edge in BAND_EDGES)


def intervals(values: dict[str, float], cal: Calibration, band: int) -> dict[str, tuple[float, float]]:
    """Each measurement's interval at the calibration's ``interval_level``: the measured value plus
    the held-out residual quantiles of the body's ``band``, for the measurements whose model states
    them; empty for a calibration without intervals."""
    out: dict[str, tuple[float, float]] = {}
    for key, spec in cal.models.items():
        per_band = spec.get("intervals")
        if per_band:
            low, high = per_band[min(band, len(per_band) - 1)]
            out[key] = (round(values[key] + low, 1), round(values[key] + high, 1))
    return out


def embedding(values: dict[str, float], features: dict[str, float], cal: Calibration) -> np.ndarray:
    """Standardised measurements and width/depth profile: similar bodies are close in Euclidean
    distance (each component is a z-score, divided by sqrt(dim) so typical norms are about 1)."""
    names = [*MEASUREMENT_KEYS, *(f"profile_w{i}" for i in range(PROFILE_LEVELS)),
             *(f"profile_d{i}" for i in range(PROFILE_LEVELS))]  # fmt: skip
    source = {**features, **values}
    vector = []
    for name in names:
        mean, sd = cal.population.get(name, [0.0, 1.0])
        vector.append((source[name] - mean) / (sd or 1.0))
    out = np.clip(np.array(vector, dtype=np.float32), -6, 6) / math.sqrt(len(names))
    return out.astype(np.float32)
