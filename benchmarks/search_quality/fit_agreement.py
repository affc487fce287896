"""Part 4: does size advice recommend the size a rendered body was designed to wear?

Bodies are built to wear one size of a standard chart (``training.body.sizing.body_for``):
women sized by the women's tops chart (chest, waist, hip) and men by the men's tops chart
(chest, waist, shoulder breadth, arm length), sizes XS-XL in turn. Each body is photographed by
the renderer (front + side, 720x1280) and measured by the real pipeline
(``inference.body_measure.load_body_measurer``: segmentation, pose, calibration), then
``core.rules.fit.advise`` scores the chart (garment kind ``tops``). Two photo setups: ``studio`` (the
fixed pose, camera and clothes of tests/test_fit_rendered.py) and ``phone`` (a random photo
session per body, as the calibration was trained on). Reported per chart and setup: exact-size
agreement, within-one-size agreement, no recommendation, refusals by the pipeline (with their
codes), and the mean absolute error of the chart's measurements.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.rules.fit import advise
from devstack.demo.size_tables import MEN_TOPS, WOMEN_TOPS, Ranges
from inference.body_measure.errors import MeasurementRejected
from inference.body_measure.measurer import load_body_measurer
from inference.manifest import all_manifests
from training.body.anthropometry import Body
from training.body.render import render_pair
from training.body.scene import Camera, Look, Pose
from training.body.sizing import body_for

SIZES = ("XS", "S", "M", "L", "XL")
CHARTS: dict[str, tuple[Mapping[str, Ranges], str]] = {
    "women_tops": (WOMEN_TOPS, "female"),
    "men_tops": (MEN_TOPS, "male"),
}
SETUPS = ("studio", "phone")


@dataclass(frozen=True)
class Case:
    chart: str
    setup: str
    index: int
    size: str
    seed: int


@dataclass(frozen=True)
class Photographed:
    case: Case
    body: Body
    front: bytes
    side: bytes


def photograph(case: Case) -> Photographed:
    """Render one case (in a worker process); deterministic from the case alone."""
    table, sex = CHARTS[case.chart]
    rng = np.random.default_rng([case.seed, 5, list(CHARTS).index(case.chart), case.index])
    body = body_for(case.size, rng, table, sex)
    setup = (Pose(), Camera(fill=0.75), Look()) if case.setup == "studio" else None
    pair = render_pair(body, rng, setup=setup)
    return Photographed(case, body, pair.front.jpeg, pair.side.jpeg)


def cases(bodies: int, setups: list[str], seed: int) -> list[Case]:
    """``bodies`` bodies split between the charts, sizes in turn, each in every setup (the same
    body in each setup)."""
    out: list[Case] = []
    per_chart = max(1, bodies // len(CHARTS))
    for chart in CHARTS:
        for index in range(per_chart):
            size = SIZES[index % len(SIZES)]
            out.extend(Case(chart, setup, index, size, seed) for setup in setups)
    return out


def fit_agreement(bodies: int, setups: list[str], seed: int) -> dict[str, Any]:
    todo = cases(bodies, setups, seed)
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        photographed = list(pool.map(photograph, todo))
    measurer = load_body_measurer(all_manifests())
    outcomes: list[dict[str, Any]] = []
    for item in photographed:
        case = item.case
        table, _ = CHARTS[case.chart]
        chart = [(s, {k: [float(lo), float(hi)] for k, (lo, hi) in table[s].items()}) for s in SIZES]
        outcome: dict[str, Any] = {"chart": case.chart, "setup": case.setup, "designed": case.size}
        try:
            result = measurer.measure(item.front, item.side, item.body.measurements["height_cm"])
        except MeasurementRejected as exc:
            outcomes.append(outcome | {"refused": exc.code})
            continue
        advice = advise(chart, result.measurements, result.confidence, "tops")
        errors = {k: round(result.measurements[k] - item.body.measurements[k], 1) for k in table[case.size]}
        outcomes.append(outcome | {"recommended": advice.recommended_size, "error_cm": errors})
    groups = [(c, s) for c in CHARTS for s in setups]
    return {
        "bodies": len({(c.chart, c.index) for c in todo}),
        "measured_photo_pairs": len(todo),
        "sizes": list(SIZES),
        "groups": [
            _summary(chart, setup, [o for o in outcomes if (o["chart"], o["setup"]) == (chart, setup)])
            for chart, setup in groups
        ],
        "all": _summary("all", "all", outcomes),
        "outcomes": outcomes,
    }


def _summary(chart: str, setup: str, outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    measured = [o for o in outcomes if "refused" not in o]
    exact = sum(o["recommended"] == o["designed"] for o in measured)
    within = sum(
        o["recommended"] is not None and abs(SIZES.index(o["recommended"]) - SIZES.index(o["designed"])) <= 1
        for o in measured
    )
    errors: dict[str, list[float]] = {}
    for o in measured:
        for key, value in o["error_cm"].items():
            errors.setdefault(key, []).append(abs(value))
    return {
        "chart": chart,
        "setup": setup,
        "bodies": len(outcomes),
        "measured": len(measured),
        "refused": len(outcomes) - len(measured),
        "refusal_codes": dict(Counter(o["refused"] for o in outcomes if "refused" in o)),
        "exact": exact,
        "within_one_size": within,
        "no_recommendation": sum(o["recommended"] is None for o in measured),
        "exact_rate": round(exact / len(measured), 3) if measured else None,
        "within_one_rate": round(within / len(measured), 3) if measured else None,
        "mean_abs_error_cm": {k: round(float(np.mean(v)), 2) for k, v in sorted(errors.items())},
    }
