"""Fit the body-measurement calibration on rendered bodies and evaluate it on held-out ones.

    python -m training.body.train [--seed 2026] [--train 700] [--test 250]

Every body and photo session comes from the seed, so a run is reproducible. Three disjoint sets of
bodies: one fits the pixel-scale correction (silhouette height → stature in pixels), one fits the
per-measurement linear models on the raw features of ``inference.body_measure``, and a held-out set
is measured with the result and reported (MAE and 90th percentile error per measurement, and the
share of photo pairs the pipeline refused). Writes ``calibration.json`` and ``MODEL_CARD.md`` into
``inference/models/body_calibration/``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from inference.body_measure.calibration import (
    BAND_EDGES,
    CALIBRATION_PATH,
    MEASUREMENT_KEYS,
    PROFILE_LEVELS,
    Calibration,
    apply_calibration,
    band_index,
)
from inference.body_measure.errors import MeasurementRejected
from inference.body_measure.geometry import TORSO_LEVELS, raw_features
from inference.body_measure.measurer import BodyMeasurer
from training.body.fitting import fit_linear

VERSION = "1.2.0"
INTERVAL_LEVEL = 0.9
SIZE = (540, 960)
TORSO = [f"torso_{kind}{i}" for i in range(len(TORSO_LEVELS)) for kind in ("e", "d")]
FEATURES: dict[str, list[str]] = {
    "chest_cm": ["chest_ellipse", "chest_w", "chest_d", "chest_drop", "chest_d_fixed", *TORSO, "height"],
    "waist_cm": ["waist_ellipse", "waist_w", "waist_d", *TORSO, "height"],
    "hip_cm": ["hip_ellipse", "hip_w", "hip_d", *TORSO, "thigh_w", "height"],
    "thigh_cm": ["thigh_ellipse", "thigh_w", "thigh_d", "hip_ellipse", "height"],
    "calf_cm": ["calf_ellipse", "calf_w", "calf_d", "height"],
    "ankle_cm": ["ankle_ellipse", "ankle_w", "ankle_d", "height"],
    "bicep_cm": ["arm_bicep", "arm_forearm", "chest_ellipse", "height"],
    "forearm_cm": ["arm_forearm", "arm_bicep", "arm_wrist", "height"],
    "wrist_cm": ["arm_wrist", "arm_forearm", "height"],
    "arm_length_cm": ["arm_length", "shoulder_z", "height"],
    "leg_length_cm": ["crotch_z", "hip_z", "thigh_w", "height"],
    "shoulder_to_crotch_cm": ["torso_length", "shoulder_z", "crotch_z", "height"],
    "shoulder_breadth_cm": ["shoulder_landmarks", "shoulder_silhouette", "chest_w", "height"],
}
TARGETS = {"chest_cm": 1.5, "waist_cm": 1.5, "hip_cm": 1.5, "shoulder_breadth_cm": 1.0, "arm_length_cm": 1.0,
           "leg_length_cm": 1.0, "shoulder_to_crotch_cm": 1.0}  # fmt: skip

_measurer: BodyMeasurer | None = None


def _init_worker() -> None:
    global _measurer  # noqa: PLW0603  # one measurer per worker process
    from inference.body import PersonSegmenter, PoseEstimator  # noqa: PLC0415
    from inference.manifest import all_manifests  # noqa: PLC0415

    manifests = all_manifests()
    _measurer = BodyMeasurer(
        PersonSegmenter(manifests["person_segmentation"], intra_op_threads=1),
        PoseEstimator(manifests["pose_landmarks"], intra_op_threads=1),
        Calibration.identity(),
    )


def _sample(job: tuple[int, int, str, dict[str, dict[str, list[float]]] | None]) -> dict[str, Any]:
    """Render body ``index`` of the seed's stream and measure it."""
    from training.body.population import sample_shopper  # noqa: PLC0415
    from training.body.render import framed_pair  # noqa: PLC0415

    seed, index, task, calibration = job
    assert _measurer is not None
    rng = np.random.default_rng([seed, index])
    body = sample_shopper(rng)
    pair = framed_pair(body, rng, size=SIZE)
    truth = body.measurements
    try:
        front, side = _measurer.analyse(pair.front.jpeg, pair.side.jpeg)
    except MeasurementRejected as exc:
        return {"index": index, "failure": exc.code, "truth": truth}
    out: dict[str, Any] = {"index": index, "truth": truth}
    if task == "scale":
        for name, view, rendered in (("front", front, pair.front), ("side", side, pair.side)):
            heel = (view.lm("left_heel").y + view.lm("right_heel").y) / 2
            ankle = (view.lm("left_ankle").y + view.lm("right_ankle").y) / 2
            span = view.bottom - view.top
            out[name] = [
                (heel - view.top) / span,
                (ankle - view.top) / span,
                (view.bottom - rendered.floor_row) / span,
                rendered.stature_px / span,
            ]
        return out
    cal = Calibration(version="fitting", scale=calibration or {}, models={}, population={})
    out["features"] = raw_features(front, side, truth["height_cm"], cal)
    return out


