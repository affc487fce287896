"""Decoding the photos and checking them: the refusal rules (``no_person_detected``,
``person_cut_off``, ``multiple_people``, ``low_quality``, ``bad_pose``)."""

from __future__ import annotations

import io
import itertools
import warnings
from dataclasses import replace
from typing import Final

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from inference.body import PersonSegmenter, Pose, PoseEstimator, body_crop
from inference.body_measure.errors import MeasurementRejected
from inference.body_measure.view import ViewAnalysis, run_contains

WORK_SIDE: Final = 1280  # photos are measured with their longer side at most this long
MIN_PERSON_PX: Final = 300  # a person shorter than this in the photo is too small to measure
# ... or taking less than this share of the photo's height (the person is segmented in a crop
# around them, so a smaller share measures the same; below it the camera is far and the room fills
# the photo)
MIN_PERSON_SHARE: Final = 0.3


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


def _main_person(mask: np.ndarray, name: str) -> np.ndarray:
    """The mask of the tallest person; refuses photos with nobody or with two tall people."""
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
    return keep


def _check_framing(mask: np.ndarray, name: str) -> tuple[int, int]:
    """The person's first and last rows; refuses a person cut off by the photo's edge or too small."""
    rows = np.nonzero(mask.any(axis=1))[0]
    top, bottom = int(rows.min()), int(rows.max())
    if top <= 1 or bottom >= mask.shape[0] - 2:
        where = "head" if top <= 1 else "feet"
        raise MeasurementRejected(
            "person_cut_off", f"Your {where} is outside the {name} photo; step back so all of you is in it."
        )
    height_px = bottom - top + 1
    if height_px < MIN_PERSON_PX or height_px < MIN_PERSON_SHARE * mask.shape[0]:
        raise MeasurementRejected(
            "low_quality",
            f"You are too small in the {name} photo; come closer so you fill most of its height.",
        )
    return top, bottom


def segmentation_box(mask: np.ndarray, *, fill: float = 0.8, clip: bool = True) -> tuple[int, int, int, int]:
    """(left, top, width, height) around the person, of the photo's own aspect ratio, in which the
    person takes ``fill`` of the height: the segmentation model then sees every person at about
    the same size, however far the camera was. Clipped to the photo (the whole photo when the
    person already fills it), or with ``clip=False`` centred on the person and reaching past the
    photo's edges where needed (see ``PersonSegmenter.probabilities``)."""
    photo_h, photo_w = mask.shape
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    if not clip:
        height = max((rows[-1] - rows[0] + 1) / fill, (cols[-1] - cols[0] + 1) / fill * photo_h / photo_w)
        width = height * photo_w / photo_h
        left = round((cols[0] + cols[-1]) / 2 - width / 2)
        return left, round((rows[0] + rows[-1]) / 2 - height / 2), round(width), round(height)
    height = min(photo_h, round((rows[-1] - rows[0] + 1) / fill))
    width = min(photo_w, max(round(height * photo_w / photo_h), round((cols[-1] - cols[0] + 1) / fill)))
    height = min(photo_h, max(height, round(width * photo_h / photo_w)))
    left = int(np.clip(round((cols[0] + cols[-1]) / 2 - width / 2), 0, photo_w - width))
    top = int(np.clip(round((rows[0] + rows[-1]) / 2 - height / 2), 0, photo_h - height))
    return left, top, width, height


def analyse_view(
    image: Image.Image, segmenter: PersonSegmenter, pose: PoseEstimator, view: str
) -> ViewAnalysis:
    """Segmentation, pose and the per-photo quality checks.

    The whole photo is segmented once to find the person (and refuse photos with nobody or two
    people in them), then the square around that person is segmented again at the model's full
    input resolution: the silhouette the measurements are taken on then does not depend on how
    many pixels tall the person is in the photo."""
    name = "front" if view == "front" else "side"
    grey = np.asarray(image.convert("L"), dtype=np.float32)
    if grey.mean() < 35:
        raise MeasurementRejected("low_quality", f"The {name} photo is too dark.")
    coarse = _main_person(segmenter.probabilities(image) > 0.5, name)
    probabilities = segmenter.probabilities(image, segmentation_box(coarse))
    mask = _main_person(probabilities > 0.5, name)
    rows = np.nonzero(mask.any(axis=1))[0]
    if rows[0] <= 1 or rows[-1] >= mask.shape[0] - 2:
        # Next to the photo's edge the model draws the person on up to it: segment again with the
        # edge pixels repeated beyond it, which stops at a head that is whole and runs on with one
        # the edge cuts.
        probabilities = segmenter.probabilities(image, segmentation_box(mask, clip=False))
        mask = _main_person(probabilities > 0.5, name)
    top, bottom = _check_framing(mask, name)
    found = _estimate_pose(image, mask, pose, top, bottom)
    if found.presence < 0.5 and not person_shaped(found, mask, top, bottom):
        raise MeasurementRejected(
            "no_person_detected",
            f"No whole person could be recognised in the {name} photo: stand upright on a plain background "
            "with all of your body in view.",
        )
    _check_sharpness(grey, mask, name)
    hips = (found.landmarks["left_hip"].x + found.landmarks["right_hip"].x) / 2
    return ViewAnalysis(image, probabilities, mask, found, float(top), float(bottom), float(hips))


