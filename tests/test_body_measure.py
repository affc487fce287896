"""The body-measurement pipeline on rendered bodies, through the real segmentation and pose models
and the shipped calibration: invariance, sensitivity and the failure codes."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from core.rules.measurements import MEASUREMENT_KEYS as PRODUCT_KEYS
from inference.body_measure.calibration import BODY_EMBEDDING_DIM, MEASUREMENT_KEYS
from inference.body_measure.errors import MeasurementRejected
from inference.body_measure.measurer import BodyMeasurer, BodyResult, load_body_measurer
from inference.manifest import all_manifests
from training.body.anthropometry import Body, sample_body
from training.body.render import render_pair
from training.body.scene import Camera, Look, Pose

GIRTHS = (
    "ankle_cm",
    "bicep_cm",
    "calf_cm",
    "chest_cm",
    "forearm_cm",
    "hip_cm",
    "thigh_cm",
    "waist_cm",
    "wrist_cm",
)
LENGTHS = ("arm_length_cm", "leg_length_cm", "shoulder_to_crotch_cm", "shoulder_breadth_cm")
POSE = Pose(arm_angle_deg=30.0, leg_spread_cm=7.0)
LOOK = Look(noise=2.0, blur=0.3, jpeg_quality=90)


@pytest.fixture(scope="module")
def measurer() -> BodyMeasurer:
    return load_body_measurer(all_manifests())


@pytest.fixture(scope="module")
def body() -> Body:
    found = sample_body(np.random.default_rng(7), sex="female")
    # room for the +8 cm waist case: the waist stays the torso's narrowest girth
    return found.with_measurement(
        "waist_cm", min(found.measurements["waist_cm"], found.measurements["chest_cm"] - 12)
    )


def photos(body: Body, camera: Camera | None = None, *, seed: int = 1) -> tuple[bytes, bytes]:
    pair = render_pair(body, np.random.default_rng(seed), setup=(POSE, camera or Camera(), LOOK))
    return pair.front.jpeg, pair.side.jpeg


def measure(
    measurer: BodyMeasurer, body: Body, camera: Camera | None = None, height: float | None = None
) -> BodyResult:
    front, side = photos(body, camera)
    return measurer.measure(front, side, height or body.measurements["height_cm"])


def relative_change(a: BodyResult, b: BodyResult, key: str) -> float:
    return abs(a.measurements[key] - b.measurements[key]) / a.measurements[key]


def test_a_measurement_has_every_key_a_confidence_and_an_embedding(
    measurer: BodyMeasurer, body: Body
) -> None:
    result = measure(measurer, body)
    assert set(result.measurements) == set(MEASUREMENT_KEYS)
    assert all(0 < result.confidence[k] <= 1 for k in MEASUREMENT_KEYS)
    assert result.measurements["height_cm"] == body.measurements["height_cm"]
    assert result.embedding.shape == (BODY_EMBEDDING_DIM,)
    assert result.embedding.dtype == np.float32
    assert np.isfinite(result.embedding).all()
    # a sane body: every value within a fifth of the truth
    for key in MEASUREMENT_KEYS:
        assert result.measurements[key] == pytest.approx(body.measurements[key], rel=0.2), key
    assert {"decode", "models", "geometry"} <= set(result.timings_ms)


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(Camera(width=540, height=960), id="lower-resolution"),
        pytest.param(Camera(distance_cm=330.0), id="camera-farther"),
    ],
)
def test_same_body_other_photo_conditions_measures_within_two_percent(
    measurer: BodyMeasurer, body: Body, other: Camera
) -> None:
    reference = measure(measurer, body)
    changed = measure(measurer, body, other)
    for key in MEASUREMENT_KEYS:
        assert relative_change(reference, changed, key) <= 0.02, (
            key,
            reference.measurements[key],
            changed.measurements[key],
        )


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_rotated_photos_measure_like_upright_ones(
    measurer: BodyMeasurer, body: Body, orientation: int
) -> None:
    front, side = photos(body)
    stored = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}[
        orientation
    ]

    def rotate(data: bytes) -> bytes:
        image = Image.open(io.BytesIO(data)).transpose(stored)
        exif = Image.Exif()
        exif[0x0112] = orientation
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=95, exif=exif)
        return out.getvalue()

    height = body.measurements["height_cm"]
    upright = measurer.measure(front, side, height)
    rotated = measurer.measure(rotate(front), rotate(side), height)
    for key in MEASUREMENT_KEYS:
        assert relative_change(upright, rotated, key) <= 0.02, key


def test_a_larger_waist_moves_the_waist_and_little_else(measurer: BodyMeasurer, body: Body) -> None:
    reference = measure(measurer, body)
    wider = measure(measurer, body.with_measurement("waist_cm", body.measurements["waist_cm"] + 8))
    grew = wider.measurements["waist_cm"] - reference.measurements["waist_cm"]
    assert 5 <= grew <= 11
    for key in GIRTHS:
        if key != "waist_cm":
            assert abs(wider.measurements[key] - reference.measurements[key]) < 2, key


def test_a_larger_given_height_scales_the_lengths(measurer: BodyMeasurer, body: Body) -> None:
    reference = measure(measurer, body)
    taller = measure(measurer, body, height=body.measurements["height_cm"] * 1.1)
    for key in LENGTHS:
        ratio = taller.measurements[key] / reference.measurements[key]
        assert ratio == pytest.approx(1.1, abs=0.03), key


def test_an_empty_background_is_no_person_detected(measurer: BodyMeasurer, body: Body) -> None:
    rng = np.random.default_rng(3)
    wall = np.clip(
        np.full((1280, 720, 3), (225, 222, 214), np.float32) + rng.normal(0, 3, (1280, 720, 3)), 0, 255
    )
    out = io.BytesIO()
    Image.fromarray(wall.astype(np.uint8)).save(out, format="JPEG")
    _, side = photos(body)
    with pytest.raises(MeasurementRejected) as caught:
        measurer.measure(out.getvalue(), side, body.measurements["height_cm"])
    assert caught.value.code == "no_person_detected"


def test_a_body_cut_at_the_knees_is_person_cut_off(measurer: BodyMeasurer, body: Body) -> None:
    pair = render_pair(body, np.random.default_rng(1), setup=(POSE, Camera(), LOOK))
    rows = np.nonzero(pair.front.mask.any(axis=1))[0]
    knees = int(rows.min() + 0.72 * (rows.max() - rows.min()))
    out = io.BytesIO()
    pair.front.image.crop((0, 0, pair.front.image.width, knees)).save(out, format="JPEG")
    with pytest.raises(MeasurementRejected) as caught:
        measurer.measure(out.getvalue(), pair.side.jpeg, body.measurements["height_cm"])
    assert caught.value.code == "person_cut_off"


def test_two_people_is_multiple_people(measurer: BodyMeasurer, body: Body) -> None:
    other = sample_body(np.random.default_rng(11), sex="male")
    camera = Camera(width=720, height=1280)
    a = render_pair(body, np.random.default_rng(1), setup=(POSE, camera, LOOK)).front.image
    b = render_pair(other, np.random.default_rng(2), setup=(POSE, camera, LOOK)).front.image
    both = Image.new("RGB", (1440, 1280))
    both.paste(a, (0, 0))
    both.paste(b, (720, 0))
    out = io.BytesIO()
    both.save(out, format="JPEG")
    _, side = photos(body)
    with pytest.raises(MeasurementRejected) as caught:
        measurer.measure(out.getvalue(), side, body.measurements["height_cm"])
    assert caught.value.code == "multiple_people"


def test_a_side_photo_given_as_front_is_bad_pose(measurer: BodyMeasurer, body: Body) -> None:
    _, side = photos(body)
    with pytest.raises(MeasurementRejected) as caught:
        measurer.measure(side, side, body.measurements["height_cm"])
    assert caught.value.code == "bad_pose"


def test_arms_held_against_the_body_is_bad_pose(measurer: BodyMeasurer, body: Body) -> None:
    pair = render_pair(
        body, np.random.default_rng(1), setup=(replace(POSE, arm_angle_deg=3.0), Camera(), LOOK)
    )
    with pytest.raises(MeasurementRejected) as caught:
        measurer.measure(pair.front.jpeg, pair.side.jpeg, body.measurements["height_cm"])
    assert caught.value.code == "bad_pose"


def test_a_dark_photo_is_low_quality(measurer: BodyMeasurer, body: Body) -> None:
    pair = render_pair(body, np.random.default_rng(1), setup=(POSE, Camera(), replace(LOOK, brightness=0.12)))
    with pytest.raises(MeasurementRejected) as caught:
        measurer.measure(pair.front.jpeg, pair.side.jpeg, body.measurements["height_cm"])
    assert caught.value.code == "low_quality"


def test_unreadable_bytes_are_low_quality(measurer: BodyMeasurer, body: Body) -> None:
    front, _ = photos(body)
    with pytest.raises(MeasurementRejected) as caught:
        measurer.measure(front[: len(front) // 3], b"not an image", body.measurements["height_cm"])
    assert caught.value.code == "low_quality"


def test_the_pipeline_speaks_the_products_measurements() -> None:
    assert MEASUREMENT_KEYS == PRODUCT_KEYS
