"""One analysed photo and the pixel measurements taken on its person mask."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from inference.body import Landmark, Pose


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


def run_contains(mask: np.ndarray, row: float, x: float, other_x: float) -> bool:
    """Whether the person covers ``row`` of ``mask`` all the way from ``x`` to ``other_x``."""
    r = round(row)
    lo, hi = sorted((round(x), round(other_x)))
    lo, hi = max(lo, 0), min(hi, mask.shape[1] - 1)
    return bool(mask[r, lo : hi + 1].all())