def _run(
    pool: Any, seed: int, indices: range, task: str, scale: dict[str, Any] | None
) -> list[dict[str, Any]]:
    return list(pool.imap(_sample, [(seed, i, task, scale) for i in indices], chunksize=4))


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--scale", type=int, default=150, help="bodies for the pixel-scale fit")
    parser.add_argument("--train", type=int, default=700)
    parser.add_argument("--test", type=int, default=400)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--out", type=Path, default=CALIBRATION_PATH.parent)
    parser.add_argument(
        "--card-only", action="store_true", help="rewrite MODEL_CARD.md from calibration.json"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _arguments(argv)
    if args.card_only:
        summary = json.loads((args.out / "calibration.json").read_text())["evaluation"]
        write_model_card(args.out / "MODEL_CARD.md", model_card(summary))
        return
    started = time.perf_counter()
    ranges = {
        "scale": range(0, args.scale),
        "train": range(args.scale, args.scale + args.train),
        "test": range(args.scale + args.train, args.scale + args.train + args.test),
    }
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(args.workers, initializer=_init_worker) as pool:
        scale_rows = [r for r in _run(pool, args.seed, ranges["scale"], "scale", None) if "failure" not in r]
        scale = _fit_scale(scale_rows)
        print(f"scale fitted on {len(scale_rows)} bodies: {scale}", flush=True)
        train = _run(pool, args.seed, ranges["train"], "features", scale)
        test = _run(pool, args.seed, ranges["test"], "features", scale)
    train_ok = [r for r in train if "features" in r]
    test_ok = [r for r in test if "features" in r]
    models = fit_models(train_ok)
    report = held_out_errors(models, test_ok)
    _fit_intervals(models, test_ok)
    failures = Counter(r["failure"] for r in test if "failure" in r)
    population = _population(
        Calibration(version=VERSION, scale=scale, models=models, population={}), train_ok
    )
    elapsed = time.perf_counter() - started
    summary = {
        "seed": args.seed,
        "bodies": {"scale": args.scale, "train": args.train, "test": args.test},
        "image_size": list(SIZE),
        "test_measured": len(test_ok),
        "test_refused": dict(sorted(failures.items())),
        "failure_rate": round(sum(failures.values()) / max(len(test), 1), 4),
        "interval_level": INTERVAL_LEVEL,
        "heldout": report,
    }
    calibration = {"version": VERSION, "scale": scale, "models": models, "population": population,
                   "interval_level": INTERVAL_LEVEL, "evaluation": summary}  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "calibration.json").write_text(json.dumps(calibration, indent=1, sort_keys=True) + "\n")
    write_model_card(args.out / "MODEL_CARD.md", model_card(summary))
    print(_table(summary))
    print(f"trained on {len(train_ok)} bodies, evaluated on {len(test_ok)}, in {elapsed:.0f} s")


def _fit_scale(scale_rows: list[dict[str, Any]]) -> dict[str, dict[str, list[float]]]:
    """Where the floor under the body and the top of the head are, relative to the silhouette."""
    scale: dict[str, dict[str, list[float]]] = {}
    for view in ("front", "side"):
        data = np.array([r[view] for r in scale_rows])
        scale[view] = {
            target: [
                round(float(c), 6) for c in fit_linear(data[:, :2].tolist(), data[:, column].tolist(), 1e-6)
            ]
            for target, column in (("floor", 2), ("stature", 3))
        }
    return scale


def fit_models(train_ok: list[dict[str, Any]], ridge: float = 1e-3) -> dict[str, dict[str, Any]]:
    """One linear model per measurement, with the range of each feature seen in training."""
    models: dict[str, dict[str, Any]] = {}
    for key, names in FEATURES.items():
        x = [[r["features"][n] for n in names] for r in train_ok]
        coefficients = fit_linear(x, [r["truth"][key] for r in train_ok], ridge)
        xs: np.ndarray = np.array(x)
        models[key] = {
            "features": names,
            "coefficients": [round(float(c), 6) for c in coefficients],
            "ranges": [
                [round(float(lo), 4), round(float(hi), 4)]
                for lo, hi in zip(xs.min(0), xs.max(0), strict=True)
            ],
        }
    return models


