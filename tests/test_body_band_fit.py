"""The per-band corrections and intervals (``training.body.bands``) on made-up residuals: the
offsets remove a band's lean, the intervals hold their level on new bodies, and the measurer reads
both for the band of the uncorrected waist and height."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inference.body_measure.calibration import Calibration, apply_calibration, band_index
from training.body.bands import conformal, fit_bands, halves, next_version, write_card
from training.body.evaluate import write_card as write_eval_card

HEIGHT = 170.0
# A waist-to-height ratio in each band (edges 0.48, 0.55, 0.62, 0.70).
RATIOS = (0.44, 0.51, 0.58, 0.66, 0.76)


def _models() -> dict[str, dict[str, Any]]:
    """Waist read straight from the feature, chest from its own: the identity, no offsets yet."""
    return {
        key: {"features": [name], "coefficients": [0.0, 1.0], "ranges": [[0.0, 500.0]], "p90": 2.0}
        for key, name in (("waist_cm", "waist"), ("chest_cm", "chest"))
    }


def _rows(
    rng: np.random.Generator, per_band: int, lean: tuple[float, ...], spread: float
) -> list[dict[str, Any]]:
    """Bodies whose chest truth sits ``lean[band]`` above what the features say, with noise."""
    rows = []
    for band, ratio in enumerate(RATIOS):
        for _ in range(per_band):
            waist = ratio * HEIGHT
            chest = 100.0 + rng.normal(0, 5)
            truth = {"waist_cm": waist, "chest_cm": chest + lean[band] + rng.normal(0, spread)}
            rows.append({"features": {"height": HEIGHT, "waist": waist, "chest": chest}, "truth": truth,
                         "band": f"b{band}"})  # fmt: skip
    return rows


def test_the_offsets_remove_each_bands_lean_and_the_intervals_hold_their_level() -> None:
    rng = np.random.default_rng(5)
    lean = (0.0, 0.5, 1.0, 3.0, -2.0)
    models = _models()
    counts = fit_bands(models, _rows(rng, 200, lean, 1.5))
    assert counts["calibration_bodies_per_band"] == [200] * 5
    assert models["chest_cm"]["band_offsets"] == pytest.approx(lean, abs=0.4)
    cal = Calibration(version="t", scale={}, models=models, population={}, raw={"interval_level": 0.9})
    fresh = _rows(np.random.default_rng(6), 400, lean, 1.5)
    for band in range(5):
        members = [r for r in fresh if r["band"] == f"b{band}"]
        fitted = [apply_calibration(r["features"], cal) for r in members]
        assert {f.band for f in fitted} == {band}
        errors = [r["truth"]["chest_cm"] - f.values["chest_cm"] for r, f in zip(members, fitted, strict=True)]
        assert abs(float(np.mean(errors))) < 0.3, band  # no lean left
        inside = [
            f.intervals["chest_cm"][0] <= r["truth"]["chest_cm"] <= f.intervals["chest_cm"][1]
            for r, f in zip(members, fitted, strict=True)
        ]
        assert 0.85 <= float(np.mean(inside)) <= 0.95, (band, np.mean(inside))


def test_a_band_with_few_bodies_borrows_its_neighbours() -> None:
    rng = np.random.default_rng(7)
    rows = _rows(rng, 40, (0.0,) * 5, 1.0)
    rows = [r for r in rows if r["band"] != "b4"] + [r for r in rows if r["band"] == "b4"][:3]
    models = _models()
    counts = fit_bands(models, rows)
    assert counts["calibration_bodies_per_band"][4] == 3
    low, high = models["chest_cm"]["intervals"][4]
    # from the neighbours' residuals, not three bodies
    assert low < -1.0
    assert high > 1.0


def test_without_offsets_the_calibration_reads_as_before() -> None:
    models = _models()
    cal = Calibration(version="t", scale={}, models=models, population={})
    fitted = apply_calibration({"height": HEIGHT, "waist": 100.0, "chest": 104.44}, cal)
    assert fitted.values["chest_cm"] == 104.4
    assert fitted.band == band_index(100.0, HEIGHT)
    assert fitted.intervals == {}


def test_the_band_is_read_before_the_correction() -> None:
    """An offset that moves the waist across a band edge does not change which band's figures apply."""
    models = _models()
    models["waist_cm"]["band_offsets"] = [0.0, 0.0, 20.0, 0.0, 0.0]
    models["waist_cm"]["intervals"] = [[-1.0, 1.0], [-1.0, 1.0], [-3.0, 3.0], [-9.0, 9.0], [-9.0, 9.0]]
    cal = Calibration(version="t", scale={}, models=models, population={})
    fitted = apply_calibration({"height": HEIGHT, "waist": 0.585 * HEIGHT, "chest": 100.0}, cal)
    assert fitted.band == 2
    assert fitted.values["waist_cm"] == pytest.approx(0.585 * HEIGHT + 20, abs=0.05)
    low, high = fitted.intervals["waist_cm"]
    assert high - low == pytest.approx(6.0, abs=0.11)


