"""Rendered people for testing the body models: a front-facing figure in A-pose on a plain
background, with its exact silhouette mask and the image positions of its joints.

Proportions follow the usual drawing canon (a body about 7.5 heads tall). Pure Pillow.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image, ImageDraw

SKIN = (198, 140, 105)
TOP = (60, 90, 160)
TROUSERS = (40, 40, 48)
BACKGROUND = (236, 234, 228)


@dataclass(frozen=True)
class Figure:
    image: Image.Image
    mask: Image.Image  # "L", 255 where the person is
    joints: dict[str, tuple[float, float]]  # pixel (x, y), subject's left/right


Point = tuple[float, float]
Colour = tuple[int, int, int]


def render_figure(
    width: int = 720, height: int = 1280, *, body_height: float = 0.84, seed_shift: int = 0
) -> Figure:
    """A standing figure whose height is ``body_height`` of the image height, centred."""
    image = Image.new("RGB", (width, height), BACKGROUND)
    mask = Image.new("L", (width, height), 0)
    h = body_height * height
    top = (height - h) / 2 + seed_shift
    cx = width / 2 + seed_shift
    joints = _joints(cx, top, h)
    layers = _Layers(image, mask)
    # Back to front: what is drawn later covers what is drawn earlier.
    _draw_legs(layers, joints, h)
    _draw_torso_and_arms(layers, joints, h)
    _draw_head(image, layers, cx, top, h)
    return Figure(image=image, mask=mask, joints=joints)


def _joints(cx: float, top: float, h: float) -> dict[str, Point]:
    """Where the joints are, in pixels, for a body ``h`` tall whose head starts at ``top``."""

    def y(fraction: float) -> float:
        return top + fraction * h

    return {
        "nose": (cx, y(0.07)),
        "right_shoulder": (cx - 0.13 * h, y(0.19)),  # the subject's right: image left
        "left_shoulder": (cx + 0.13 * h, y(0.19)),
        "right_elbow": (cx - 0.21 * h, y(0.34)),
        "left_elbow": (cx + 0.21 * h, y(0.34)),
        "right_wrist": (cx - 0.28 * h, y(0.47)),
        "left_wrist": (cx + 0.28 * h, y(0.47)),
        "right_hip": (cx - 0.07 * h, y(0.52)),
        "left_hip": (cx + 0.07 * h, y(0.52)),
        "right_knee": (cx - 0.085 * h, y(0.74)),
        "left_knee": (cx + 0.085 * h, y(0.74)),
        "right_ankle": (cx - 0.10 * h, y(0.95)),
        "left_ankle": (cx + 0.10 * h, y(0.95)),
    }


class _Layers:
    """The picture and its mask, drawn together: each shape in its colour on the picture and
    solid on the mask, so the mask is exactly the person."""

    def __init__(self, image: Image.Image, mask: Image.Image) -> None:
        self.layers = [(ImageDraw.Draw(image), None), (ImageDraw.Draw(mask), 255)]

    def limb(self, a: Point, b: Point, width_px: float, colour: Colour) -> None:
        for draw, fill in self.layers:
            draw.line([a, b], fill=fill or colour, width=int(width_px))
            r = width_px / 2
            for px, py in (a, b):
                draw.ellipse((px - r, py - r, px + r, py + r), fill=fill or colour)

    def ellipse(self, box: tuple[float, float, float, float], colour: Colour) -> None:
        for draw, fill in self.layers:
            draw.ellipse(box, fill=fill or colour)

    def polygon(self, points: list[Point], colour: Colour) -> None:
        for draw, fill in self.layers:
            draw.polygon(points, fill=fill or colour)


def _draw_legs(layers: _Layers, joints: dict[str, Point], h: float) -> None:
    """Legs in trousers, and feet."""
    for side in ("left", "right"):
        ax, ay = joints[f"{side}_ankle"]
        kx, ky = joints[f"{side}_knee"]
        hem = (kx + (ax - kx) * 0.82, ky + (ay - ky) * 0.82)  # trousers end above the ankle
        layers.limb(joints[f"{side}_knee"], (ax, ay), 0.035 * h, SKIN)
        layers.limb(joints[f"{side}_hip"], joints[f"{side}_knee"], 0.085 * h, TROUSERS)
        layers.limb(joints[f"{side}_knee"], hem, 0.06 * h, TROUSERS)
        # Seen from the front, a shoe is a rounded shape under the ankle.
        layers.ellipse((ax - 0.03 * h, ay + 0.002 * h, ax + 0.03 * h, ay + 0.04 * h), (30, 30, 30))


def _draw_torso_and_arms(layers: _Layers, joints: dict[str, Point], h: float) -> None:
    """The torso from shoulders to hips, then sleeves, forearms and hands."""
    rs, ls = joints["right_shoulder"], joints["left_shoulder"]
    rh, lh = joints["right_hip"], joints["left_hip"]
    torso = [(rs[0], rs[1] - 0.01 * h), (ls[0], ls[1] - 0.01 * h), (lh[0] + 0.03 * h, lh[1] + 0.02 * h),
             (rh[0] - 0.03 * h, rh[1] + 0.02 * h)]  # fmt: skip
    layers.polygon(torso, TOP)
    for side in ("left", "right"):
        layers.limb(joints[f"{side}_shoulder"], joints[f"{side}_elbow"], 0.055 * h, TOP)
        layers.limb(joints[f"{side}_elbow"], joints[f"{side}_wrist"], 0.04 * h, SKIN)
        wx, wy = joints[f"{side}_wrist"]
        layers.ellipse((wx - 0.022 * h, wy - 0.01 * h, wx + 0.022 * h, wy + 0.045 * h), SKIN)


def _draw_head(image: Image.Image, layers: _Layers, cx: float, top: float, h: float) -> None:
    """Neck and head, then the face (eyes and mouth, on the picture only)."""
    head = h / 7.5
    layers.limb((cx, top + 0.13 * h), (cx, top + 0.18 * h), 0.05 * h, SKIN)
    layers.ellipse((cx - head * 0.42, top, cx + head * 0.42, top + head), SKIN)
    draw_face = ImageDraw.Draw(image)
    for ex in (cx - head * 0.15, cx + head * 0.15):
        draw_face.ellipse((ex - 5, top + head * 0.42 - 4, ex + 5, top + head * 0.42 + 4), fill=(40, 30, 25))
    draw_face.line(
        [(cx - head * 0.12, top + head * 0.75), (cx + head * 0.12, top + head * 0.75)],
        fill=(120, 60, 50),
        width=4,
    )