def held_out_errors(
    models: dict[str, dict[str, Any]], test_ok: list[dict[str, Any]]
) -> dict[str, dict[str, float]]:
    """Held-out MAE and 90th percentile error; the p90 also feeds each measurement's confidence."""
    report: dict[str, dict[str, float]] = {}
    for key, spec in models.items():
        errors = []
        for r in test_ok:
            row = np.array([1.0] + [r["features"][n] for n in spec["features"]])
            errors.append(abs(float(row @ np.array(spec["coefficients"])) - r["truth"][key]))
        report[key] = {
            "mae": round(float(np.mean(errors)), 2),
            "p90": round(float(np.percentile(errors, 90)), 2),
        }
        spec["p90"] = report[key]["p90"]
    return report


def _fit_intervals(models: dict[str, dict[str, Any]], test_ok: list[dict[str, Any]]) -> None:
    """Per body band (from the measured waist and height, as at inference), the held-out residual
    quantiles that hold INTERVAL_LEVEL of the truths; a band with few bodies borrows its
    neighbours' residuals until it has 25."""
    cal = Calibration(version="fitting", scale={}, models=models, population={})
    predicted = [apply_calibration(r["features"], cal).values for r in test_ok]
    bands = [band_index(p["waist_cm"], p["height_cm"]) for p in predicted]
    tail = (1 - INTERVAL_LEVEL) / 2
    for key, spec in models.items():
        residuals = np.array([r["truth"][key] - p[key] for r, p in zip(test_ok, predicted, strict=True)])
        per_band = []
        for band in range(len(BAND_EDGES) + 1):
            reach = 0
            while True:
                chosen = [abs(b - band) <= reach for b in bands]
                if sum(chosen) >= 25 or reach > len(BAND_EDGES):
                    break
                reach += 1
            values = residuals[np.array(chosen)]
            per_band.append([round(float(np.quantile(values, tail)), 2),
                             round(float(np.quantile(values, 1 - tail)), 2)])  # fmt: skip
        spec["intervals"] = per_band


def _population(calibration: Calibration, train_ok: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Mean and spread of each embedding component over the training bodies."""
    population: dict[str, list[float]] = {}
    predicted = [apply_calibration(r["features"], calibration).values for r in train_ok]
    for key in MEASUREMENT_KEYS:
        values = np.array([p[key] for p in predicted])
        population[key] = [round(float(values.mean()), 4), round(float(values.std()), 4)]
    for i in range(PROFILE_LEVELS):
        for kind in ("w", "d"):
            values = np.array([r["features"][f"profile_{kind}{i}"] for r in train_ok])
            population[f"profile_{kind}{i}"] = [round(float(values.mean()), 6), round(float(values.std()), 6)]
    return population


def _table(summary: dict[str, Any]) -> str:
    lines = ["| measurement | MAE (cm) | 90th pct error (cm) | target MAE |", "|---|---|---|---|"]
    for key, row in summary["heldout"].items():
        target = TARGETS.get(key)
        verdict = "" if target is None else f"≤ {target} {'met' if row['mae'] <= target else 'missed'}"
        lines.append(f"| {key} | {row['mae']:.2f} | {row['p90']:.2f} | {verdict} |")
    refused = ", ".join(f"{k} {v}" for k, v in summary["test_refused"].items()) or "none"
    lines.append("")
    lines.append(
        f"Held-out pairs refused by the pipeline: {summary['failure_rate']:.1%} ({refused}) of "
        f"{summary['bodies']['test']}."
    )
    return "\n".join(lines)


def write_model_card(path: Path, card: str) -> None:
    """The card, keeping the per-band report ``just eval-body --card`` wrote into the old one."""
    start, end = "<!-- eval-body -->", "<!-- /eval-body -->"
    old = path.read_text() if path.exists() else ""
    if start in old and end in old:
        block = start + old.split(start, 1)[1].split(end, 1)[0] + end
        card = card.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(card)


POPULATION_NOTE = """\
**The population: shoppers, not soldiers** (`training/body/population.py`). The bodies start from
ANSUR II (US Army, 2012; Gordon et al. 2014: means, standard deviations and correlation structure
of the lengths and girths, `training/body/anthropometry.py`), which has few bodies with a BMI
over 35 or a waist larger than the chest. Stature, BMI and waist are then redrawn for the general
adult population, from approximate published summaries of the US National Health and Nutrition
Examination Survey (NHANES 2015-2018; Fryar et al. 2021, National Health Statistics Reports
no. 160; Hales et al. 2020, NCHS Data Brief no. 360): stature about 175 cm (men) and 162 cm
(women), standard deviation about 7 cm; BMI about 29.5 on average, standard deviation about 6.5,
log-normal, up to 55 (about 40 % of adults at 30 or more, close to 10 % at 40 or more); waist
about 102 cm (men) and 97 cm (women) on average. Chest and hip follow BMI along slopes chosen to
give plausible figures at BMI 22, 30 and 45 (these slopes are this file's assumption, not
survey figures); an apple-pear factor moves girth between the waist and the hips and thighs, a
shoulder factor makes shoulders wide or narrow, and lengths and limb girths are rescaled from the
ANSUR II body. All figures are approximate; the point is coverage of real shoppers' shapes (waist
larger than chest, BMI 40+, short and tall), not a survey-exact distribution."""
CHECKS_NOTE = """\
**Photo checks** (`inference/body_measure/photo.py`). The side photo's profile is judged
against the same person's front photo (shoulder spread relative to height in the side photo at
most half of that in the front, or the pose model sees one shoulder well behind the other), not
by a fixed limit on the side photo's shoulder spread, which the pose model widens with torso
depth and which refused large and round bodies. The pose model's presence score is not trusted
alone on profiles (it falls under 0.5 on some valid ones): landmarks in a standing person's order
on the silhouette also count as a person, and when the pose model finds nobody it is asked once
more on the mirrored photo. The person is segmented a second time in a crop of the photo's aspect
ratio around them, so their size in the photo does not change the silhouette; a silhouette that
touches the photo's edge is segmented once more with the edge pixels repeated beyond it (the
model draws a head close to the edge on up to it), so only a person the edge really cuts is
refused."""


def model_card(summary: dict[str, Any]) -> str:
    bodies = ", ".join(f"{summary['bodies'][name]} for the {name} set" for name in ("scale", "train", "test"))
    return f"""# body_calibration — body measurements from two photos (synthetic calibration)

