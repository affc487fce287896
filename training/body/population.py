"""Shoppers, not soldiers: adult bodies drawn like the general adult population, and body bands.

``sample_body`` (``anthropometry``) follows ANSUR II, a survey of US Army personnel: few people
in it have a BMI over 35 or a waist larger than the chest. ``sample_shopper`` widens it to the
general adult population. It draws stature and BMI for the person's sex from approximate
published summaries of national health surveys, places chest, waist and hip girths from BMI and
stature, adds a body-shape factor (apple: the weight carried at the waist; pear: at the hips and
thighs) and a shoulder-breadth factor, then rescales an ANSUR II body's lengths and limb girths to
match. Figures used (approximate; rounded):

- Stature, US adults 20+ (NHANES 2015-2018, Fryar et al. 2021, National Health Statistics Reports
  no. 160): men mean about 175 cm, women about 162 cm; standard deviation about 7 cm.
- BMI, same source: mean about 29.5 kg/m² for both sexes, standard deviation about 6.5; about 40 %
  of adults have a BMI of 30 or more and close to 10 % of 40 or more (Hales et al. 2020, NCHS Data
  Brief no. 360). Drawn log-normal, clipped to 16.5-55.
- Waist circumference, same NHANES summary: mean about 102 cm for men and 97 cm for women, that is
  a waist-to-height ratio near 0.58-0.60 on average; the girth-BMI slopes below reproduce those
  means at the mean BMI and a waist of 125-135 cm at a BMI of 45.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Final

import numpy as np

from inference.body_measure.calibration import BAND_EDGES, band_index
from training.body.anthropometry import Body, sample_body

# sex -> (stature mean, sd), (log BMI mean, log BMI sd)
_STATURE: Final = {"male": (175.4, 7.4), "female": (161.7, 7.0)}
_LOG_BMI: Final = {"male": (math.log(28.9), 0.21), "female": (math.log(28.7), 0.24)}
# girth = a + b * BMI (+ a small stature term), per sex: chest, waist (as a fraction of stature), hip
_CHEST: Final = {"male": (52.0, 1.75), "female": (48.0, 1.65)}
_WHTR: Final = {"male": (0.235, 0.0118), "female": (0.215, 0.0127)}
_HIP: Final = {"male": (52.0, 1.75), "female": (47.0, 2.05)}

# Body bands by waist-to-height ratio (a standard screening measure of central adiposity).
BANDS: Final[tuple[tuple[str, float, float], ...]] = tuple(
    (
        f"whtr<{hi:.2f}" if lo == 0 else f"whtr>={lo:.2f}" if hi > 1 else f"whtr {lo:.2f}-{hi:.2f}",
        lo,
        hi,
    )
    for lo, hi in zip((0.0, *BAND_EDGES), (*BAND_EDGES, 9.0), strict=True)
)


def band_of(body: Body) -> str:
    return BANDS[band_index(body.measurements["waist_cm"], body.measurements["height_cm"])][0]


def is_round_large(body: Body) -> bool:
    """The bodies the old profile check refused: chest 105-125 cm, waist at least 0.9 x chest."""
    m = body.measurements
    return 105 <= m["chest_cm"] <= 125 and m["waist_cm"] >= 0.9 * m["chest_cm"]


def sample_shopper(rng: np.random.Generator, sex: str | None = None) -> Body:
    """A random adult of the general population (see the module docstring)."""
    sex = sex or ("male" if rng.random() < 0.5 else "female")
    base = sample_body(rng, sex)
    mean, sd = _STATURE[sex]
    height = mean + sd * float(np.clip(rng.standard_normal(), -2.8, 2.8))
    mu, sigma = _LOG_BMI[sex]
    bmi = float(np.clip(math.exp(mu + sigma * rng.standard_normal()), 16.5, 55.0))
    shape = float(np.clip(rng.standard_normal(), -2.2, 2.2))  # > 0: apple, < 0: pear
    # above a BMI of about 27 the weight goes increasingly to the waist
    excess = max(0.0, bmi - 27.0)
    chest = _CHEST[sex][0] + _CHEST[sex][1] * bmi + rng.normal(0, 3.0) + 1.2 * shape
    waist = (
        height * (_WHTR[sex][0] + _WHTR[sex][1] * bmi) + rng.normal(0, 3.0) + (2.0 + 0.25 * excess) * shape
    )
    hip = _HIP[sex][0] + _HIP[sex][1] * bmi + rng.normal(0, 3.0) - (1.8 + 0.15 * excess) * shape
    waist = float(np.clip(waist, 0.36 * height, 0.95 * height))
    hip = max(hip, 0.78 * waist, 75.0)
    chest = max(chest, 0.72 * waist, 72.0)
    m = dict(base.measurements)
    length_scale = height / m["height_cm"]
    chest_scale, hip_scale = chest / m["chest_cm"], hip / m["hip_cm"]
    values = {
        **{k: m[k] * length_scale for k in ("arm_length_cm", "leg_length_cm", "shoulder_to_crotch_cm")},
        "height_cm": height,
        "chest_cm": chest,
        "waist_cm": waist,
        "hip_cm": hip,
        # wide and narrow shoulders: a factor of its own on top of size
        "shoulder_breadth_cm": m["shoulder_breadth_cm"]
        * length_scale**0.6
        * chest_scale**0.25
        * float(np.clip(rng.normal(1.0, 0.035), 0.9, 1.1)),
        "bicep_cm": m["bicep_cm"] * chest_scale**0.9,
        "forearm_cm": m["forearm_cm"] * chest_scale**0.6,
        "wrist_cm": m["wrist_cm"] * chest_scale**0.3,
        "thigh_cm": m["thigh_cm"] * hip_scale ** (1.0 - 0.1 * shape),
        "calf_cm": m["calf_cm"] * hip_scale**0.6,
        "ankle_cm": m["ankle_cm"] * hip_scale**0.3,
    }
    _limbs_taper(values)
    round_waist = waist / chest
    return replace(
        base,
        measurements={name: round(value, 2) for name, value in sorted(values.items())},
        # a large waist is rounder (deeper for its width) and carried forward
        waist_depth_ratio=float(np.clip(0.72 + 0.35 * (round_waist - 0.85) + rng.normal(0, 0.03), 0.62, 1.0)),
        chest_depth_ratio=float(np.clip(base.chest_depth_ratio + 0.004 * (chest - 100), 0.6, 0.92)),
        belly=float(np.clip(0.15 * (waist - 85) + rng.normal(0, 1.0), -1.0, 6.0)),
        neck_cm=float(chest * 0.36 + rng.normal(0, 1.0)),
        head_height_cm=float(height * 0.13 + rng.normal(0, 0.6)),
    )


def _limbs_taper(values: dict[str, float]) -> None:
    values["thigh_cm"] = min(values["thigh_cm"], values["hip_cm"] * 0.68)
    values["calf_cm"] = min(values["calf_cm"], values["thigh_cm"] - 8.0)
    values["ankle_cm"] = min(values["ankle_cm"], values["calf_cm"] - 9.0)
    values["forearm_cm"] = min(values["forearm_cm"], values["bicep_cm"] - 1.0)
    values["wrist_cm"] = min(values["wrist_cm"], values["forearm_cm"] - 6.0)


def stratified(seed: int, per_band: int, stream: int = 7) -> list[tuple[int, str]]:
    """The first ``per_band`` shoppers of each band in the seed's held-out stream: (index, band).
    Body ``index`` is ``sample_shopper(np.random.default_rng([seed, stream, index]))``."""
    counts = dict.fromkeys((name for name, _, _ in BANDS), 0)
    chosen: list[tuple[int, str]] = []
    index = 0
    while min(counts.values()) < per_band and index < 200_000:
        band = band_of(sample_shopper(np.random.default_rng([seed, stream, index])))
        if counts[band] < per_band:
            counts[band] += 1
            chosen.append((index, band))
        index += 1
    return chosen
