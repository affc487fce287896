"""Photo-like renders of a parametric body, front and side, with their exact silhouettes.

The body is built from stacked horizontal cross-sections: superellipse sections for the torso,
neck and head (each level with its own width, front depth, back depth and squareness, so that the
section's perimeter at the chest, waist and hip levels equals the body's girth), and tapered
elliptical tubes for the legs, arms and hands whose perpendicular sections have the body's limb
girths. Feet are ellipsoids ray-cast exactly, so they show the perspective of a real photo (the
toes reach lower in the picture than the heels).

Each pixel's ray is intersected with the body's mid-plane (the plane through the body that faces
the camera); the sections are evaluated there. For bodies 20-35 cm deep photographed from 2-3.5 m
the silhouette this gives differs from exact ray casting by well under a pixel.

A render has lighting (Lambertian, a random light), skin tone, fitted clothing that adds a little
ease, hair, a plain wall and floor of random colours with a soft shadow, camera distance, height,
focal length, pitch and roll, A-pose jitter, sensor noise, defocus and JPEG artefacts.
World frame: x to the subject's left, y forward (out of the chest), z up from the floor, in cm.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from PIL import Image, ImageFilter

from training.body.anthropometry import Body

View = Literal["front", "side"]

SKIN_TONES = np.array(
    [(247, 214, 190), (234, 189, 157), (216, 162, 125), (190, 130, 95), (160, 104, 72), (120, 78, 54),
     (92, 58, 40), (66, 42, 30)], dtype=np.float32,
)  # fmt: skip
HAIR_COLOURS = np.array(
    [(20, 16, 14), (60, 40, 26), (110, 74, 40), (196, 160, 104), (140, 60, 30)], np.float32
)


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


@dataclass(frozen=True)
class Pose:
    arm_angle_deg: float = 24.0  # each arm's angle from the vertical, outward
    leg_spread_cm: float = 6.0  # extra distance of each ankle from the centre line
    mirrored: bool = False  # the side view shows the subject's right side instead of the left


@dataclass(frozen=True)
class Camera:
    width: int = 720
    height: int = 1280
    distance_cm: float = 260.0  # camera to the body's mid-plane
    height_cm: float = 110.0  # camera above the floor
    fill: float = 0.82  # the person's height as a fraction of the image height (sets the focal length)
    pitch_deg: float = 0.0  # tilt away from aiming at the middle of the body; positive: looking down
    roll_deg: float = 0.0
    offset_x: float = 0.0  # person's horizontal offset in the frame, fraction of the width


@dataclass(frozen=True)
class Look:
    skin: tuple[float, float, float] = (216.0, 162.0, 125.0)
    top: tuple[float, float, float] = (60.0, 90.0, 160.0)
    bottom: tuple[float, float, float] = (40.0, 40.0, 48.0)
    hair: tuple[float, float, float] = (40.0, 30.0, 24.0)
    shoes: tuple[float, float, float] = (30.0, 30.0, 30.0)
    wall: tuple[float, float, float] = (236.0, 234.0, 228.0)
    floor: tuple[float, float, float] = (200.0, 190.0, 175.0)
    light: tuple[float, float, float] = (
        0.35,
        0.9,
        0.45,
    )  # towards the light, camera frame (x right, y to camera, z up)
    ease_cm: float = 0.5  # clothing thickness
    sleeve: float = 0.35  # sleeve length as a fraction of the arm
    trouser: float = 0.9  # trouser length as a fraction of the leg (1 = ankle)
    brightness: float = 1.0
    noise: float = 3.0  # sensor noise, grey levels
    blur: float = 0.4  # defocus radius, pixels
    jpeg_quality: int = 90
    shadow: float = 0.25


# Materials
_BACKGROUND, _SKIN, _TOP, _BOTTOM, _HAIR, _SHOES, _FEATURE, _LIPS = range(8)


@dataclass
class _Tube:
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
class _Stack:
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
    body: Body
    pose: Pose
    stacks: list[_Stack] = field(default_factory=list)
    tubes: list[_Tube] = field(default_factory=list)
    feet: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # (centre, radii)
    landmarks: dict[str, tuple[float, float, float]] = field(default_factory=dict)


def build_model(body: Body, pose: Pose, look: Look | None = None) -> BodyModel:
    """The body's geometry. Section girths equal ``body.measurements`` at their levels."""
    look = look or Look()
    m = body.measurements
    height = m["height_cm"]
    crotch = m["leg_length_cm"]
    shoulder = crotch + m["shoulder_to_crotch_cm"]
    chin = height - body.head_height_cm
    hip_z = crotch + 0.045 * height
    chest_z = shoulder - 0.10 * height
    waist_z = hip_z + 0.47 * (chest_z - hip_z)
    model = BodyModel(body=body, pose=pose)
    n = body.squareness

    def section(girth: float, ratio: float, shift: float, exponent: float) -> tuple[float, float, float]:
        unit = superellipse_perimeter(1.0, ratio * (1 + shift), ratio * (1 - shift), exponent)
        a = girth / unit
        return a, ratio * (1 + shift) * a, ratio * (1 - shift) * a

    belly = float(np.clip(body.belly / 30.0, -0.05, 0.2))
    hip = section(m["hip_cm"], body.hip_depth_ratio, -0.12, n)
    waist = section(m["waist_cm"], body.waist_depth_ratio, belly, n)
    chest = section(m["chest_cm"], body.chest_depth_ratio, 0.04 if body.sex == "male" else 0.12, n)
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
    material = np.full(len(keys), _TOP)
    material[:4] = _BOTTOM  # trousers up to the waist
    ease = np.full(len(keys), look.ease_cm)
    model.stacks.append(
        _Stack(
            keys[:, 0], keys[:, 1], keys[:, 2], keys[:, 3], np.zeros(len(keys)), keys[:, 4], material, ease
        )
    )
    neck_z = np.array([shoulder - 2.0, chin + 3.0])
    model.stacks.append(
        _Stack(neck_z, np.full(2, neck_r), np.full(2, neck_r), np.full(2, neck_r), np.full(2, -0.5),
               np.full(2, 2.0), np.array([_SKIN, _SKIN]), np.zeros(2))
    )  # fmt: skip
    # head: an ellipsoid from the chin to the top of the head, hair over its top and back
    head_c = height - body.head_height_cm / 2
    half_h = body.head_height_cm / 2
    t = np.linspace(-1.0, 1.0, 41)
    scale = np.sqrt(np.clip(1 - t**2, 0.0, 1.0))
    head_z = head_c + t * half_h
    model.stacks.append(
        _Stack(head_z, 7.6 * scale, 9.8 * scale, 9.6 * scale, np.full(41, 0.6), np.full(41, 2.0),
               np.full(41, _SKIN), np.zeros(41))
    )  # fmt: skip
    hair_half = half_h + body.hair_cm / 2
    hair_c = head_c + body.hair_cm / 2 + 0.8
    hair_z = hair_c + t * hair_half
    hair = _Stack(
        hair_z, (7.6 + body.hair_cm * 0.6) * scale, (9.0 + body.hair_cm * 0.5) * scale,
        (9.8 + body.hair_cm) * scale, np.full(41, 0.0), np.full(41, 2.0), np.full(41, _HAIR), np.zeros(41),
    )  # fmt: skip
    # only the part above the hairline (front) / the back of the head is hair
    hair.material = np.where(hair_z > height - 0.3 * body.head_height_cm, _HAIR, _BACKGROUND)
    model.stacks.append(hair)

    # legs
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
        model.tubes.append(_Tube(start, end, 0.0, s, radii[:, 0], radii[:, 1], cut, _BOTTOM, look.ease_cm))
        foot_len = 0.152 * height
        centre = np.array([end[0] + side * 0.8, -6.0 + foot_len / 2, 3.2])
        model.feet.append((centre, np.array([4.6, foot_len / 2, 4.0])))
        name = "right" if side > 0 else "left"  # the body faces the camera along -y: +x is its right
        model.landmarks[f"{name}_ankle"] = (end[0], 0.0, ankle_z)
        model.landmarks[f"{name}_hip"] = (start[0], 0.0, hip_z)

    # arms: the axis starts inside the shoulder and ends at the wrist, |acromion - wrist| = arm length
    angle = math.radians(pose.arm_angle_deg)
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
            _Tube((joint[0], joint[1]), (wrist[0], wrist[1]), 0.0, s, radii[:, 0], radii[:, 1], look.sleeve,
                  _TOP, look.ease_cm)
        )  # fmt: skip
        hand_end = wrist + d * 0.108 * height
        model.tubes.append(
            _Tube((wrist[0], wrist[1]), (hand_end[0], hand_end[1]), 0.0, np.array([0.0, 0.45, 1.0]),
                  np.array([1.7, 1.9, 1.2]), np.array([3.6, 4.4, 3.0]), -1.0, _SKIN, 0.0)
        )  # fmt: skip
        name = "right" if side > 0 else "left"  # the body faces the camera along -y: +x is its right
        model.landmarks[f"{name}_shoulder"] = (joint[0], 0.0, joint[1])
        elbow = joint + elbow_s * t_wrist * d
        model.landmarks[f"{name}_elbow"] = (elbow[0], 0.0, elbow[1])
        model.landmarks[f"{name}_wrist"] = (wrist[0], 0.0, wrist[1])
    return model


