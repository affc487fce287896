"""Body measurements from a front and a side photo and the person's height.

Pipeline, per photo: decode (EXIF orientation applied) → person segmentation → full-body crop →
pose landmarks → quality checks. Then geometry on both: the pixel scale from the silhouette's
height, landmark-defined levels (chest, waist = narrowest torso level between chest and hips,
hips = widest, thigh, calf, ankle; bicep, forearm and wrist along the arm), front widths and side
depths at those levels, lengths from landmarks. A calibration (fitted by ``just train-body`` on
rendered bodies, shipped as ``models/body_calibration/calibration.json``) turns these raw
features into the 14 measurements, each with a confidence, plus a body-shape embedding.

Pure: bytes and arrays in, results out. Raises ``MeasurementRejected`` with one of
``FAILURE_CODES`` when the photos cannot be measured.
"""

from __future__ import annotations

import io
import json
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from inference.body import Landmark, PersonSegmenter, Pose, PoseEstimator, body_crop
from inference.manifest import MODELS_DIR, Manifest

MEASUREMENT_KEYS: Final[tuple[str, ...]] = (
    "ankle_cm", "arm_length_cm", "bicep_cm", "calf_cm", "chest_cm", "forearm_cm", "height_cm", "hip_cm",
    "leg_length_cm", "shoulder_breadth_cm", "shoulder_to_crotch_cm", "thigh_cm", "waist_cm", "wrist_cm",
)  # fmt: skip
FAILURE_CODES: Final = ("no_person_detected", "person_cut_off", "multiple_people", "low_quality", "bad_pose")
PROFILE_LEVELS: Final = 9  # front widths and side depths sampled at this many torso/leg levels
TORSO_LEVELS: Final = (-0.3, -0.15, 0.0, 0.15, 0.3, 0.42, 0.54, 0.66, 0.76, 0.84)
BODY_EMBEDDING_DIM: Final = len(MEASUREMENT_KEYS) + 2 * PROFILE_LEVELS
CALIBRATION_PATH: Final = MODELS_DIR / "body_calibration" / "calibration.json"
WORK_SIDE: Final = 1280  # photos are measured with their longer side at most this long
MIN_PERSON_PX: Final = 300  # a person shorter than this in the photo is too small to measure


