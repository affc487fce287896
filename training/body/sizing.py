"""Bodies designed to wear a given size of a size chart: the ground truth of fit-advice checks.

``body_for(size, rng, chart)`` draws a realistic body (``sample_body``) and moves the
measurements the chart's size lists to the middle 30-70% of that size's ranges. The girths that
follow a body's overall build (bicep, forearm, wrist, thigh, calf, ankle, the neck) are scaled
with the chest, so the rendered body still looks like one person. When the chart sizes sleeves
(``arm_length_cm``, as men's tops do) the body's other lengths (height, inside leg, shoulder to
crotch, head) are scaled with the arm, so a long-armed size is also a taller person rather than
someone with arms out of proportion.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from devstack.demo.size_tables import WOMEN_TOPS
from training.body.anthropometry import Body, sample_body

# A size row: measurement key -> (low, high) in cm.
SizeRanges = Mapping[str, tuple[float, float]]

# Girths that follow the body's overall build when the chart's measurements are set.
_FOLLOW = ("ankle_cm", "bicep_cm", "calf_cm", "forearm_cm", "thigh_cm", "wrist_cm")
# Lengths that follow the arm when the chart sets the arm length.
_LENGTHS = ("height_cm", "leg_length_cm", "shoulder_to_crotch_cm")


def body_for(
    size: str,
    rng: np.random.Generator,
    chart: Mapping[str, SizeRanges] = WOMEN_TOPS,
    sex: str = "female",
) -> Body:
    """A body of ``sex`` whose measurements listed by ``chart[size]`` lie inside the middle of
    that size's ranges (the default: a woman sized by the women's tops chart).

    Raises:
        KeyError: ``size`` is not in the chart.
        ValueError: the chart does not size by chest (the other girths are scaled from it).
    """
    ranges = chart[size]
    if "chest_cm" not in ranges:
        raise ValueError("body_for needs a chart that sizes by chest_cm")
    body = sample_body(rng, sex)
    target = {k: lo + (hi - lo) * rng.uniform(0.3, 0.7) for k, (lo, hi) in ranges.items()}
    scale = target["chest_cm"] / body.measurements["chest_cm"]
    values = {**body.measurements, **{k: body.measurements[k] * scale for k in _FOLLOW}}
    head_height = body.head_height_cm
    if "arm_length_cm" in target:
        stretch = target["arm_length_cm"] / body.measurements["arm_length_cm"]
        values.update({k: body.measurements[k] * stretch for k in _LENGTHS})
        head_height *= stretch
    values.update(target)
    return replace(body, measurements=values, neck_cm=body.neck_cm * scale, head_height_cm=head_height)
