"""Both photos in centimetres: landmark-defined levels, widths, depths and lengths (the raw
features the calibration turns into measurements)."""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from inference.body_measure.calibration import PROFILE_LEVELS, Calibration
from inference.body_measure.view import ViewAnalysis, run_contains

TORSO_LEVELS: Final = (-0.3, -0.15, 0.0, 0.15, 0.3, 0.42, 0.54, 0.66, 0.76, 0.84)


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
            if run_contains(
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