class MeasurementRejected(Exception):
    """The photos cannot be measured; ``code`` is one of ``FAILURE_CODES``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class BodyResult:
    measurements: dict[str, float]  # cm, all of MEASUREMENT_KEYS
    confidence: dict[str, float]  # 0..1
    embedding: np.ndarray  # float32 (BODY_EMBEDDING_DIM,), compare with Euclidean distance
    model: str
    version: str
    timings_ms: dict[str, float]


@dataclass
class ViewAnalysis:
    """One photo, measured in pixels."""

    image: Image.Image
    probabilities: np.ndarray  # person probability per pixel
    mask: np.ndarray  # bool
    pose: Pose
    top: float  # first person row (top of the head)
    bottom: float  # last person row (lowest point of the feet)
    centre_x: float  # the body's centre line (hips), pixels

    def lm(self, name: str) -> Landmark:
        return self.pose.landmarks[name]

    def row_width(self, row: float, around_x: float) -> float:
        """Soft width (pixels) of the run of person pixels containing ``around_x`` in ``row``."""
        r = round(row)
        if not 0 <= r < self.mask.shape[0]:
            return 0.0
        line = self.mask[r]
        run = _run(line, round(np.clip(around_x, 0, len(line) - 1)))
        if run is None:
            return 0.0
        left, right = run
        p = self.probabilities[r]
        # fractional edges: the probability of the pixels just outside the run
        extra = (p[left - 1] if left > 0 else 0.0) + (p[right + 1] if right < len(line) - 1 else 0.0)
        return float(right - left + 1 + extra)

    def band_width(self, row: float, around_x: float, half_band: int = 4) -> float:
        values = [self.row_width(row + k, around_x) for k in range(-half_band, half_band + 1)]
        return float(np.median(values))

    def perpendicular_width(
        self, x: float, y: float, dx: float, dy: float, max_half: float = 1e9, outer_from: float | None = None
    ) -> float:
        """Soft length (pixels) of the person run through (x, y) across the direction (dx, dy):
        the person probability summed along the line, so the width does not jump by whole pixels.
        A side reaching further than ``max_half`` from (x, y) has run into something else (the
        torso, for an arm): the other side's half is doubled instead. With ``outer_from``, only the
        half facing away from that x is measured (and doubled)."""
        norm = math.hypot(dx, dy) or 1.0
        px, py = -dy / norm, dx / norm
        step = 0.25
        steps = np.arange(-200, 200 + step, step)
        xs, ys = x + steps * px, y + steps * py
        height, width = self.mask.shape
        rows = np.clip(np.round(ys).astype(int), 0, height - 1)
        inside = self.mask[rows, np.clip(np.round(xs).astype(int), 0, width - 1)]
        centre = len(steps) // 2
        run = _run(inside, centre)
        if run is None:
            return 0.0
        lo, hi = run
        margin = int(2 / step)  # the soft edges, two pixels beyond the run on each side
        lo, hi = max(0, lo - margin), min(len(steps) - 1, hi + margin)
        soft = _bilinear(self.probabilities, xs, ys) * step
        low_half, high_half = float(soft[lo:centre].sum()), float(soft[centre : hi + 1].sum())
        if outer_from is not None:
            # the half on the side away from ``outer_from`` (an x), doubled
            return 2 * (high_half if px * (x - outer_from) > 0 else low_half)
        if (centre - lo) * step > max_half + 2:
            return 2 * high_half
        if (hi - centre) * step > max_half + 2:
            return 2 * low_half
        return low_half + high_half


def _run(inside: np.ndarray, at: int) -> tuple[int, int] | None:
    """First and last index of the run of True values through ``at``; None if ``at`` is False."""
    if not inside[at]:
        return None
    outside = np.flatnonzero(~inside)
    before, after = outside[outside < at], outside[outside > at]
    return (int(before[-1]) + 1 if len(before) else 0, int(after[0]) - 1 if len(after) else len(inside) - 1)


def _bilinear(image: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    height, width = image.shape
    xs, ys = np.clip(xs, 0, width - 1.001), np.clip(ys, 0, height - 1.001)
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = xs - x0, ys - y0
    top = image[y0, x0] * (1 - fx) + image[y0, x0 + 1] * fx
    bottom = image[y0 + 1, x0] * (1 - fx) + image[y0 + 1, x0 + 1] * fx
    values: np.ndarray = top * (1 - fy) + bottom * fy
    return values


@dataclass(frozen=True)
class Calibration:
    """Raw features → measurements: one linear model per measurement, fitted on rendered bodies."""

    version: str
    scale: dict[str, dict[str, list[float]]]  # per view: floor and stature, linear in (1, heel, ankle ratio)
    models: dict[str, dict[str, Any]]  # key -> {"features": [...], "coefficients": [...], "p90": x, ...}
    population: dict[str, list[float]]  # embedding feature -> [mean, sd]
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path = CALIBRATION_PATH) -> Calibration:
        data = json.loads(path.read_text())
        return cls(
            version=data["version"], scale=data["scale"], models=data["models"],
            population=data["population"], raw=data,
        )  # fmt: skip

    @classmethod
    def identity(cls) -> Calibration:
        """No correction: raw features as they are (used while fitting a calibration)."""
        return cls(version="uncalibrated", scale={}, models={}, population={})


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
            not _run_contains(
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


def _run_contains(mask: np.ndarray, row: float, x: float, other_x: float) -> bool:
    r = round(row)
    lo, hi = sorted((round(x), round(other_x)))
    lo, hi = max(lo, 0), min(hi, mask.shape[1] - 1)
    return bool(mask[r, lo : hi + 1].all())


def _crotch_row(view: ViewAnalysis) -> float:
    """Top of the gap between the legs, scanning up from the knees."""
    knee_y = (view.lm("left_knee").y + view.lm("right_knee").y) / 2
    hip_y = (view.lm("left_hip").y + view.lm("right_hip").y) / 2
    x = round(view.centre_x)
    row = round(knee_y)
    while row > hip_y - 0.05 * (view.bottom - view.top) and not view.mask[row, x]:
        row -= 1
    return float(row)


def _scale_ratios(view: ViewAnalysis) -> tuple[float, float]:
    height = view.bottom - view.top
    heel = (view.lm("left_heel").y + view.lm("right_heel").y) / 2
    ankle = (view.lm("left_ankle").y + view.lm("right_ankle").y) / 2
    return (heel - view.top) / height, (ankle - view.top) / height


class _Geometry:
    """Both photos in centimetres: heights above the floor map to rows of each photo."""

    def __init__(self, front: ViewAnalysis, side: ViewAnalysis, height_cm: float, cal: Calibration) -> None:
        self.front, self.side, self.height = front, side, height_cm
        self.features: dict[str, float] = {"height": height_cm}
        scales, floors = {}, {}
        for name, view in (("front", front), ("side", side)):
            heel, ankle = _scale_ratios(view)
            span = view.bottom - view.top
            x = np.array([1.0, heel, ankle])
            fitted = cal.scale.get(name, {"floor": [0.0, 0.0, 0.0], "stature": [1.0, 0.0, 0.0]})
            # the floor under the body's mid-plane sits above the lowest silhouette pixel (the
            # toes reach lower in the picture), the top of the head below the top of the hair
            floors[name] = view.bottom - span * float(x @ np.array(fitted["floor"]))
            scales[name] = span * float(x @ np.array(fitted["stature"])) / height_cm  # pixels per cm
            self.features[f"{name}_heel_ratio"], self.features[f"{name}_ankle_ratio"] = heel, ankle
        self.f_scale, self.s_scale, self.f_floor = scales["front"], scales["side"], floors["front"]
        # The side photo's floor is uncertain (one foot is nearer the camera than the other), its
        # top is not: its levels are placed from the top of the head, with the hair measured in
        # the front photo.
        self.hair = (self.f_floor - height_cm * self.f_scale - front.top) / self.f_scale
        self.features.update(
            front_floor_row=self.f_floor,
            front_px_per_cm=self.f_scale,
            side_px_per_cm=self.s_scale,
            hair=self.hair,
        )

    def f_row(self, z: float) -> float:
        return self.f_floor - z * self.f_scale

    def s_row(self, z: float) -> float:
        return self.side.top + (self.height + self.hair - z) * self.s_scale

    def z_of(self, joint: str) -> float:
        """Height above the floor of a pair of front landmarks (mean of left and right)."""
        row = (self.front.lm(f"left_{joint}").y + self.front.lm(f"right_{joint}").y) / 2
        return (self.f_floor - row) / self.f_scale

    def torso(self, z: float) -> tuple[float, float]:
        """Front width and side depth of the torso at height z (cm)."""
        return (self.front.band_width(self.f_row(z), self.front.centre_x) / self.f_scale,
                self.side.band_width(self.s_row(z), self.side.centre_x) / self.s_scale)  # fmt: skip

    def depth(self, z: float) -> float:
        return self.side.band_width(self.s_row(z), self.side.centre_x, 1) / self.s_scale

    def leg_width(self, z: float) -> float:
        """Mean front width of the two legs at height z, each found along its hip-knee-ankle line."""
        row = self.f_row(z)
        widths = []
        for side_name in ("left", "right"):
            hip, knee, ankle = (self.front.lm(f"{side_name}_{j}") for j in ("hip", "knee", "ankle"))
            a, b = (hip, knee) if row < knee.y else (knee, ankle)
            t = (row - a.y) / max(b.y - a.y, 1.0)
            widths.append(self.front.band_width(row, a.x + t * (b.x - a.x), 1))
        return float(np.mean(widths)) / self.f_scale

    def arms_clear(self, z: float) -> bool:
        """Background between each upper arm and the body's centre line at height z."""
        row = self.f_row(z)
        for side_name in ("left", "right"):
            shoulder, elbow = self.front.lm(f"{side_name}_shoulder"), self.front.lm(f"{side_name}_elbow")
            t = (row - shoulder.y) / max(elbow.y - shoulder.y, 1.0)
            if _run_contains(
                self.front.mask, row, shoulder.x + t * (elbow.x - shoulder.x), self.front.centre_x
            ):
                return False
        return True

    def add_girth(self, name: str, z: float, width: float, depth: float) -> None:
        self.features.update({f"{name}_z": z, f"{name}_w": width, f"{name}_d": depth,
                              f"{name}_ellipse": _ellipse(width, depth)})  # fmt: skip


