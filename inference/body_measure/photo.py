"""Decoding the photos and checking them: the refusal rules (``no_person_detected``,
``person_cut_off``, ``multiple_people``, ``low_quality``, ``bad_pose``)."""

from __future__ import annotations

import io
import warnings
from typing import Final

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from inference.body import PersonSegmenter, PoseEstimator, body_crop
from inference.body_measure.errors import MeasurementRejected
from inference.body_measure.view import ViewAnalysis, run_contains

WORK_SIDE: Final = 1280  # photos are measured with their longer side at most this long
MIN_PERSON_PX: Final = 300  # a person shorter than this in the photo is too small to measure


def decode_photo(data: bytes) -> Image.Image:
    """An RGB photo, EXIF orientation applied, longer side at most WORK_SIDE."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as image:
                image.draft("RGB", (WORK_SIDE, WORK_SIDE))
                oriented = ImageOps.exif_transpose(image)
                rgb = oriented.convert("RGB")
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError,
                Image.DecompressionBombWarning) as exc:  # fmt: skip
            raise MeasurementRejected(
                "low_quality", f"The photo could not be read ({type(exc).__name__})."
            ) from None
    rgb.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.LANCZOS)
    return rgb


def _person_columns(mask: np.ndarray) -> list[tuple[int, int]]:
    """Runs of columns holding a tall part of a person (people stand side by side in a photo)."""
    rows = mask.any(axis=1)
    height = int(rows.sum())
    column_height = mask.sum(axis=0)
    occupied = column_height > max(3, 0.02 * height)
    runs: list[tuple[int, int]] = []
    start = None
    for x, on in enumerate(np.append(occupied, False)):
        if on and start is None:
            start = x
        elif not on and start is not None:
            runs.append((start, x))
            start = None
    return runs


def analyse_view(
    image: Image.Image, segmenter: PersonSegmenter, pose: PoseEstimator, view: str
) -> ViewAnalysis:
    """Segmentation, pose and the per-photo quality checks."""
    name = "front" if view == "front" else "side"
    grey = np.asarray(image.convert("L"), dtype=np.float32)
    if grey.mean() < 35:
        raise MeasurementRejected("low_quality", f"The {name} photo is too dark.")
    probabilities = segmenter.probabilities(image)
    mask = probabilities > 0.5
    if mask.mean() < 0.01:
        raise MeasurementRejected("no_person_detected", f"No person was found in the {name} photo.")
    runs = _person_columns(mask)
    tallest = [int(mask[:, a:b].any(axis=1).sum()) for a, b in runs]
    if len(runs) > 1 and sorted(tallest)[-2] > 0.5 * max(tallest):
        raise MeasurementRejected(
            "multiple_people", f"More than one person is in the {name} photo; only you should be in it."
        )
    main = runs[int(np.argmax(tallest))]
    keep = np.zeros_like(mask)
    keep[:, main[0] : main[1]] = mask[:, main[0] : main[1]]
    mask = keep
    rows = np.nonzero(mask.any(axis=1))[0]
    top, bottom = int(rows.min()), int(rows.max())
    height_px = bottom - top + 1
    if top <= 1 or bottom >= mask.shape[0] - 2:
        where = "head" if top <= 1 else "feet"
        raise MeasurementRejected(
            "person_cut_off", f"Your {where} is outside the {name} photo; step back so all of you is in it."
        )
    if height_px < MIN_PERSON_PX or height_px < 0.4 * mask.shape[0]:
        raise MeasurementRejected(
            "low_quality",
            f"You are too small in the {name} photo; come closer so you fill most of its height.",
        )
    crop = body_crop(mask)
    assert crop is not None  # the mask is not empty
    found = pose.estimate(image, crop)
    if found.presence < 0.5:
        raise MeasurementRejected(
            "no_person_detected",
            f"No whole person could be recognised in the {name} photo: stand upright on a plain background "
            "with all of your body in view.",
        )
    _check_sharpness(grey, mask, name)
    hips = (found.landmarks["left_hip"].x + found.landmarks["right_hip"].x) / 2
    return ViewAnalysis(image, probabilities, mask, found, float(top), float(bottom), float(hips))


def _check_sharpness(grey: np.ndarray, mask: np.ndarray, name: str) -> None:
    """A blurred photo has soft silhouette edges: the steepest grey step across them is small."""
    edge = mask[:, 1:] != mask[:, :-1]
    if edge.sum() < 50:
        return
    step = np.abs(grey[:, 1:] - grey[:, :-1])
    # the strongest step within a pixel of each silhouette edge
    near = np.maximum(step, np.maximum(np.roll(step, 1, axis=1), np.roll(step, -1, axis=1)))
    contrast = float(np.median(near[edge]))
    if contrast < 4.0:
        raise MeasurementRejected("low_quality", f"The {name} photo is blurred or has too little contrast.")


def check_pose(front: ViewAnalysis, side: ViewAnalysis) -> None:
    height = front.bottom - front.top
    shoulders = abs(front.lm("left_shoulder").x - front.lm("right_shoulder").x)
    if shoulders < 0.10 * height:
        raise MeasurementRejected("bad_pose", "The front photo must show you facing the camera.")
    for side_name in ("left", "right"):
        elbow, wrist = front.lm(f"{side_name}_elbow"), front.lm(f"{side_name}_wrist")
        # along the forearm, there must be background between the arm and the body's centre line
        apart = [
            not run_contains(
                front.mask,
                elbow.y + t * (wrist.y - elbow.y),
                elbow.x + t * (wrist.x - elbow.x),
                front.centre_x,
            )
            for t in (0.2, 0.35, 0.5, 0.65, 0.8)
        ]
        if sum(apart) < 3:
            raise MeasurementRejected(
                "bad_pose", "Hold your arms a little away from your body in the front photo (A-pose)."
            )
    side_height = side.bottom - side.top
    side_shoulders = abs(side.lm("left_shoulder").x - side.lm("right_shoulder").x)
    if side_shoulders > 0.09 * side_height:
        raise MeasurementRejected("bad_pose", "The side photo must show you in profile (turned 90°).")
