"""Fit the calibration's per-band corrections and intervals on a stream stratified by body band.

    just fit-body-bands [--seed 2026] [--per-band 80] [--refit-models]

``just train-body`` fits the linear models on shoppers drawn as the population is, where the
largest bodies are few: the models then fit the middle bands best (calibration 1.2.0: chest MAE
3.5 cm with a waist-to-height ratio over 0.62, 1.5 cm between 0.48 and 0.55) and the intervals of
the outer bands had to be borrowed from their neighbours. Here the first
``--per-band`` shoppers of each waist-to-height band of a stream of their own (``STREAM``; never
the evaluation's) are rendered and their raw features measured through the real models and
checks, with the shipped pixel scale. Within each band, alternate bodies go to two halves:

- with ``--refit-models``, the linear models are fitted again on the first half (every band
  equally represented), their 90th percentile error on the second;
- on the second half, per band (from the uncorrected waist and height, as at inference): the
  median residual becomes the band's offset (``band_offsets``; at inference the offsets are
  joined linearly between the bands' centres, so a body near an edge does not jump), and the
  quantiles of the residuals left after those joined offsets the band's interval at
  ``INTERVAL_LEVEL``, with the split-conformal finite-sample correction so that a new body's
  truth falls inside at least that often.

The rendered features are kept under ``.data/body-bands/`` (keyed by seed, band size and the
calibration's pixel scale), so fitting again costs no rendering. Writes ``calibration.json`` with
the next version; ``just eval-body`` then reports the result on the evaluation's own stream.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from inference.body_measure.calibration import (
    BAND_EDGES,
    CALIBRATION_PATH,
    Calibration,
    apply_calibration,
    band_offset,
)
from inference.body_measure.errors import MeasurementRejected
from inference.body_measure.measurer import BodyMeasurer
from training.body.evaluate import write_block
from training.body.population import stratified
from training.body.train import INTERVAL_LEVEL, SIZE, fit_models, held_out_errors

STREAM = 8  # training draws from the seed's own stream, the evaluation from stream 7
CACHE = Path(".data/body-bands")
# The refitted models' ridge: on the 240-per-band stream, 0.03 against 0.001 cut the sum of the
# chest and waist models' coefficients by 59 and 66 % (pixel noise in a feature moves them less)
# for the same held-out MAE (chest 2.09 against 2.15 cm, waist 1.82 against 1.81).
RIDGE = 0.03
# A band with fewer calibration bodies borrows its neighbours' residuals until it has this many.
MIN_BAND = 25

_measurer: BodyMeasurer | None = None


def _init_worker(calibration: Path) -> None:
    global _measurer  # noqa: PLW0603  # one measurer per worker process
    from inference.body_measure.measurer import load_body_measurer  # noqa: PLC0415
    from inference.manifest import all_manifests  # noqa: PLC0415

    _measurer = load_body_measurer(all_manifests(), intra_op_threads=1, calibration=calibration)


def _features(job: tuple[int, int, str]) -> dict[str, Any]:
    """Render shopper ``index`` of the stream and measure its raw features (or its refusal)."""
    from training.body.population import sample_shopper  # noqa: PLC0415
    from training.body.render import framed_pair  # noqa: PLC0415

    seed, index, band = job
    assert _measurer is not None
    rng = np.random.default_rng([seed, STREAM, index])
    body = sample_shopper(rng)
    pair = framed_pair(body, rng, size=SIZE)
    row: dict[str, Any] = {"index": index, "band": band, "truth": body.measurements}
    try:
        row["features"] = _measurer.features(pair.front.jpeg, pair.side.jpeg, body.measurements["height_cm"])
    except MeasurementRejected as exc:
        row["failure"] = exc.code
    return row


def rendered(seed: int, per_band: int, workers: int, calibration: Path) -> list[dict[str, Any]]:
    """The stream's rows, from the cache when this seed, size and pixel scale were rendered."""
    scale = json.dumps(Calibration.load(calibration).scale, sort_keys=True)
    key = hashlib.sha256(scale.encode()).hexdigest()[:12]
    path = CACHE / f"seed{seed}-per-band{per_band}-scale{key}.json"
    if path.exists():
        rows: list[dict[str, Any]] = json.loads(path.read_text())
        return rows
    jobs = [(seed, index, band) for index, band in stratified(seed, per_band, STREAM)]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(calibration,)) as pool:
        rows = list(pool.imap(_features, jobs, chunksize=2))
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows))
    return rows