def raw_features(
    front: ViewAnalysis, side: ViewAnalysis, height_cm: float, cal: Calibration
) -> dict[str, float]:
    """Everything the calibration may use, in cm (widths, depths, lengths, levels)."""
    g = _Geometry(front, side, height_cm, cal)
    shoulder_z, hip_z, knee_z, ankle_z = (g.z_of(j) for j in ("shoulder", "hip", "knee", "ankle"))
    crotch_z = (g.f_floor - _crotch_row(front)) / g.f_scale
    chest_z = _torso_features(g, shoulder_z, hip_z, crotch_z)
    _leg_features(g, crotch_z, knee_z, ankle_z)
    _arm_features(g)
    shoulder_row = g.f_row(shoulder_z)
    g.features.update(
        shoulder_landmarks=abs(front.lm("left_shoulder").x - front.lm("right_shoulder").x) / g.f_scale,
        shoulder_silhouette=front.band_width(shoulder_row, front.centre_x) / g.f_scale,
        shoulder_z=shoulder_z,
        crotch_z=crotch_z,
        hip_z=hip_z,
        torso_length=shoulder_z - crotch_z,
    )
    # the width/depth profile for the embedding: evenly spaced from the ankles to the chest
    for i, z in enumerate(np.linspace(ankle_z + 0.05 * height_cm, chest_z, PROFILE_LEVELS)):
        w = g.leg_width(float(z)) if z < crotch_z else g.torso(float(z))[0]
        g.features[f"profile_w{i}"] = w / height_cm
        g.features[f"profile_d{i}"] = g.depth(float(z)) / height_cm
    return g.features


