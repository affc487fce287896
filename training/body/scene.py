"""A photo session's setup: the pose, the camera and the look (skin, clothes, hair, light, room),
set by hand or drawn at random."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

View = Literal["front", "side"]

SKIN_TONES = np.array(
    [(247, 214, 190), (234, 189, 157), (216, 162, 125), (190, 130, 95), (160, 104, 72), (120, 78, 54),
     (92, 58, 40), (66, 42, 30)], dtype=np.float32,
)  # fmt: skip
HAIR_COLOURS = np.array(
    [(20, 16, 14), (60, 40, 26), (110, 74, 40), (196, 160, 104), (140, 60, 30)], np.float32
)


@dataclass(frozen=True)
class Pose:
    arm_angle_deg: float = 24.0  # each arm's angle from the vertical, outward
    leg_spread_cm: float = 6.0  # extra distance of each ankle from the centre line
    mirrored: bool = False  # the side view shows the subject's right side instead of the left
    selfie: bool = False  # the right forearm raised in front of the chest, a phone held before the face


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
    clutter: int = 0  # 0: a plain wall and floor; otherwise the seed of a cluttered room (``room``)


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
