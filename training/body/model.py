"""A parametric body built from stacked horizontal cross-sections.

Superellipse sections for the torso, neck and head (each level with its own width, front depth,
back depth and squareness, so that the section's perimeter at the chest, waist and hip levels
equals the body's girth), and tapered elliptical tubes for the legs, arms and hands whose
perpendicular sections have the body's limb girths. Feet are ellipsoids.
World frame: x to the subject's left, y forward (out of the chest), z up from the floor, in cm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from training.body.anthropometry import Body
from training.body.scene import Look, Pose


def superellipse_perimeter(a: float, front: float, back: float, n: float) -> float:
    """Perimeter of a section |x/a|^n + |y/b|^n = 1 with b = front for y > 0, back for y < 0."""
    theta = np.linspace(0.0, 2 * np.pi, 721)
    c, s = np.cos(theta), np.sin(theta)
    x = a * np.sign(c) * np.abs(c) ** (2 / n)
    y = np.where(s > 0, front, back) * np.sign(s) * np.abs(s) ** (2 / n)
    return float(np.sum(np.hypot(np.diff(x), np.diff(y))))


def ellipse_perimeter(a: float, b: float) -> float:
    """Ramanujan's second approximation (error < 1e-9 relative for these shapes)."""
    h = ((a - b) / (a + b)) ** 2
    return math.pi * (a + b) * (1 + 3 * h / (10 + math.sqrt(4 - 3 * h)))


# Materials: what a pixel shows (the shading colours are in this order)
BACKGROUND, SKIN, TOP, BOTTOM, HAIR, SHOES, FEATURE, LIPS = range(8)


@dataclass
class Tube:
    """A tapered limb (leg, arm, hand): elliptical sections along an axis in the coronal plane."""

    start: tuple[float, float]  # (x, z) on the axis
    end: tuple[float, float]
    y: float  # depth of the axis
    s: np.ndarray  # positions along the axis (0..1) where the radii are given
    half_width: np.ndarray  # in the body's coronal plane
    half_depth: np.ndarray  # front-back
    cut: float  # clothing covers s < cut
    clothing: int  # the material before the cut (skin after it)
    ease: float  # clothing thickness


@dataclass
class Stack:
    """A solid of horizontal superellipse sections."""

    z: np.ndarray
    half_width: np.ndarray
    front: np.ndarray
    back: np.ndarray
    centre_y: np.ndarray
    n: np.ndarray
    material: np.ndarray  # per z key
    ease: np.ndarray