@pytest.mark.parametrize("n", [19, 50, 200])  # from 19 bodies a 90 % interval can be stated
def test_conformal_intervals_cover_at_least_their_level(n: int) -> None:
    hits, trials = 0, 2000
    rng = np.random.default_rng(n)
    for _ in range(trials):
        sample = rng.normal(0, 1, n + 1)
        low, high = conformal(sample[:n], 0.9)
        hits += low <= sample[n] <= high
    assert hits / trials >= 0.88


def test_alternate_measured_bodies_of_each_band_go_to_each_half() -> None:
    rows = [{"band": b, "features": {}, "index": i} for i, b in enumerate("aabbbab")]
    rows.insert(2, {"band": "a", "failure": "bad_pose", "index": 99})
    first, second = halves(rows)
    assert [r["index"] for r in first] == [0, 2, 4, 5]
    assert [r["index"] for r in second] == [1, 3, 6]
    assert next_version("1.2.0") == "1.3.0"


def test_between_band_centres_the_offset_moves_linearly() -> None:
    """A body near a band edge is not moved by a step when another photo puts it across."""
    models = _models()
    models["chest_cm"]["band_offsets"] = [0.0, 1.0, 2.0, 4.0, 4.0]
    cal = Calibration(version="t", scale={}, models=models, population={})

    def chest_at(ratio: float) -> float:
        return apply_calibration({"height": HEIGHT, "waist": ratio * HEIGHT, "chest": 100.0}, cal).values[
            "chest_cm"
        ]

    assert chest_at(0.40) == 100.0  # flat beyond the outer centres
    assert chest_at(0.80) == 104.0
    assert chest_at(0.5499) == pytest.approx(chest_at(0.5501), abs=0.11)  # no step at the 0.55 edge
    assert chest_at(0.55) == pytest.approx(101.5, abs=0.06)  # halfway between 0.515 and 0.585


def test_the_cards_notes_are_replaced_in_place(tmp_path: Path) -> None:
    card = tmp_path / "MODEL_CARD.md"
    card.write_text("# body\n\n**Expected photos.** Upright.\n")
    bands = {"seed": 1, "stream": 8, "per_band": 2, "refused": 0, "models_refitted": False,
             "fitting_bodies": 5, "calibration_bodies_per_band": [1, 2, 3, 4, 5]}  # fmt: skip
    for per_band in (2, 3):
        write_card(card, {"bands": {**bands, "per_band": per_band}})
        write_eval_card(f"evaluated at {per_band}", card)
    text = card.read_text()
    assert text.count("<!-- bands -->") == 1
    assert "--per-band 3" in text
    assert "--per-band 2" not in text
    assert text.index("<!-- bands -->") < text.index("**Expected photos.**")
    assert text.count("evaluated at") == 1
    assert text.rstrip().endswith("<!-- /eval-body -->")
