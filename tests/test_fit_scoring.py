"""Fit scoring (core.rules.fit): ranges, edges, missing dimensions, uncertain measurements, no fit."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from core.rules.fit import (
    FITS,
    SURE_CONFIDENCE,
    TOLERANCE_CM,
    advise,
    fit_query_vector,
    fit_row_vector,
    importance,
    measurement_fit,
    score_size,
)

TOPS = [
    ("S", {"chest_cm": [86.0, 90.0], "waist_cm": [70.0, 74.0]}),
    ("M", {"chest_cm": [90.0, 96.0], "waist_cm": [74.0, 80.0]}),
    ("L", {"chest_cm": [96.0, 102.0], "waist_cm": [80.0, 86.0]}),
]
SURE = {"chest_cm": 0.9, "waist_cm": 0.9, "hip_cm": 0.9, "leg_length_cm": 0.9}


def test_inside_a_range_is_good_with_no_delta() -> None:
    assert measurement_fit(93.0, 90.0, 96.0, "chest_cm") == ("good", 0.0, 1.0)


@pytest.mark.parametrize("value", [90.0, 96.0])
def test_both_ends_of_a_range_are_inside(value: float) -> None:
    status, delta, score = measurement_fit(value, 90.0, 96.0, "chest_cm")
    assert (status, delta, score) == ("good", 0.0, 1.0)


def test_outside_a_range_is_tight_or_loose_with_the_signed_distance() -> None:
    status, delta, score = measurement_fit(98.0, 90.0, 96.0, "chest_cm")
    assert status == "tight"
    assert delta == pytest.approx(2.0)
    assert score == pytest.approx(math.exp(-((2.0 / TOLERANCE_CM["chest_cm"]) ** 2)))
    status, delta, loose_score = measurement_fit(88.0, 90.0, 96.0, "chest_cm")
    assert status == "loose"
    assert delta == pytest.approx(-2.0)
    # The same distance is forgiven more on the loose side.
    assert 0 < score < loose_score < 1


def test_the_score_falls_with_the_distance_outside() -> None:
    scores = [measurement_fit(96.0 + d, 90.0, 96.0, "chest_cm")[2] for d in (0.5, 1, 2, 4, 8)]
    assert scores == sorted(scores, reverse=True)
    assert scores[-1] < 0.01


def test_the_size_that_contains_the_body_is_recommended() -> None:
    advice = advise(TOPS, {"chest_cm": 93.0, "waist_cm": 77.0}, SURE, "tops")
    assert advice.recommended_size == "M"
    assert advice.reason is None
    by_size = {fit.size: fit for fit in advice.sizes}
    assert [fit.size for fit in advice.sizes] == ["S", "M", "L"]  # chart order
    assert by_size["M"].fit_score == 1.0
    assert {n.measurement: n.status for n in by_size["S"].notes} == {"chest_cm": "tight", "waist_cm": "tight"}
    assert {n.measurement: n.status for n in by_size["L"].notes} == {"chest_cm": "loose", "waist_cm": "loose"}
    assert by_size["S"].fit_score < FITS
    assert by_size["L"].fit_score < FITS


def test_one_measurement_that_does_not_fit_sinks_the_size() -> None:
    # Waist perfect, chest a whole size step too big for S.
    fit = score_size("S", TOPS[0][1], {"chest_cm": 95.0, "waist_cm": 72.0}, SURE, "tops")
    assert fit.fit_score < 0.3


def test_on_a_boundary_shared_by_two_sizes_the_closer_centre_wins() -> None:
    # chest 96 is inside M and L; waist 79 is inside M only by its centre distance (M: 74-80).
    advice = advise(TOPS, {"chest_cm": 96.0, "waist_cm": 79.0}, SURE, "tops")
    assert advice.recommended_size == "M"
    chart = [("M", {"chest_cm": [90.0, 96.0]}), ("L", {"chest_cm": [96.0, 102.0]})]
    assert advise(chart, {"chest_cm": 96.0}, SURE, "tops").recommended_size in ("M", "L")
    assert advise(chart, {"chest_cm": 96.5}, SURE, "tops").recommended_size == "L"


def test_measurements_the_chart_does_not_list_are_ignored() -> None:
    chart = [("M", {"chest_cm": [90.0, 96.0]})]
    advice = advise(chart, {"chest_cm": 93.0, "waist_cm": 150.0, "hip_cm": 40.0}, SURE, "tops")
    assert advice.recommended_size == "M"
    assert [note.measurement for note in advice.sizes[0].notes] == ["chest_cm"]


def test_measurements_the_body_lacks_are_skipped() -> None:
    advice = advise(TOPS, {"chest_cm": 93.0}, SURE, "tops")
    assert advice.recommended_size == "M"
    assert [note.measurement for note in advice.sizes[1].notes] == ["chest_cm"]


def test_a_chart_with_nothing_in_common_recommends_nothing_and_says_why() -> None:
    chart = [("32", {"ankle_cm": [20.0, 24.0]})]
    advice = advise(chart, {"chest_cm": 93.0}, SURE, "shoes")
    assert advice.recommended_size is None
    assert advice.reason is not None
    assert "none of the measurements" in advice.reason
    assert advice.sizes[0].fit_score == 0.0


def test_an_uncertain_measurement_is_shown_but_does_not_count() -> None:
    # The waist says L, but it is too uncertain: the chest decides.
    confidence = {"chest_cm": 0.9, "waist_cm": 0.1}
    advice = advise(TOPS, {"chest_cm": 93.0, "waist_cm": 84.0}, confidence, "tops")
    assert advice.recommended_size == "M"
    waist = next(n for n in advice.sizes[1].notes if n.measurement == "waist_cm")
    assert (waist.status, waist.counted, waist.confidence) == ("tight", False, 0.1)


def test_a_wide_interval_measurement_never_flips_the_recommendation_on_its_own() -> None:
    # The chest says M (near L's edge), the waist says L: a certain waist moves the advice to L,
    # an uncertain one (below SURE: its interval is wide) does not.
    body = {"chest_cm": 95.5, "waist_cm": 86.5}
    assert advise(TOPS, body, {"chest_cm": 0.9, "waist_cm": 0.9}, "tops").recommended_size == "L"
    advice = advise(TOPS, body, {"chest_cm": 0.9, "waist_cm": SURE_CONFIDENCE - 0.1}, "tops")
    assert advice.recommended_size == "M"
    # it is still shown and counted in the scores
    waist = next(n for n in advice.sizes[1].notes if n.measurement == "waist_cm")
    assert (waist.status, waist.counted) == ("tight", True)
    assert advice.sizes[2].fit_score > advice.sizes[1].fit_score


def test_a_wide_interval_measurement_that_agrees_changes_nothing() -> None:
    body = {"chest_cm": 93.0, "waist_cm": 77.0}
    advice = advise(TOPS, body, {"chest_cm": 0.9, "waist_cm": SURE_CONFIDENCE - 0.1}, "tops")
    assert advice.recommended_size == "M"


def test_uncertain_measurements_alone_still_recommend_when_they_agree() -> None:
    # every measurement uncertain (but counted): leaving one out changes nothing, so they decide
    body = {"chest_cm": 93.0, "waist_cm": 77.0}
    advice = advise(TOPS, body, {"chest_cm": 0.4, "waist_cm": 0.4}, "tops")
    assert advice.recommended_size == "M"


def test_lower_confidence_weighs_less() -> None:
    body = {"chest_cm": 93.0, "waist_cm": 82.0}  # chest says M, waist says L
    sure_waist = score_size("M", TOPS[1][1], body, {"chest_cm": 0.9, "waist_cm": 0.9}, "tops")
    unsure_waist = score_size("M", TOPS[1][1], body, {"chest_cm": 0.9, "waist_cm": 0.3}, "tops")
    assert unsure_waist.fit_score > sure_waist.fit_score


def test_when_only_uncertain_measurements_are_in_common_nothing_is_recommended() -> None:
    advice = advise(TOPS, {"chest_cm": 93.0, "waist_cm": 77.0}, {"chest_cm": 0.1, "waist_cm": 0.1}, "tops")
    assert advice.recommended_size is None
    assert advice.reason is not None
    assert "not certain enough" in advice.reason
    # The scores are still shown, from the uncertain measurements.
    assert max(fit.fit_score for fit in advice.sizes) == 1.0


def test_nothing_fits_gives_null_and_names_the_closest_size_and_problem() -> None:
    advice = advise(TOPS, {"chest_cm": 112.0, "waist_cm": 84.0}, SURE, "tops")
    assert advice.recommended_size is None
    assert advice.reason is not None
    assert "closest is L" in advice.reason
    assert "tight on chest" in advice.reason
    assert "10.0 cm" in advice.reason


def test_the_garment_decides_which_measurements_matter() -> None:
    assert importance("bottoms", "leg_length_cm") > importance("tops", "leg_length_cm")
    assert importance("tops", "chest_cm") > importance("bottoms", "chest_cm")
    assert importance(None, "wrist_cm") == 1.0
    chart = [("32", {"waist_cm": [80.0, 84.0], "chest_cm": [70.0, 72.0]})]
    body = {"waist_cm": 82.0, "chest_cm": 76.0}
    # A chest 4 cm over the range matters little for trousers, a lot for a top.
    assert score_size("32", chart[0][1], body, SURE, "bottoms").fit_score > FITS
    assert score_size("32", chart[0][1], body, SURE, "tops").fit_score < FITS


def test_fit_vectors_give_the_weighted_distance_to_the_range_centres() -> None:
    rng = random.Random(5)
    for _ in range(50):
        keys = rng.sample(sorted(TOLERANCE_CM), rng.randint(1, 5))
        ranges = {k: [lo := rng.uniform(40, 100), lo + rng.uniform(0, 8)] for k in keys}
        body = {k: rng.uniform(40, 110) for k in TOLERANCE_CM}
        confidence = {k: rng.choice([0.1, 0.5, 0.9, 1.0]) for k in TOLERANCE_CM}
        garment = rng.choice(["tops", "bottoms", None])
        weights = {k: importance(garment, k) for k in keys}
        expected = sum(
            weights[k]
            * (max(confidence[k], 0.05) if confidence[k] >= 0.2 else 0.0)
            * ((body[k] - sum(ranges[k]) / 2) / TOLERANCE_CM[k]) ** 2
            for k in keys
        ) / sum(weights.values())
        query, row = np.array(fit_query_vector(body, confidence)), np.array(fit_row_vector(ranges, garment))
        # pgvector's <#> is the negative inner product.
        assert -float(query @ row) == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_fit_vectors_rank_the_containing_size_first() -> None:
    body = {"chest_cm": 93.0, "waist_cm": 77.0}
    query = np.array(fit_query_vector(body, SURE))
    distances = {size: -float(query @ np.array(fit_row_vector(r, "tops"))) for size, r in TOPS}
    assert min(distances, key=distances.__getitem__) == "M"
