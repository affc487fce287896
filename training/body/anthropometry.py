"""Adult bodies with realistic measurements: the 14 BodyM measurements plus the shape details a
renderer needs, drawn from published anthropometric distributions.

Marginal means and standard deviations follow the ANSUR II survey summary statistics (US Army,
2012; Gordon et al. 2014) for men and women, rounded to the centimetre and converted to the
BodyM definitions used here. Correlations follow the structure of the published correlation
matrices: lengths correlate strongly with stature (r ≈ 0.8-0.9), girths strongly with each other
(r ≈ 0.7-0.9) and weakly with stature (r ≈ 0.2-0.4). That structure is reproduced with two shared
factors (a length factor and a girth factor, the girth factor split into upper and lower body) plus
independent variation per measurement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Final

import numpy as np

# name -> (mean, sd) in cm; (men, women).
_MEN: Final[dict[str, tuple[float, float]]] = {
    "height_cm": (175.6, 6.9),
    "chest_cm": (104.0, 8.5),
    "waist_cm": (92.0, 10.5),
    "hip_cm": (101.5, 7.2),
    "shoulder_breadth_cm": (40.5, 1.9),
    "thigh_cm": (60.0, 5.3),
    "calf_cm": (38.6, 2.8),
    "ankle_cm": (23.0, 1.4),
    "bicep_cm": (32.5, 3.0),
    "forearm_cm": (28.5, 2.0),
    "wrist_cm": (17.4, 0.9),
    "arm_length_cm": (60.0, 3.0),
    "leg_length_cm": (81.5, 4.6),
    "shoulder_to_crotch_cm": (61.0, 3.4),
}
_WOMEN: Final[dict[str, tuple[float, float]]] = {
    "height_cm": (162.8, 6.4),
    "chest_cm": (94.0, 8.2),
    "waist_cm": (80.5, 9.8),
    "hip_cm": (101.0, 8.0),
    "shoulder_breadth_cm": (36.5, 1.8),
    "thigh_cm": (59.0, 5.6),
    "calf_cm": (36.8, 2.7),
    "ankle_cm": (21.6, 1.3),
    "bicep_cm": (28.5, 3.1),
    "forearm_cm": (24.8, 1.8),
    "wrist_cm": (15.4, 0.8),
    "arm_length_cm": (54.5, 2.8),
    "leg_length_cm": (76.0, 4.2),
    "shoulder_to_crotch_cm": (57.0, 3.1),
}
_LENGTHS: Final = ("arm_length_cm", "leg_length_cm", "shoulder_to_crotch_cm", "shoulder_breadth_cm")
_UPPER_GIRTHS: Final = ("chest_cm", "waist_cm", "bicep_cm", "forearm_cm", "wrist_cm")
_LOWER_GIRTHS: Final = ("hip_cm", "thigh_cm", "calf_cm", "ankle_cm")
# Loadings on (stature, girth, upper/lower girth); the rest of each variance is independent.
_LOADINGS: Final[dict[str, tuple[float, float, float]]] = {
    **dict.fromkeys(_LENGTHS, (0.85, 0.15, 0.0)),
    "shoulder_breadth_cm": (0.55, 0.35, 0.0),
    **dict.fromkeys(_UPPER_GIRTHS, (0.25, 0.75, 0.35)),
    **dict.fromkeys(_LOWER_GIRTHS, (0.25, 0.75, 0.35)),
    "wrist_cm": (0.45, 0.55, 0.2),
    "ankle_cm": (0.45, 0.55, 0.2),
}


@dataclass(frozen=True)
class Body:
    """One body: its 14 measurements (the ground truth) and how its shape is drawn."""

    sex: str  # "male" | "female"
    measurements: dict[str, float]
    chest_depth_ratio: float  # torso depth / width at each level
    waist_depth_ratio: float
    hip_depth_ratio: float
    belly: float  # forward shift of the waist section (cm), buttocks backward
    squareness: float  # superellipse exponent of the torso sections (2 = ellipse)
    neck_cm: float  # neck girth
    head_height_cm: float
    hair_cm: float  # hair above the top of the head

    def with_measurement(self, name: str, value: float) -> Body:
        return replace(self, measurements={**self.measurements, name: value})


def sample_body(rng: np.random.Generator, sex: str | None = None) -> Body:
    """A random adult body with correlated measurements (see the module docstring)."""
    sex = sex or ("male" if rng.random() < 0.5 else "female")
    table = _MEN if sex == "male" else _WOMEN
    stature, girth, upper = rng.standard_normal(3)
    lower = -upper  # upper- vs lower-body girth balance
    values: dict[str, float] = {}
    for name, (mean, sd) in table.items():
        if name == "height_cm":
            z = stature
        else:
            ls, lg, lu = _LOADINGS[name]
            side = upper if name in _UPPER_GIRTHS else lower if name in _LOWER_GIRTHS else 0.0
            shared = ls * stature + lg * girth + lu * side
            z = shared + math.sqrt(max(0.05, 1 - ls**2 - lg**2 - lu**2)) * rng.standard_normal()
        values[name] = mean + sd * float(np.clip(z, -2.5, 2.5))
    _make_consistent(values, rng)
    waist_ratio = float(np.clip(0.74 + 0.004 * (values["waist_cm"] - 85) + rng.normal(0, 0.03), 0.62, 0.95))
    return Body(
        sex=sex,
        measurements={name: round(value, 2) for name, value in sorted(values.items())},
        chest_depth_ratio=float(np.clip(rng.normal(0.70 if sex == "male" else 0.74, 0.04), 0.6, 0.85)),
        waist_depth_ratio=waist_ratio,
        hip_depth_ratio=float(np.clip(rng.normal(0.76, 0.04), 0.65, 0.9)),
        belly=float(np.clip(0.12 * (values["waist_cm"] - 85) + rng.normal(0, 1.0), -1.0, 5.0)),
        squareness=float(rng.uniform(2.05, 2.4)),
        neck_cm=float(values["chest_cm"] * 0.36 + rng.normal(0, 1.0)),
        head_height_cm=float(values["height_cm"] * 0.13 + rng.normal(0, 0.6)),
        hair_cm=float(rng.uniform(0.2, 2.5)),
    )


def _make_consistent(values: dict[str, float], rng: np.random.Generator) -> None:
    """Keep a drawn body physically possible: head and neck take 15-20% of the height, the waist
    is the narrowest girth of the torso, limbs taper."""
    height = values["height_cm"]
    trunk = values["leg_length_cm"] + values["shoulder_to_crotch_cm"]
    head_and_neck = height - trunk
    low, high = 0.155 * height, 0.205 * height
    if not low <= head_and_neck <= high:
        target = float(np.clip(head_and_neck, low, high))
        scale = (height - target) / trunk
        values["leg_length_cm"] *= scale
        values["shoulder_to_crotch_cm"] *= scale
    values["waist_cm"] = min(values["waist_cm"], values["chest_cm"] - 2.0, values["hip_cm"] - 2.0)
    values["thigh_cm"] = min(values["thigh_cm"], values["hip_cm"] * 0.68)
    values["calf_cm"] = min(values["calf_cm"], values["thigh_cm"] - 8.0)
    values["ankle_cm"] = min(values["ankle_cm"], values["calf_cm"] - 9.0)
    values["forearm_cm"] = min(values["forearm_cm"], values["bicep_cm"] - 1.0)
    values["wrist_cm"] = min(values["wrist_cm"], values["forearm_cm"] - 6.0)
    del rng