def halves(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Alternate measured bodies of each band: (fitting half, calibration half)."""
    first: list[dict[str, Any]] = []
    second: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for row in rows:
        if "features" not in row:
            continue
        n = seen.get(row["band"], 0)
        seen[row["band"]] = n + 1
        (first if n % 2 == 0 else second).append(row)
    return first, second


def conformal(residuals: np.ndarray, level: float) -> tuple[float, float]:
    """The residuals' two-sided interval at ``level`` with the split-conformal correction: the
    ``ceil((n + 1) * (1 - tail)) / n`` quantile above and its mirror below."""
    n = len(residuals)
    tail = (1 - level) / 2
    high = min(1.0, math.ceil((n + 1) * (1 - tail)) / n)
    low = max(0.0, 1 - high)
    return float(np.quantile(residuals, low, method="lower")), float(
        np.quantile(residuals, high, method="higher")
    )


def fit_bands(models: dict[str, dict[str, Any]], calibration_half: list[dict[str, Any]]) -> dict[str, Any]:
    """Each model's ``band_offsets`` and ``intervals`` from the calibration half (in place); returns
    how many bodies each band had."""
    uncorrected = {key: {k: v for k, v in spec.items() if k not in ("band_offsets", "intervals")}
                   for key, spec in models.items()}  # fmt: skip
    cal = Calibration(version="fitting", scale={}, models=uncorrected, population={})
    fitted = [apply_calibration(r["features"], cal) for r in calibration_half]
    bands = np.array([f.band for f in fitted])
    ratios = np.array([f.values["waist_cm"] / max(f.values["height_cm"], 1.0) for f in fitted])
    counts = [int((bands == b).sum()) for b in range(len(BAND_EDGES) + 1)]
    chosen = [_neighbourhood(bands, band) for band in range(len(BAND_EDGES) + 1)]
    for key, spec in models.items():
        residuals = np.array(
            [r["truth"][key] - f.values[key] for r, f in zip(calibration_half, fitted, strict=True)]
        )
        offsets = [round(float(np.median(residuals[members])), 2) for members in chosen]
        # The intervals around what inference applies: the offsets joined between band centres.
        left = residuals - np.array([band_offset(offsets, ratio) for ratio in ratios])
        spec["band_offsets"] = offsets
        spec["intervals"] = [
            [round(bound, 2) for bound in conformal(left[members], INTERVAL_LEVEL)] for members in chosen
        ]
    return {"calibration_bodies_per_band": counts}


def card_note(summary: dict[str, Any]) -> str:
    """What this fit did, for the model card."""
    bands = summary["bands"]
    refit = (
        f"The linear models were fitted again on the first half ({bands['fitting_bodies']} bodies, "
        "every band equally represented), and the table above gives their errors on the second. "
        if bands["models_refitted"]
        else ""
    )
    counts = ", ".join(str(n) for n in bands["calibration_bodies_per_band"])
    return (
        f"**Per-band corrections and intervals** (`python -m training.body.bands --seed {bands['seed']} "
        f"--per-band {bands['per_band']}{' --refit-models' if bands['models_refitted'] else ''}`). "
        f"The first {bands['per_band']} shoppers of each waist-to-height band of a stream of their own "
        f"(stream {bands['stream']}, {bands['refused']} of them refused by the photo checks), alternate "
        f"bodies of each band in two halves. {refit}On the second half, per band (from the uncorrected "
        "waist and height, as at inference; bodies per band "
        f"{counts}): the median residual is the band's offset, added to every measurement of a body "
        "in that band, and the residuals' quantiles around it, with the split-conformal correction, "
        "the band's interval; a band with fewer than 25 bodies borrows its neighbours'."
    )


def write_card(path: Path, summary: dict[str, Any]) -> None:
    """This fit's note in the card (between its markers, before the expected photos), replacing
    an earlier one."""
    markers = ("<!-- bands -->", "<!-- /bands -->")
    write_block(path, markers, card_note(summary), before="**Expected photos.**")


def _neighbourhood(bands: np.ndarray, band: int) -> np.ndarray:
    """The bodies of ``band``, and of its neighbours too while it has fewer than ``MIN_BAND``."""
    reach = 0
    while (np.abs(bands - band) <= reach).sum() < MIN_BAND and reach <= len(BAND_EDGES):
        reach += 1
    members: np.ndarray = np.abs(bands - band) <= reach
    return members


def next_version(version: str) -> str:
    major, minor, *_ = (int(part) for part in version.split("."))
    return f"{major}.{minor + 1}.0"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--per-band", type=int, default=80)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--calibration", type=Path, default=CALIBRATION_PATH)
    parser.add_argument(
        "--refit-models", action="store_true", help="fit the linear models on the first half too"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    data = json.loads(args.calibration.read_text())
    rows = rendered(args.seed, args.per_band, args.workers, args.calibration)
    first, second = halves(rows)
    models = data["models"]
    if args.refit_models:
        models = fit_models(first, RIDGE)
        for key, report in held_out_errors(models, second).items():
            data["evaluation"]["heldout"][key] = report
    summary = fit_bands(models, second)
    refused = sum("failure" in r for r in rows)
    data["models"] = models
    data["version"] = next_version(data["version"])
    data["evaluation"]["bands"] = {
        "seed": args.seed, "stream": STREAM, "per_band": args.per_band, "refused": refused,
        "models_refitted": args.refit_models, "fitting_bodies": len(first), **summary,
    }  # fmt: skip
    args.calibration.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    # The note only: the card's other sections (checks, invariance) are written by hand.
    write_card(args.calibration.parent / "MODEL_CARD.md", data["evaluation"])
    print(f"{len(rows)} bodies ({refused} refused), {len(first)} + {len(second)} used, "
          f"per band {summary['calibration_bodies_per_band']}; version {data['version']}; "
          f"{time.perf_counter() - started:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
