"""Generated product photos: a garment silhouette per category kind, in a colour and pattern,
on a plain background. Deterministic for a given seed, so similar products look similar."""

from __future__ import annotations

import io
import math
import random

from PIL import Image, ImageDraw

SIZE = 512
PATTERNS = ("solid", "stripes", "checks", "dots", "florals")
COLOURS: dict[str, tuple[int, int, int]] = {
    "black": (25, 25, 28),
    "white": (240, 240, 236),
    "red": (190, 30, 45),
    "navy": (20, 40, 90),
    "blue": (40, 100, 190),
    "green": (30, 120, 70),
    "yellow": (235, 190, 40),
    "pink": (230, 120, 160),
    "purple": (110, 60, 140),
    "orange": (235, 120, 30),
    "brown": (120, 75, 40),
    "beige": (215, 195, 160),
    "grey": (130, 130, 135),
    "teal": (20, 130, 130),
    "indigo": (50, 45, 120),
}

# Silhouettes as polygons on a 0..1 grid.
_SHAPES: dict[str, list[tuple[float, float]]] = {
    "tops": [(0.30, 0.18), (0.42, 0.14), (0.50, 0.19), (0.58, 0.14), (0.70, 0.18), (0.90, 0.36),
             (0.80, 0.44), (0.72, 0.37), (0.72, 0.86), (0.28, 0.86), (0.28, 0.37), (0.20, 0.44), (0.10, 0.36)],
    "outerwear": [(0.30, 0.12), (0.44, 0.10), (0.50, 0.30), (0.56, 0.10), (0.70, 0.12), (0.88, 0.30), (0.92, 0.80),
                  (0.80, 0.82), (0.76, 0.42), (0.76, 0.90), (0.24, 0.90), (0.24, 0.42), (0.20, 0.82), (0.08, 0.80),
                  (0.12, 0.30)],
    "dresses": [(0.38, 0.10), (0.45, 0.10), (0.50, 0.15), (0.55, 0.10), (0.62, 0.10), (0.64, 0.30), (0.60, 0.42),
                (0.82, 0.92), (0.18, 0.92), (0.40, 0.42), (0.36, 0.30)],
    "bottoms": [(0.30, 0.10), (0.70, 0.10), (0.74, 0.92), (0.56, 0.92), (0.50, 0.36), (0.44, 0.92), (0.26, 0.92)],
    "shoes": [(0.12, 0.62), (0.20, 0.48), (0.40, 0.46), (0.52, 0.36), (0.62, 0.36), (0.66, 0.50), (0.88, 0.58),
              (0.90, 0.70), (0.12, 0.70)],
    "accessories": [(0.22, 0.38), (0.78, 0.38), (0.84, 0.86), (0.16, 0.86)],
}  # fmt: skip


def _shade(colour: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    r, g, b = colour
    return (min(255, int(r * factor)), min(255, int(g * factor)), min(255, int(b * factor)))


def _pattern_layer(pattern: str, colour: tuple[int, int, int], rng: random.Random) -> Image.Image:
    layer = Image.new("RGB", (SIZE, SIZE), colour)
    draw = ImageDraw.Draw(layer)
    accent = _shade(colour, 0.55) if sum(colour) > 300 else _shade(colour, 1.8)
    step = rng.randint(18, 34)
    if pattern == "stripes":
        vertical = rng.random() < 0.5
        for offset in range(0, SIZE, step):
            box = (offset, 0, offset + step // 2, SIZE) if vertical else (0, offset, SIZE, offset + step // 2)
            draw.rectangle(box, fill=accent)
    elif pattern == "checks":
        for x in range(0, SIZE, step):
            draw.rectangle((x, 0, x + step // 3, SIZE), fill=accent)
        for y in range(0, SIZE, step):
            draw.rectangle((0, y, SIZE, y + step // 3), fill=accent)
    elif pattern == "dots":
        radius = max(3, step // 5)
        for y in range(step // 2, SIZE, step):
            for x in range(step // 2 + (y // step % 2) * step // 2, SIZE, step):
                draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=accent)
    elif pattern == "florals":
        petal = _shade(accent, 1.1)
        for _ in range(rng.randint(40, 70)):
            cx, cy, r = rng.randint(0, SIZE), rng.randint(0, SIZE), rng.randint(6, 14)
            for k in range(5):
                angle = k * 2 * math.pi / 5
                px, py = cx + r * math.cos(angle), cy + r * math.sin(angle)
                draw.ellipse((px - r * 0.7, py - r * 0.7, px + r * 0.7, py + r * 0.7), fill=petal)
            draw.ellipse((cx - r * 0.5, cy - r * 0.5, cx + r * 0.5, cy + r * 0.5), fill=(240, 210, 60))
    return layer


def product_picture(garment: str, colour: str, pattern: str, seed: int) -> Image.Image:
    rng = random.Random(seed)
    background = tuple(rng.randint(228, 250) for _ in range(3))
    canvas = Image.new("RGB", (SIZE, SIZE), background)
    shape = _SHAPES.get(garment, _SHAPES["tops"])
    jitter = [(x + rng.uniform(-0.015, 0.015), y + rng.uniform(-0.015, 0.015)) for x, y in shape]
    mask = Image.new("L", (SIZE, SIZE), 0)
    ImageDraw.Draw(mask).polygon([(x * SIZE, y * SIZE) for x, y in jitter], fill=255)
    canvas.paste(_pattern_layer(pattern, COLOURS[colour], rng), (0, 0), mask)
    draw = ImageDraw.Draw(canvas)
    draw.polygon([(x * SIZE, y * SIZE) for x, y in jitter], outline=_shade(COLOURS[colour], 0.6), width=3)
    if garment == "accessories":  # a bag's handle
        draw.arc(
            (0.32 * SIZE, 0.18 * SIZE, 0.68 * SIZE, 0.58 * SIZE),
            180,
            360,
            fill=_shade(COLOURS[colour], 0.6),
            width=10,
        )
    return canvas


def encode(image: Image.Image, fmt: str, *, max_side: int | None = None, quality: int = 85) -> bytes:
    if max_side is not None:
        image = image.copy()
        image.thumbnail((max_side, max_side))
    out = io.BytesIO()
    image.save(out, format=fmt, quality=quality)
    return out.getvalue()