def _torso_features(g: _Geometry, shoulder_z: float, hip_z: float, crotch_z: float) -> float:
    """Chest, waist (narrowest) and hip (widest) levels and a fixed-level profile; returns the chest level."""
    height = g.height
    # the chest: the highest level below the armpits where the arms are clear of the torso
    chest_z = shoulder_z - 0.06 * height
    while chest_z > shoulder_z - 0.13 * height and not g.arms_clear(chest_z):
        chest_z -= 0.5
    g.features["chest_drop"] = (shoulder_z - chest_z) / height
    # the side depth is not affected by the arms: also take it at the usual chest level
    g.features["chest_d_fixed"] = g.torso(shoulder_z - 0.09 * height)[1]
    zs = np.arange(hip_z - 0.03 * height, chest_z, 0.5)
    widths = np.array([g.torso(float(z))[0] for z in zs])
    upper = (zs > hip_z + 0.25 * (chest_z - hip_z)) & (zs < chest_z - 0.1 * (chest_z - hip_z))
    waist_z = float(zs[upper][np.argmin(widths[upper])]) if upper.any() else (hip_z + chest_z) / 2
    lower = (zs > crotch_z + 0.01 * height) & (zs < waist_z - 0.25 * (waist_z - crotch_z))
    hip_level = float(zs[lower][np.argmax(widths[lower])]) if lower.any() else hip_z
    for name, z in (("chest", chest_z), ("waist", waist_z), ("hip", hip_level)):
        g.add_girth(name, z, *g.torso(z))
    # the torso at fixed places between the hip and shoulder landmarks (t = 0 at the hips, 1 at
    # the shoulders): sturdier than any single "narrowest" or "widest" level
    for i, t in enumerate(TORSO_LEVELS):
        w, d = g.torso(hip_z + t * (shoulder_z - hip_z))
        g.features.update({f"torso_w{i}": w, f"torso_d{i}": d, f"torso_e{i}": _ellipse(w, d)})
    return chest_z