def _estimate_pose(image: Image.Image, mask: np.ndarray, pose: PoseEstimator, top: int, bottom: int) -> Pose:
    """The pose in the square around the person; when the pose model finds no person there, once
    more on the mirrored photo (on some valid profiles it finds the person facing the other way
    only), its landmarks mirrored back (left and right swapped)."""
    crop = body_crop(mask)
    assert crop is not None
    found = pose.estimate(image, crop)
    if found.presence >= 0.5 or person_shaped(found, mask, top, bottom):
        return found
    width = image.size[0]
    left, crop_top, side = crop
    again = pose.estimate(ImageOps.mirror(image), (width - left - side, crop_top, side))
    swap = {"left_": "right_", "right_": "left_"}
    landmarks = {
        next((swap[p] + name[len(p) :] for p in swap if name.startswith(p)), name): replace(
            mark, x=width - mark.x
        )
        for name, mark in again.landmarks.items()
    }
    mirrored = Pose(again.presence, landmarks, found.crop)
    if mirrored.presence >= 0.5 or person_shaped(mirrored, mask, top, bottom):
        return mirrored
    return found


def person_shaped(found: Pose, mask: np.ndarray, top: int, bottom: int) -> bool:
    """Whether the landmarks lie on the silhouette as a standing person's do: nose, shoulders,
    hips, knees and ankles in that order from the top, the joints well apart and on the person's
    mask. The pose model's own presence score is low on some valid profile photos (on rendered
    profiles it fell under 0.5 for about one in ten); this is the evidence that a person, not an
    object, is in the photo when it is."""
    height = bottom - top
    points = []
    for joint in ("nose", "shoulder", "hip", "knee", "ankle"):
        names = [joint] if joint == "nose" else [f"left_{joint}", f"right_{joint}"]
        x = float(np.mean([found.landmarks[n].x for n in names]))
        y = float(np.mean([found.landmarks[n].y for n in names]))
        points.append((x, y))
    ys = [(y - top) / max(height, 1) for _, y in points]
    # in profile the pose model puts the nose low, close to the shoulders: only their order counts
    gaps = [b - a for a, b in itertools.pairwise(ys)]
    if ys[0] > 0.35 or gaps[0] <= 0 or min(gaps[1:]) < 0.1 or ys[-1] > 1.03:
        return False
    reach = max(2, round(0.03 * height))
    for x, y in points[1:]:
        r, c = round(np.clip(y, 0, mask.shape[0] - 1)), round(np.clip(x, 0, mask.shape[1] - 1))
        if not mask[max(r - reach, 0) : r + reach + 1, max(c - reach, 0) : c + reach + 1].any():
            return False
    return True


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
    check_profile(front, side)


# The side photo is refused when its shoulders are at least this share as far apart (relative to
# the person's height) as in the front photo. Turned 90°, the two shoulder landmarks nearly cover
# each other; on rendered profiles of every body band the share was at most 0.17, facing the
# camera it is 1, and turned 45° about 0.7.
PROFILE_MAX_SHOULDER_SHARE: Final = 0.5
# ... unless the pose model places one shoulder well behind the other (a profile it recognises):
# rendered profiles showed 0.3-0.7 of the height, photos facing the camera under 0.05.
PROFILE_MIN_SHOULDER_DEPTH: Final = 0.15


def check_profile(front: ViewAnalysis, side: ViewAnalysis) -> None:
    """Whether the side photo shows the person in profile, judged against their own front photo.

    Not from the side photo's shoulder spread alone: the pose model spreads the shoulders of a deep
    torso (a large chest or a round waist) further apart even in profile, so a fixed limit refused
    large bodies. The ratio to the front photo's spread is the same for every body; the shoulders'
    depth difference confirms a profile the pose model sees."""
    front_height, side_height = front.bottom - front.top, side.bottom - side.top
    front_spread = abs(front.lm("left_shoulder").x - front.lm("right_shoulder").x) / front_height
    side_spread = abs(side.lm("left_shoulder").x - side.lm("right_shoulder").x) / side_height
    depth = abs(side.lm("left_shoulder").z - side.lm("right_shoulder").z) / side_height
    if side_spread > PROFILE_MAX_SHOULDER_SHARE * front_spread and depth < PROFILE_MIN_SHOULDER_DEPTH:
        raise MeasurementRejected(
            "bad_pose",
            "The side photo must show you in profile: turn 90° so that one shoulder points at the camera.",
        )