def _tube_radii(girth: float, depth_ratio: float) -> tuple[float, float]:
    unit = ellipse_perimeter(1.0, depth_ratio)
    half_width = girth / unit
    return half_width, half_width * depth_ratio


@dataclass(frozen=True)
class Render:
    image: Image.Image  # RGB, before JPEG compression
    jpeg: bytes
    mask: np.ndarray  # bool (height, width): the person (body, clothes, hair, shoes)
    pixels_per_cm: float  # at the body's mid-plane, at the image centre
    floor_row: float  # image row of the floor under the body's mid-plane (at the image centre column)
    stature_px: float  # the body's height (floor to the top of the head, no hair) in pixels at the mid-plane
    # Where the model's joints (shoulders, elbows, wrists, hips, ankles) land in the image: (column, row).
    joints: dict[str, tuple[float, float]] = field(default_factory=dict)


Region = tuple[slice, slice]


def render(model: BodyModel, view: View, camera: Camera, look: Look, rng: np.random.Generator) -> Render:
    height = model.body.measurements["height_cm"]
    w, h = camera.width, camera.height
    focal = camera.fill * h * camera.distance_cm / (height + model.body.hair_cm)
    aim = math.atan2(camera.height_cm - height * 0.46, camera.distance_cm)
    pitch, roll = aim + math.radians(camera.pitch_deg), math.radians(camera.roll_deg)
    u = np.arange(w, dtype=np.float32) - (w / 2 + camera.offset_x * w) + 0.5
    v = np.arange(h, dtype=np.float32) - h / 2 + 0.5
    du, dv = np.meshgrid(u / focal, v / focal)
    du, dv = du * math.cos(roll) - dv * math.sin(roll), du * math.sin(roll) + dv * math.cos(roll)
    # camera frame: right, forward (towards the body) = (cos p, -sin p) and image-down =
    # (-sin p, -cos p) in (forward, z) for a camera pitched down by p; rays as (lateral, forward, z)
    ray_l = du
    ray_d = math.cos(pitch) - dv * math.sin(pitch)
    ray_z = -math.sin(pitch) - dv * math.cos(pitch)
    depth = np.full((h, w), -np.inf, dtype=np.float32)  # towards the camera: larger is nearer
    normal_l = np.zeros((h, w), np.float32)
    normal_d = np.zeros((h, w), np.float32)
    material = np.zeros((h, w), np.int8)
    # lateral coordinate of the body frame: x in the front view (image right is the subject's
    # right, -x), y in the side view (front of the body on the image right, unless mirrored)
    mirror = -1.0 if (view == "front" or model.pose.mirrored) else 1.0
    camera_side = -1.0 if model.pose.mirrored else 1.0

    def plane(offset: float, region: Region) -> tuple[np.ndarray, np.ndarray]:
        """Body-frame lateral and height where each ray of ``region`` meets the plane ``offset``
        cm nearer the camera than the mid-plane."""
        t = (camera.distance_cm - offset) / ray_d[region]
        return ray_l[region] * t * mirror, camera.height_cm + ray_z[region] * t

    mid_lateral, mid_z = plane(0.0, (slice(None), slice(None)))
    margin = 0.03 * max(w, h) + abs(math.sin(roll)) * max(w, h)

    def region(lat_lo: float, lat_hi: float, z_lo: float, z_hi: float) -> Region | None:
        rows = np.nonzero((mid_z[:, w // 2] >= z_lo) & (mid_z[:, w // 2] <= z_hi))[0]
        cols = np.nonzero((mid_lateral[h // 2] >= lat_lo) & (mid_lateral[h // 2] <= lat_hi))[0]
        if len(rows) == 0 or len(cols) == 0:
            return None
        pad = int(margin)
        return (slice(max(0, rows.min() - pad), min(h, rows.max() + pad + 1)),
                slice(max(0, cols.min() - pad), min(w, cols.max() + pad + 1)))  # fmt: skip

    def paint(
        where: Region, inside: np.ndarray, near: np.ndarray, nl: np.ndarray, nd: np.ndarray, mat: np.ndarray
    ) -> None:
        d = depth[where]
        closer = inside & (near > d) & (mat != _BACKGROUND)
        d[closer] = near[closer]
        normal_l[where][closer] = nl[closer]
        normal_d[where][closer] = nd[closer]
        material[where][closer] = mat[closer]

    for stack in model.stacks:
        reach = float(max(stack.half_width.max(), stack.front.max(), stack.back.max()) + stack.ease.max())
        where = region(-reach - 2, reach + 2, float(stack.z.min()) - 2, float(stack.z.max()) + 2)
        if where is None:
            continue
        ll, zz = plane(0.0, where)
        a = np.interp(zz, stack.z, stack.half_width + stack.ease)
        front = np.interp(zz, stack.z, stack.front + stack.ease)
        back = np.interp(zz, stack.z, stack.back + stack.ease)
        cy = np.interp(zz, stack.z, stack.centre_y)
        n = np.interp(zz, stack.z, stack.n)
        mat = stack.material[np.clip(np.searchsorted(stack.z, zz) - 1, 0, len(stack.z) - 1)]
        inside_z = (zz >= stack.z.min()) & (zz <= stack.z.max()) & (a > 0.05)
        if view == "front":
            t = np.abs(ll) / np.maximum(a, 1e-3)
            y = front * np.clip(1 - t**n, 0, 1) ** (1 / n)
            near = cy + y
            n_lat, n_depth = _superellipse_normal(ll, y, a, front, n)
            n_lat = np.sign(ll) * n_lat * mirror
        else:
            rel = ll - cy
            b = np.where(rel > 0, front, back)
            t = np.abs(rel) / np.maximum(b, 1e-3)
            near = a * np.clip(1 - t**n, 0, 1) ** (1 / n)
            n_depth, n_lat = _superellipse_normal(near, rel, a, b, n)
            n_lat = np.sign(rel) * n_lat * mirror
        paint(where, inside_z & (t < 1), near.astype(np.float32), n_lat, n_depth, mat.astype(np.int8))

    for tube in model.tubes:
        offset = tube.y if view == "front" else camera_side * (tube.start[0] + tube.end[0]) / 2
        reach = float(max(tube.half_width.max(), tube.half_depth.max()) + tube.ease) * 1.3 + 2
        if view == "front":
            lat_lo, lat_hi = min(tube.start[0], tube.end[0]) - reach, max(tube.start[0], tube.end[0]) + reach
        else:
            lat_lo, lat_hi = tube.y - reach, tube.y + reach
        z_lo, z_hi = min(tube.start[1], tube.end[1]) - reach, max(tube.start[1], tube.end[1]) + reach
        where = region(
            lat_lo - abs(offset) * 0.3, lat_hi + abs(offset) * 0.3, z_lo - abs(offset), z_hi + abs(offset)
        )
        if where is not None:
            tube_lateral, tube_z = plane(offset, where)
            _paint_tube(tube, view, tube_lateral, tube_z, camera_side, where, paint)

    # feet: exact ray casting against ellipsoids
    for centre, radii in model.feet:
        if view == "front":  # (image-right lateral, towards the camera, z) = (-x, y, z)
            c = np.array([-centre[0], centre[1], centre[2]])
            r = radii
        else:  # (y, x, z) with the camera on the left, (-y, -x, z) on the right
            c = np.array([centre[1] * camera_side, centre[0] * camera_side, centre[2]])
            r = np.array([radii[1], radii[0], radii[2]])
        reach = float(r.max()) * 1.6 + 5
        lo, hi = sorted((c[0] * mirror - reach, c[0] * mirror + reach))
        where = region(lo, hi, -reach, c[2] + reach)
        if where is not None:
            _paint_ellipsoid(c, r, camera, ray_l[where], ray_d[where], ray_z[where], where, paint)

    if view == "front":
        _draw_face(model, material, mid_lateral, mid_z)
    mask = material != _BACKGROUND
    image = _shade(look, camera, material, normal_l, normal_d, mask, ray_d, ray_z, rng)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=look.jpeg_quality)
    column = mid_z[:, w // 2].astype(np.float64)  # decreasing down the image
    rows = np.arange(h, dtype=np.float64)
    floor_row = float(np.interp(0.0, column[::-1], rows[::-1]))
    head_row = float(np.interp(height, column[::-1], rows[::-1]))
    joints = {}
    for name, (x, y, z) in model.landmarks.items():
        # The joint's depth plane, then the pixel whose ray meets it at the joint.
        offset, lateral = (y, x) if view == "front" else (camera_side * x, y)
        lat, zz = plane(offset, (slice(None), slice(None)))
        row, col = np.unravel_index(np.argmin((lat - lateral) ** 2 + (zz - z) ** 2), lat.shape)
        joints[name] = (float(col) + 0.5, float(row) + 0.5)
    return Render(image=image, jpeg=out.getvalue(), mask=mask, pixels_per_cm=focal / camera.distance_cm,
                  floor_row=floor_row, stature_px=floor_row - head_row, joints=joints)  # fmt: skip


def _draw_face(model: BodyModel, material: np.ndarray, lateral: np.ndarray, z: np.ndarray) -> None:
    """Eyes, brows, nose and mouth on the front of the head (pose models look for a face)."""
    body = model.body
    chin = body.measurements["height_cm"] - body.head_height_cm
    unit = body.head_height_cm / 22.0  # features scale with the head
    eye_z = chin + 0.52 * body.head_height_cm
    on_face = material == _SKIN
    features = np.zeros(material.shape, bool)
    for side in (-1.0, 1.0):
        features |= ((lateral - side * 3.2 * unit) / (1.3 * unit)) ** 2 + (
            (z - eye_z) / (0.6 * unit)
        ) ** 2 < 1
        brow = (np.abs(lateral - side * 3.2 * unit) < 1.6 * unit) & (
            np.abs(z - eye_z - 1.5 * unit) < 0.3 * unit
        )
        features |= brow
    features |= (
        (np.abs(lateral) < 0.5 * unit) & (z < eye_z - 2.0 * unit) & (z > eye_z - 4.5 * unit) & (lateral > 0)
    )
    lips = (np.abs(lateral) < 2.4 * unit) & (np.abs(z - (chin + 0.24 * body.head_height_cm)) < 0.45 * unit)
    material[on_face & features] = _FEATURE
    material[on_face & lips] = _LIPS


def _superellipse_normal(
    x: np.ndarray, y: np.ndarray, a: np.ndarray, b: np.ndarray, n: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    gx = np.abs(x) ** (n - 1) / np.maximum(a, 1e-3) ** n
    gy = np.abs(y) ** (n - 1) / np.maximum(b, 1e-3) ** n
    norm = np.hypot(gx, gy) + 1e-9
    return gx / norm, gy / norm


Painter = Callable[[Region, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray], None]


def _paint_tube(
    tube: _Tube,
    view: View,
    lateral: np.ndarray,
    z: np.ndarray,
    camera_side: float,
    where: Region,
    paint: Painter,
) -> None:
    """``lateral`` is x (front view) or y (side view); ``camera_side`` is +1 when the side view's
    camera is on the subject's left (+x), -1 on the right."""
    x0, z0 = tube.start
    x1, z1 = tube.end
    length = math.hypot(x1 - x0, z1 - z0)
    ux, uz = (x1 - x0) / length, (z1 - z0) / length
    zz, ll = z, lateral
    if view == "front":
        rx, rz = ll - x0, zz - z0
        along = rx * ux + rz * uz
        s = np.clip(along / length, 0.0, 1.0)
        off_x = ll - (x0 + s * (x1 - x0))
        off_z = zz - (z0 + s * (z1 - z0))
        dist = np.hypot(off_x, off_z)
        ease = np.where(s < tube.cut, tube.ease, 0.0)
        rw = np.interp(s, tube.s, tube.half_width) + ease
        rd = np.interp(s, tube.s, tube.half_depth) + ease
        inside = dist < rw
        q = np.sqrt(np.clip(1 - (dist / rw) ** 2, 0, 1))
        near = tube.y + rd * q
        n_lat = off_x / rw**2
        n_depth = q / rd
    else:
        # lateral is the front-back axis; the section at height z is an ellipse centred on the
        # axis, rw / |uz| across (x) and rd deep (y)
        along_z = (zz - z0) / (z1 - z0)
        s = np.clip(along_z, 0.0, 1.0)
        ease = np.where(s < tube.cut, tube.ease, 0.0)
        rw = np.interp(s, tube.s, tube.half_width) + ease
        rd = np.interp(s, tube.s, tube.half_depth) + ease
        over = np.abs(along_z - s) * abs(z1 - z0)
        shrink = np.sqrt(np.clip(1 - (over / rw) ** 2, 0, 1))
        rd = rd * shrink
        rel = ll - tube.y
        inside = (np.abs(rel) < rd) & (shrink > 0)
        x_axis = x0 + s * (x1 - x0)
        q = np.sqrt(np.clip(1 - (rel / np.maximum(rd, 1e-3)) ** 2, 0, 1))
        near = camera_side * x_axis + rw / max(abs(uz), 0.2) * shrink * q
        n_lat = rel / np.maximum(rd, 1e-3) ** 2
        n_depth = q / np.maximum(rw, 1e-3)
    material = np.where(s < tube.cut, tube.clothing, _SKIN).astype(np.int8)

    norm = np.hypot(n_lat, n_depth) + 1e-9
    paint(where, inside, near.astype(np.float32), n_lat / norm, n_depth / norm, material)


def _paint_ellipsoid(
    centre: np.ndarray, radii: np.ndarray, camera: Camera, ray_l: np.ndarray, ray_d: np.ndarray,
    ray_z: np.ndarray, where: Region, paint: Painter,
) -> None:  # fmt: skip
    """Exact ray casting. Coordinates: (image-right lateral, towards the camera, z); the camera
    is at (0, distance, camera height)."""
    origin = np.array([0.0, camera.distance_cm, camera.height_cm])
    directions = np.stack([ray_l, -ray_d, ray_z], axis=-1)
    o = (origin - centre) / radii
    d = directions / radii
    a = np.sum(d * d, axis=-1)
    b = 2 * np.sum(d * o, axis=-1)
    c = float(o @ o) - 1
    disc = b * b - 4 * a * c
    hit = disc > 0
    t = (-b - np.sqrt(np.maximum(disc, 0))) / (2 * a)
    point = origin + directions * t[..., None]
    hit &= point[..., 2] >= 0.0
    normal = (point - centre) / radii**2
    norm = np.linalg.norm(normal, axis=-1) + 1e-9
    paint(where, hit, np.where(hit, point[..., 1], -np.inf).astype(np.float32), normal[..., 0] / norm,
          normal[..., 1] / norm, np.full(hit.shape, _SHOES, np.int8))  # fmt: skip


def _shade(
    look: Look, camera: Camera, material: np.ndarray, normal_l: np.ndarray, normal_d: np.ndarray,
    mask: np.ndarray, ray_d: np.ndarray, ray_z: np.ndarray, rng: np.random.Generator,
) -> Image.Image:  # fmt: skip
    h, w = material.shape
    # background: a wall a metre behind the body and the floor in front of it, a vignette, and a
    # soft shadow (the silhouette blurred and moved away from the light)
    t_wall = (camera.distance_cm + 100.0) / ray_d
    t_floor = np.where(ray_z < 0, camera.height_cm / np.maximum(-ray_z, 1e-6), np.inf)
    floor = (t_floor < t_wall)[..., None]
    background = np.where(floor, np.asarray(look.floor, np.float32), np.asarray(look.wall, np.float32))
    vignette = 1.0 - 0.12 * (np.linspace(-1, 1, h, dtype=np.float32)[:, None] ** 2
                             + np.linspace(-1, 1, w, dtype=np.float32)[None, :] ** 2)  # fmt: skip
    small = Image.fromarray((mask * 255).astype(np.uint8)).resize((w // 4, h // 4), Image.Resampling.BILINEAR)
    small = small.filter(ImageFilter.GaussianBlur(radius=w / 160))
    shadow = np.asarray(small.resize((w, h), Image.Resampling.BILINEAR), np.float32) / 255.0
    shadow = np.roll(shadow, int(-look.light[0] * w / 25), axis=1)
    background *= (vignette * (1 - look.shadow * shadow))[..., None]
    skin = np.asarray(look.skin, np.float32)
    colours = np.array(
        [
            (0, 0, 0),
            look.skin,
            look.top,
            look.bottom,
            look.hair,
            look.shoes,
            skin * 0.3,
            skin * (0.62, 0.42, 0.42),
        ],
        np.float32,
    )
    light = np.asarray(look.light, np.float32)
    light /= np.linalg.norm(light)
    lambert = np.clip(normal_l * light[0] + normal_d * light[1], 0, 1)
    intensity = 0.35 + 0.75 * lambert + 0.1 * light[2]
    intensity *= 1 + 0.04 * rng.standard_normal((h, w), dtype=np.float32)
    person = colours[material] * intensity[..., None]
    rgb = np.where(mask[..., None], person, background) * look.brightness
    rgb += look.noise * rng.standard_normal(rgb.shape, dtype=np.float32)
    image = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    if look.blur > 0.05:
        image = image.filter(ImageFilter.GaussianBlur(radius=look.blur))
    return image


@dataclass(frozen=True)
class Pair:
    body: Body
    front: Render
    side: Render
    front_camera: Camera
    side_camera: Camera


def random_setup(rng: np.random.Generator, size: tuple[int, int] = (720, 1280)) -> tuple[Pose, Camera, Look]:
    """A plausible photo session: pose jitter, phone camera placement, clothes, light, background."""
    width, height = size
    pose = Pose(
        arm_angle_deg=float(rng.uniform(22, 40)),
        leg_spread_cm=float(rng.uniform(2, 12)),
        mirrored=bool(rng.random() < 0.5),
    )
    camera = Camera(
        width=width,
        height=height,
        distance_cm=float(rng.uniform(200, 360)),
        height_cm=float(rng.uniform(85, 145)),
        fill=float(rng.uniform(0.6, 0.8)),
        pitch_deg=float(rng.normal(0, 2.0)),
        roll_deg=float(rng.normal(0, 1.0)),
        offset_x=float(rng.uniform(-0.05, 0.05)),
    )
    skin = SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.92, 1.06)
    wall = rng.uniform(150, 250, 3)
    wall = wall.mean() + (wall - wall.mean()) * 0.35  # plain, mostly neutral walls
    look = Look(
        skin=_rgb(skin),
        top=_rgb(rng.uniform(20, 230, 3)),
        bottom=_rgb(rng.uniform(15, 200, 3)),
        hair=_rgb(HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))]),
        shoes=_rgb(rng.uniform(10, 220, 3)),
        wall=_rgb(wall),
        floor=_rgb(wall * rng.uniform(0.7, 1.0)),
        light=(float(rng.uniform(-0.8, 0.8)), float(rng.uniform(0.6, 1.0)), float(rng.uniform(0.2, 0.8))),
        ease_cm=float(rng.uniform(0.2, 0.7)),
        sleeve=float(rng.uniform(0.15, 1.0)),
        trouser=float(rng.uniform(0.3, 1.0)),
        brightness=float(rng.uniform(0.85, 1.1)),
        noise=float(rng.uniform(1.0, 5.0)),
        blur=float(rng.uniform(0.0, 1.0)),
        jpeg_quality=int(rng.integers(60, 95)),
        shadow=float(rng.uniform(0.1, 0.35)),
    )
    return pose, camera, look


def _rgb(values: np.ndarray) -> tuple[float, float, float]:
    r, g, b = (float(v) for v in np.clip(values, 0, 255))
    return r, g, b


def render_pair(
    body: Body, rng: np.random.Generator, *, size: tuple[int, int] = (720, 1280),
    setup: tuple[Pose, Camera, Look] | None = None,
) -> Pair:  # fmt: skip
    """Front and side photos of one body, taken in one session (same clothes and room; the side
    photo from a slightly different spot)."""
    pose, camera, look = setup or random_setup(rng, size)
    model = build_model(body, pose, look)
    front = render(model, "front", camera, look, rng)
    side_camera = Camera(
        width=camera.width,
        height=camera.height,
        distance_cm=camera.distance_cm * float(rng.uniform(0.95, 1.05)),
        height_cm=camera.height_cm,
        fill=camera.fill,
        pitch_deg=camera.pitch_deg + float(rng.normal(0, 0.5)),
        roll_deg=float(rng.normal(0, 1.0)),
        offset_x=float(rng.uniform(-0.05, 0.05)),
    )
    side = render(model, "side", side_camera, look, rng)
    return Pair(body=body, front=front, side=side, front_camera=camera, side_camera=side_camera)