**What it does.** Turns what the segmentation and pose models see in a front and a side photo
(silhouette widths and depths at landmark-defined levels, landmark lengths, all scaled by the
height the shopper gives) into the 14 body measurements, each with a confidence, and a
body-shape embedding. Code: `inference/body_measure/`; this file's numbers: `calibration.json`.

**How it was fitted — synthetic data only.** `just train-body` renders bodies from
`training/body/` (stacked cross-sections driven by the 14 measurements), photographed front and
side with random camera distance, height, focal length, tilt and roll, A-pose jitter, skin tones,
fitted clothing, hair, plain walls and floors with shadows, sensor noise, blur and JPEG
artefacts; a session whose framing would cut off a broad body steps the camera back. They are run
through the real segmentation and pose models. One set of bodies fits the pixel-scale
correction, another the per-measurement linear models, and a held-out set is reported below and
fits the intervals. Seed {summary["seed"]}; bodies: {bodies};
photos {summary["image_size"][0]} x {summary["image_size"][1]} pixels.

{POPULATION_NOTE}

No real person was measured for this calibration. Its errors on real photos are unknown and will
be larger: real bodies, clothes and rooms vary in ways the renderer does not draw. A calibration
fitted on real, consented measurement data replaces this file through the same format
(`calibration.json`: features, coefficients, error figures) without code changes.

**Held-out synthetic evaluation** (the linear models on bodies they were not fitted on, before
any band correction; the per-band table at the end measures the whole pipeline):

{_table(summary)}

**Expected photos.** One person, whole body in frame from the top of the head to the feet,
standing upright on a plain background: front photo facing the camera with arms held away from
the body (A-pose), side photo in profile. Fitted clothing; hair tied back from the shoulders.
Phone held upright at about waist to chest height, 2 to 3.5 m away.

**Confidence and intervals.** Each measurement carries an interval meant to hold the truth
{round(100 * summary.get("interval_level", 0.9))} % of the time: the held-out residual quantiles of the body's
waist-to-height band (from the measured waist and height), borrowed from the neighbouring bands
when a band had fewer than 25 held-out bodies; `just eval-body` (below) checks them on a separate
held-out stream. The confidence falls with the interval's half-width relative to the value and
drops when a raw feature falls outside the range seen in training. Size advice never lets a
measurement with confidence under 0.6 (a half-width of about a tenth of the value) change a
recommendation on its own.

{CHECKS_NOTE}

**Known limits** (found by comparing the pipeline's raw features with the renderer's ground
truth). Levels placed from the pose landmarks (chest, waist, hip) land about 3 cm (one standard
deviation) away from the true levels, and the torso width at a level varies by 1.3 to 1.9 cm
even on the exact silhouette; these two set the girth errors above, not the segmentation. Near
the armpits the arms touch the chest in the front photo, so the chest is measured lower and
corrected. Thighs that touch below the crotch hide it, which costs the thigh and the inside leg;
the thigh also moves most with the person's size in the photo (2.5 % between a person about 700
and about 1,020 px tall in `tests/test_body_bands.py`, where chest, waist, hip and the lengths
stay within 2 % from about 510 to 1,090 px).
Bicep, forearm and wrist come from front widths only (the side photo shows the arm over the
body).
"""


if __name__ == "__main__":
    main()