def _leg_features(g: _Geometry, crotch_z: float, knee_z: float, ankle_z: float) -> None:
    """Thigh just below the crotch, calf at the widest below the knee, ankle at the narrowest."""
    calf_zs = np.arange(ankle_z + 0.3 * (knee_z - ankle_z), knee_z - 0.15 * (knee_z - ankle_z), 0.5)
    ankle_zs = np.arange(ankle_z + 0.01 * g.height, ankle_z + 0.06 * g.height, 0.5)
    calf_w = [g.leg_width(float(z)) for z in calf_zs]
    ankle_w = [g.leg_width(float(z)) for z in ankle_zs]
    calf_z = float(calf_zs[int(np.argmax(calf_w))]) if calf_w else knee_z * 0.7
    ankle_level = float(ankle_zs[int(np.argmin(ankle_w))]) if ankle_w else ankle_z + 3
    for name, z in (("thigh", crotch_z - 0.015 * g.height), ("calf", calf_z), ("ankle", ankle_level)):
        g.add_girth(name, z, g.leg_width(z), g.depth(z))


def _arm_features(g: _Geometry) -> None:
    """Arm widths perpendicular to the bone (bicep, forearm, wrist) and the arm's length."""
    arm: dict[str, list[float]] = {"bicep": [], "forearm": [], "wrist": [], "length": []}
    for side_name in ("left", "right"):
        sh, el, wr = (g.front.lm(f"{side_name}_{j}") for j in ("shoulder", "elbow", "wrist"))
        # no arm is wider than 8-9% of the body's height: a run reaching further from the bone
        # has met the torso, and the arm's other half is doubled instead
        reach = {"bicep": 0.04, "forearm": 0.045, "wrist": 0.045}
        for name, a, b, t in (("bicep", sh, el, 0.55), ("forearm", el, wr, 0.25), ("wrist", el, wr, 0.88)):
            widths = []
            for at in (t - 0.06, t, t + 0.06):  # the median of three cuts steadies a thin limb
                x, y = a.x + at * (b.x - a.x), a.y + at * (b.y - a.y)
                max_half = reach[name] * g.height * g.f_scale
                widths.append(g.front.perpendicular_width(x, y, b.x - a.x, b.y - a.y, max_half))
            arm[name].append(float(np.median(widths)) / g.f_scale)
        length = math.dist((sh.x, sh.y), (el.x, el.y)) + math.dist((el.x, el.y), (wr.x, wr.y))
        arm["length"].append(length / g.f_scale)
    for name, values in arm.items():
        g.features[f"arm_{name}"] = float(np.mean(values))


def _ellipse(width: float, depth: float) -> float:
    a, b = width / 2, depth / 2
    if a + b <= 0:
        return 0.0
    h = ((a - b) / (a + b)) ** 2
    return math.pi * (a + b) * (1 + 3 * h / (10 + math.sqrt(4 - 3 * h)))


