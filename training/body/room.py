"""A cluttered indoor background: a door in its frame, a bookcase, a sofa, a framed picture, a
lamp, a plant, patterned wallpaper and a rug, drawn over the plain wall and floor of a render.

Drawn in image space around the photo's centre line (the person stands in front of it), with
their own random generator so that one ``clutter`` seed gives the same room in every photo of a
session and under every camera. Not perspective-exact: the point is the edges, textures and
colours a segmentation model has to tell apart from a person, not a metric room.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw


def cluttered_room(background: np.ndarray, floor: np.ndarray, seed: int) -> np.ndarray:
    """``background`` (height, width, 3 float32, the plain wall and floor) with furniture,
    textures and a door frame drawn over it; ``floor``: (height, width) bool, the floor's pixels."""
    rng = np.random.default_rng([4242, seed])
    h, w = floor.shape
    horizon = int(np.argmax(floor[:, w // 2])) if floor[:, w // 2].any() else h
    image = Image.fromarray(np.clip(background, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    _wallpaper(draw, w, horizon, rng)
    _rug(draw, w, h, horizon, rng)
    unit = h / 100.0  # furniture sizes as shares of the photo's height
    door_x = int(w * rng.uniform(0.52, 0.68))
    _door(draw, door_x, horizon, unit, rng)
    _bookcase(draw, int(w * rng.uniform(0.02, 0.12)), horizon, unit, rng)
    _sofa(draw, int(w * rng.uniform(0.62, 0.75)), horizon, unit, rng)
    _picture(draw, int(w * rng.uniform(0.28, 0.4)), int(horizon - 62 * unit), unit, rng)
    _lamp(draw, int(w * rng.uniform(0.3, 0.42)), horizon, unit, rng)
    _plant(draw, int(w * rng.uniform(0.85, 0.95)), horizon, unit, rng)
    return np.asarray(image, np.float32)


def _colour(rng: np.random.Generator, low: float = 20, high: float = 235) -> tuple[int, int, int]:
    r, g, b = (int(v) for v in rng.uniform(low, high, 3))
    return r, g, b


def _wallpaper(draw: ImageDraw.ImageDraw, w: int, horizon: int, rng: np.random.Generator) -> None:
    """Thin vertical stripes and a skirting board."""
    stripe = _colour(rng, 120, 230)
    step = int(rng.integers(14, 30))
    for x in range(int(rng.integers(0, step)), w, step):
        draw.line([(x, 0), (x, horizon)], fill=stripe, width=max(1, step // 6))
    draw.rectangle([0, horizon - max(4, horizon // 60), w, horizon], fill=_colour(rng, 180, 250))


def _rug(draw: ImageDraw.ImageDraw, w: int, h: int, horizon: int, rng: np.random.Generator) -> None:
    """A patterned rug on the floor, and floorboard lines."""
    for y in range(horizon, h, max(6, (h - horizon) // 6)):
        draw.line([(0, y), (w, y)], fill=_colour(rng, 60, 160), width=1)
    top, bottom = horizon + (h - horizon) // 5, h - (h - horizon) // 8
    left, right = int(w * 0.15), int(w * 0.85)
    draw.rectangle([left, top, right, bottom], fill=_colour(rng, 60, 200))
    for i in range(8):
        x = left + (right - left) * (i + 0.5) / 8
        draw.ellipse([x - 8, (top + bottom) / 2 - 6, x + 8, (top + bottom) / 2 + 6], fill=_colour(rng))


def _door(draw: ImageDraw.ImageDraw, x: int, horizon: int, unit: float, rng: np.random.Generator) -> None:
    """A door in its frame, with panels and a handle."""
    width, height, frame = 22 * unit, 55 * unit, 1.6 * unit
    top = horizon - height
    draw.rectangle([x - frame, top - frame, x + width + frame, horizon], fill=_colour(rng, 200, 250))
    door = _colour(rng, 90, 200)
    draw.rectangle([x, top, x + width, horizon], fill=door)
    shade = tuple(int(c * 0.8) for c in door)
    for panel_top, panel_bottom in ((0.08, 0.45), (0.55, 0.92)):
        box = [x + 0.15 * width, top + panel_top * height, x + 0.85 * width, top + panel_bottom * height]
        draw.rectangle(box, outline=shade, width=max(2, int(unit * 0.5)))
    draw.ellipse(
        [x + 0.82 * width, top + 0.5 * height, x + 0.9 * width, top + 0.53 * height], fill=(190, 170, 90)
    )


def _bookcase(draw: ImageDraw.ImageDraw, x: int, horizon: int, unit: float, rng: np.random.Generator) -> None:
    """A bookcase with shelves of coloured spines."""
    width, height = 20 * unit, 45 * unit
    top = horizon - height
    draw.rectangle([x, top, x + width, horizon], fill=_colour(rng, 60, 140))
    shelves = 5
    for i in range(shelves):
        shelf_bottom = top + (i + 1) * height / shelves
        spine_x = x + unit
        while spine_x < x + width - 2 * unit:
            spine_w = float(rng.uniform(0.8, 2.0)) * unit
            spine_h = float(rng.uniform(0.5, 0.85)) * height / shelves
            draw.rectangle([spine_x, shelf_bottom - spine_h, spine_x + spine_w, shelf_bottom - unit * 0.4],
                           fill=_colour(rng))  # fmt: skip
            spine_x += spine_w + 1
        draw.rectangle([x, shelf_bottom - unit * 0.4, x + width, shelf_bottom], fill=_colour(rng, 40, 110))


def _sofa(draw: ImageDraw.ImageDraw, x: int, horizon: int, unit: float, rng: np.random.Generator) -> None:
    """A sofa: back, seat, arms and cushions."""
    width = 34 * unit
    fabric = _colour(rng, 40, 220)
    base = horizon + 3 * unit
    draw.rounded_rectangle(
        [x, base - 22 * unit, x + width, base - 8 * unit], radius=int(2 * unit), fill=fabric
    )
    dark = tuple(int(c * 0.75) for c in fabric)
    draw.rectangle([x, base - 10 * unit, x + width, base], fill=dark)
    for i in range(3):
        cx = x + (i + 0.5) * width / 3
        draw.rounded_rectangle([cx - 4 * unit, base - 19 * unit, cx + 4 * unit, base - 11 * unit],
                               radius=int(unit), fill=_colour(rng))  # fmt: skip


def _picture(draw: ImageDraw.ImageDraw, x: int, y: int, unit: float, rng: np.random.Generator) -> None:
    """A framed picture with a few shapes in it."""
    width, height = 14 * unit, 10 * unit
    draw.rectangle([x, y, x + width, y + height], fill=_colour(rng, 20, 90))
    draw.rectangle([x + unit, y + unit, x + width - unit, y + height - unit], fill=_colour(rng, 150, 250))
    for _ in range(3):
        cx, cy = x + float(rng.uniform(0.2, 0.8)) * width, y + float(rng.uniform(0.3, 0.7)) * height
        draw.ellipse([cx - 2 * unit, cy - 2 * unit, cx + 2 * unit, cy + 2 * unit], fill=_colour(rng))


def _lamp(draw: ImageDraw.ImageDraw, x: int, horizon: int, unit: float, rng: np.random.Generator) -> None:
    """A floor lamp: a pole and a shade."""
    draw.rectangle([x - 0.4 * unit, horizon - 40 * unit, x + 0.4 * unit, horizon], fill=(50, 50, 50))
    draw.polygon([(x - 3 * unit, horizon - 40 * unit), (x + 3 * unit, horizon - 40 * unit),
                  (x + 4.5 * unit, horizon - 34 * unit), (x - 4.5 * unit, horizon - 34 * unit)],
                 fill=_colour(rng, 170, 250))  # fmt: skip


def _plant(draw: ImageDraw.ImageDraw, x: int, horizon: int, unit: float, rng: np.random.Generator) -> None:
    """A potted plant: a pot and a cluster of leaves."""
    draw.rectangle(
        [x - 3 * unit, horizon - 6 * unit, x + 3 * unit, horizon + unit], fill=_colour(rng, 90, 200)
    )
    for _ in range(14):
        lx = x + float(rng.normal(0, 3)) * unit
        ly = horizon - float(rng.uniform(8, 22)) * unit
        leaf = (int(rng.uniform(20, 70)), int(rng.uniform(90, 160)), int(rng.uniform(20, 70)))
        draw.ellipse([lx - 2 * unit, ly - unit, lx + 2 * unit, ly + unit], fill=leaf)