@dataclass
class BodyModel:
    """The body's solids and where its joints are (world frame, cm)."""

    body: Body
    pose: Pose
    stacks: list[Stack] = field(default_factory=list)
    tubes: list[Tube] = field(default_factory=list)
    feet: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # (centre, radii)
    landmarks: dict[str, tuple[float, float, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Heights:
    """Heights above the floor (cm) that the body is built around."""

    height: float
    crotch: float
    shoulder: float
    chin: float
    hip_z: float
    chest_z: float
    waist_z: float

    @classmethod
    def of(cls, body: Body) -> _Heights:
        m = body.measurements
        height = m["height_cm"]
        crotch = m["leg_length_cm"]
        shoulder = crotch + m["shoulder_to_crotch_cm"]
        chin = height - body.head_height_cm
        hip_z = crotch + 0.045 * height
        chest_z = shoulder - 0.10 * height
        waist_z = hip_z + 0.47 * (chest_z - hip_z)
        return cls(height, crotch, shoulder, chin, hip_z, chest_z, waist_z)


def build_model(body: Body, pose: Pose, look: Look | None = None) -> BodyModel:
    """The body's geometry. Section girths equal ``body.measurements`` at their levels."""
    look = look or Look()
    heights = _Heights.of(body)
    model = BodyModel(body=body, pose=pose)
    hip = _add_torso(model, heights, look)
    _add_neck_and_head(model, heights)
    _add_legs(model, heights, hip, look)
    _add_arms(model, heights, look)
    if pose.selfie:
        _raise_arm_to_the_face(model, heights, look)
    return model


def _section(girth: float, ratio: float, shift: float, exponent: float) -> tuple[float, float, float]:
    unit = superellipse_perimeter(1.0, ratio * (1 + shift), ratio * (1 - shift), exponent)
    a = girth / unit
    return a, ratio * (1 + shift) * a, ratio * (1 - shift) * a


def _add_torso(model: BodyModel, heights: _Heights, look: Look) -> tuple[float, float, float]:
    """The torso's stack, from below the crotch to the neck; returns the hip section."""
    body = model.body
    m = body.measurements
    height, crotch, shoulder = heights.height, heights.crotch, heights.shoulder
    hip_z, chest_z, waist_z = heights.hip_z, heights.chest_z, heights.waist_z
    n = body.squareness
    belly = float(np.clip(body.belly / 30.0, -0.05, 0.2))
    hip = _section(m["hip_cm"], body.hip_depth_ratio, -0.12, n)
    waist = _section(m["waist_cm"], body.waist_depth_ratio, belly, n)
    chest = _section(m["chest_cm"], body.chest_depth_ratio, 0.04 if body.sex == "male" else 0.12, n)
    neck_r = body.neck_cm / (2 * math.pi)
    half_breadth = m["shoulder_breadth_cm"] / 2
    torso_keys = [
        # z, half-width, front, back, n
        # below the crotch the buttocks round off into the thighs (narrow from the front)
        (crotch - 7.0, hip[0] * 0.3, hip[1] * 0.3, hip[2] * 0.6, 2.0),
        (crotch - 3.0, hip[0] * 0.5, hip[1] * 0.5, hip[2] * 0.88, 2.0),
        (crotch + 1.0, hip[0] * 0.9, hip[1] * 0.85, hip[2] * 0.95, n),
        (hip_z, *hip, n),
        (waist_z, *waist, n),
        (chest_z, *chest, n),
        (chest_z + 0.035 * height, chest[0] * 1.0, chest[1] * 0.92, chest[2] * 0.95, n),
        (shoulder - 1.5, half_breadth - 1.0, chest[1] * 0.62, chest[2] * 0.75, 2.2),
        (shoulder + 0.5, half_breadth - 2.5, chest[1] * 0.45, chest[2] * 0.6, 2.0),
        (shoulder + 0.03 * height, neck_r * 1.15, neck_r, neck_r, 2.0),
    ]
    keys = np.array(torso_keys)
    material = np.full(len(keys), TOP)
    material[:4] = BOTTOM  # trousers up to the waist
    ease = np.full(len(keys), look.ease_cm)
    model.stacks.append(
        Stack(keys[:, 0], keys[:, 1], keys[:, 2], keys[:, 3], np.zeros(len(keys)), keys[:, 4], material, ease)
    )
    return hip


def _add_neck_and_head(model: BodyModel, heights: _Heights) -> None:
    """The neck, the head and the hair over the head's top and back."""
    body = model.body
    height, shoulder, chin = heights.height, heights.shoulder, heights.chin
    neck_r = body.neck_cm / (2 * math.pi)
    neck_z = np.array([shoulder - 2.0, chin + 3.0])
    model.stacks.append(
        Stack(neck_z, np.full(2, neck_r), np.full(2, neck_r), np.full(2, neck_r), np.full(2, -0.5),
              np.full(2, 2.0), np.array([SKIN, SKIN]), np.zeros(2))
    )  # fmt: skip
    # head: an ellipsoid from the chin to the top of the head, hair over its top and back
    head_c = height - body.head_height_cm / 2
    half_h = body.head_height_cm / 2
    t = np.linspace(-1.0, 1.0, 41)
    scale = np.sqrt(np.clip(1 - t**2, 0.0, 1.0))
    head_z = head_c + t * half_h
    model.stacks.append(
        Stack(head_z, 7.6 * scale, 9.8 * scale, 9.6 * scale, np.full(41, 0.6), np.full(41, 2.0),
              np.full(41, SKIN), np.zeros(41))
    )  # fmt: skip
    hair_half = half_h + body.hair_cm / 2
    hair_c = head_c + body.hair_cm / 2 + 0.8
    hair_z = hair_c + t * hair_half
    hair = Stack(
        hair_z, (7.6 + body.hair_cm * 0.6) * scale, (9.0 + body.hair_cm * 0.5) * scale,
        (9.8 + body.hair_cm) * scale, np.full(41, 0.0), np.full(41, 2.0), np.full(41, HAIR), np.zeros(41),
    )  # fmt: skip
    # only the part above the hairline (front) / the back of the head is hair
    hair.material = np.where(hair_z > height - 0.3 * body.head_height_cm, HAIR, BACKGROUND)
    model.stacks.append(hair)


def _add_legs(model: BodyModel, heights: _Heights, hip: tuple[float, float, float], look: Look) -> None:
    """Both legs (tapered tubes from the hips to the ankles) and the feet."""
    m = model.body.measurements
    pose = model.pose
    height, crotch, hip_z = heights.height, heights.crotch, heights.hip_z
    thigh_r = _tube_radii(m["thigh_cm"], 1.05)
    knee_girth = 0.45 * m["thigh_cm"] + 0.3 * m["calf_cm"]
    top_z = crotch + 0.03 * height
    ankle_z = 0.045 * height
    # the thighs' outer edges stay inside the hips (heavier thighs touch below the crotch)
    hip_x = min(thigh_r[0] * 0.98, hip[0] * 0.97 - thigh_r[0] * 1.03)
    for side in (1.0, -1.0):
        start = (side * hip_x, top_z)
        end = (side * (hip_x + pose.leg_spread_cm), ankle_z)

        def s_at(z: float, start_z: float = top_z) -> float:
            return (start_z - z) / (start_z - ankle_z)

        levels = [
            (0.0, m["thigh_cm"] * 1.06, 1.05),
            (s_at(crotch - 0.012 * height), m["thigh_cm"], 1.05),
            (s_at(0.285 * height), knee_girth, 1.0),
            (s_at(0.2 * height), m["calf_cm"], 1.12),
            (s_at(0.065 * height), m["ankle_cm"], 1.2),
            (1.0, m["ankle_cm"] * 1.1, 1.15),
        ]
        s = np.array([lvl[0] for lvl in levels])
        radii = np.array([_tube_radii(g, r) for _, g, r in levels])
        crotch_s = s_at(crotch)
        cut = crotch_s + look.trouser * (1 - crotch_s)
        model.tubes.append(Tube(start, end, 0.0, s, radii[:, 0], radii[:, 1], cut, BOTTOM, look.ease_cm))
        foot_len = 0.152 * height
        centre = np.array([end[0] + side * 0.8, -6.0 + foot_len / 2, 3.2])
        model.feet.append((centre, np.array([4.6, foot_len / 2, 4.0])))
        name = "right" if side > 0 else "left"  # the body faces the camera along -y: +x is its right
        model.landmarks[f"{name}_ankle"] = (end[0], 0.0, ankle_z)
        model.landmarks[f"{name}_hip"] = (start[0], 0.0, hip_z)


def _add_arms(model: BodyModel, heights: _Heights, look: Look) -> None:
    """Both arms and hands: the axis starts inside the shoulder and ends at the wrist,
    |acromion - wrist| = arm length."""
    m = model.body.measurements
    height, shoulder = heights.height, heights.shoulder
    half_breadth = m["shoulder_breadth_cm"] / 2
    angle = math.radians(model.pose.arm_angle_deg)
    direction = np.array([math.sin(angle), -math.cos(angle)])
    for side in (1.0, -1.0):
        acromion = np.array([side * half_breadth, shoulder])
        joint = np.array([side * (half_breadth - 1.5), shoulder - 4.0])
        d = direction * np.array([side, 1.0])
        # |joint + t d - acromion| = arm length
        rel = joint - acromion
        b = float(rel @ d)
        c = float(rel @ rel) - m["arm_length_cm"] ** 2
        t_wrist = -b + math.sqrt(b * b - c)
        wrist = joint + t_wrist * d
        elbow_s = 0.55
        levels = [
            (0.0, m["bicep_cm"] * 1.1, 1.0),
            (0.28, m["bicep_cm"], 0.95),
            (elbow_s, 0.46 * (m["bicep_cm"] + m["forearm_cm"]), 1.0),
            (elbow_s + 0.12, m["forearm_cm"], 1.18),
            (1.0, m["wrist_cm"], 1.35),
        ]
        s = np.array([lvl[0] for lvl in levels])
        radii = np.array([_tube_radii(g, r) for _, g, r in levels])
        model.tubes.append(
            Tube((joint[0], joint[1]), (wrist[0], wrist[1]), 0.0, s, radii[:, 0], radii[:, 1], look.sleeve,
                 TOP, look.ease_cm)
        )  # fmt: skip
        hand_end = wrist + d * 0.108 * height
        model.tubes.append(
            Tube((wrist[0], wrist[1]), (hand_end[0], hand_end[1]), 0.0, np.array([0.0, 0.45, 1.0]),
                 np.array([1.7, 1.9, 1.2]), np.array([3.6, 4.4, 3.0]), -1.0, SKIN, 0.0)
        )  # fmt: skip
        name = "right" if side > 0 else "left"  # the body faces the camera along -y: +x is its right
        model.landmarks[f"{name}_shoulder"] = (joint[0], 0.0, joint[1])
        elbow = joint + elbow_s * t_wrist * d
        model.landmarks[f"{name}_elbow"] = (elbow[0], 0.0, elbow[1])
        model.landmarks[f"{name}_wrist"] = (wrist[0], 0.0, wrist[1])


def _raise_arm_to_the_face(model: BodyModel, heights: _Heights, look: Look) -> None:
    """A mirror selfie: the right arm (the first drawn) hangs from the shoulder to an elbow at the
    side, the forearm rises in front of the chest and the hand holds a phone before the face."""
    m = model.body.measurements
    joint = np.array([m["shoulder_breadth_cm"] / 2 - 1.5, heights.shoulder - 4.0])
    elbow = joint + np.array([3.0, -0.55 * m["arm_length_cm"]])
    wrist = np.array([4.0, heights.chin - 2.0])
    front = m["chest_cm"] / 2 / math.pi * 1.4 + 6.0  # clear of the chest
    upper = np.array([0.0, 1.0])
    radii = np.array([_tube_radii(g, 1.0) for g in (m["bicep_cm"] * 1.1, m["bicep_cm"])])
    forearm = np.array([_tube_radii(g, 1.18) for g in (m["forearm_cm"], m["wrist_cm"])])
    first = len(model.tubes) - 4  # the arms are drawn last: right arm, right hand, left arm, left hand
    model.tubes[first : first + 2] = [
        Tube((joint[0], joint[1]), (elbow[0], elbow[1]), 0.0, upper, radii[:, 0], radii[:, 1], 1.0, TOP,
             look.ease_cm),
        Tube((elbow[0], elbow[1]), (wrist[0], wrist[1]), front, upper, forearm[:, 0], forearm[:, 1], 1.0, TOP,
             look.ease_cm),
        Tube((wrist[0], wrist[1]), (1.0, wrist[1] + 8.0), front + 2.0, np.array([0.0, 1.0]),
             np.array([1.9, 1.6]), np.array([4.0, 3.4]), -1.0, SKIN, 0.0),
        # the phone: 7.5 x 15 cm, 1 cm thick, held upright before the face
        Tube((-1.0, heights.chin - 1.0), (-1.0, heights.chin + 14.0), front + 4.0, np.array([0.0, 1.0]),
             np.array([3.75, 3.75]), np.array([0.5, 0.5]), 1.0, SHOES, 0.0),
    ]  # fmt: skip
    model.landmarks["right_elbow"] = (elbow[0], 0.0, elbow[1])
    model.landmarks["right_wrist"] = (wrist[0], front, wrist[1])


def _tube_radii(girth: float, depth_ratio: float) -> tuple[float, float]:
    unit = ellipse_perimeter(1.0, depth_ratio)
    half_width = girth / unit
    return half_width, half_width * depth_ratio