def apply_calibration(
    features: dict[str, float], cal: Calibration
) -> tuple[dict[str, float], dict[str, float]]:
    values: dict[str, float] = {"height_cm": features["height"]}
    confidence: dict[str, float] = {"height_cm": 1.0}
    for key, spec in cal.models.items():
        x = np.array([1.0] + [features[name] for name in spec["features"]])
        values[key] = round(float(x @ np.array(spec["coefficients"])), 1)
        inside = all(
            lo <= features[name] <= hi
            for name, (lo, hi) in zip(spec["features"], spec["ranges"], strict=True)
        )
        relative = spec["p90"] / max(abs(values[key]), 1.0)
        confidence[key] = round(float(np.clip(1 - 4 * relative, 0.05, 0.99) * (1.0 if inside else 0.6)), 2)
    return values, confidence


def embedding(values: dict[str, float], features: dict[str, float], cal: Calibration) -> np.ndarray:
    """Standardised measurements and width/depth profile: similar bodies are close in Euclidean
    distance (each component is a z-score, divided by sqrt(dim) so typical norms are about 1)."""
    names = [*MEASUREMENT_KEYS, *(f"profile_w{i}" for i in range(PROFILE_LEVELS)),
             *(f"profile_d{i}" for i in range(PROFILE_LEVELS))]  # fmt: skip
    source = {**features, **values}
    vector = []
    for name in names:
        mean, sd = cal.population.get(name, [0.0, 1.0])
        vector.append((source[name] - mean) / (sd or 1.0))
    out = np.clip(np.array(vector, dtype=np.float32), -6, 6) / math.sqrt(len(names))
    return out.astype(np.float32)


class BodyMeasurer:
    """The whole measurement: photos + height → measurements, confidences, embedding."""

    name = "body-measure"

    def __init__(self, segmenter: PersonSegmenter, pose: PoseEstimator, calibration: Calibration) -> None:
        self.segmenter = segmenter
        self.pose = pose
        self.calibration = calibration

    @property
    def version(self) -> str:
        return self.calibration.version

    def analyse(
        self, front: bytes, side: bytes, timings: dict[str, float] | None = None
    ) -> tuple[ViewAnalysis, ViewAnalysis]:
        timings = timings if timings is not None else {}
        started = time.perf_counter()
        front_image, side_image = decode_photo(front), decode_photo(side)
        timings["decode"] = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        front_view = analyse_view(front_image, self.segmenter, self.pose, "front")
        side_view = analyse_view(side_image, self.segmenter, self.pose, "side")
        check_pose(front_view, side_view)
        timings["models"] = (time.perf_counter() - started) * 1000
        return front_view, side_view

    def features(self, front: bytes, side: bytes, height_cm: float) -> dict[str, float]:
        front_view, side_view = self.analyse(front, side)
        return raw_features(front_view, side_view, height_cm, self.calibration)

    def measure(self, front: bytes, side: bytes, height_cm: float) -> BodyResult:
        timings: dict[str, float] = {}
        front_view, side_view = self.analyse(front, side, timings)
        started = time.perf_counter()
        features = raw_features(front_view, side_view, height_cm, self.calibration)
        values, confidence = apply_calibration(features, self.calibration)
        vector = embedding(values, features, self.calibration)
        timings["geometry"] = (time.perf_counter() - started) * 1000
        return BodyResult(
            measurements={k: values[k] for k in MEASUREMENT_KEYS},
            confidence={k: confidence[k] for k in MEASUREMENT_KEYS},
            embedding=vector,
            model=self.name,
            version=self.version,
            timings_ms={k: round(v, 1) for k, v in timings.items()},
        )


def load_body_measurer(
    manifests: dict[str, Manifest], *, intra_op_threads: int = 2, calibration: Path = CALIBRATION_PATH,
    segmenter: PersonSegmenter | None = None, pose: PoseEstimator | None = None,
) -> BodyMeasurer:  # fmt: skip
    """The measurer over the shipped models (pass already-loaded sessions to share them)."""
    return BodyMeasurer(
        segmenter or PersonSegmenter(manifests["person_segmentation"], intra_op_threads=intra_op_threads),
        pose or PoseEstimator(manifests["pose_landmarks"], intra_op_threads=intra_op_threads),
        Calibration.load(calibration),
    )
