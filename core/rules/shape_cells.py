"""Body-shape cells: the grid that "shoppers like me" is counted on.

A body is placed in one cell of a grid over the measurements that decide a garment's size:
chest, waist and hip in steps of ``GIRTH_STEP_CM`` and height in steps of ``HEIGHT_STEP_CM``.
Shoppers like a body are those in its cell or a neighbouring one (one step either way in every
dimension, ``nearby_cells``): chest, waist and hip within about 1.5 steps and height within
about 1.5 steps of it. Counting per cell lets the sizes kept be aggregated ahead of time per
product and cell, so size advice reads a handful of rows instead of searching for neighbours.

A cell is one integer: each dimension's step index in 8 bits (chest, waist, hip, height from the
high byte down), which every plausible adult body fits (``core.rules.measurements``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from itertools import product
from typing import Final

GIRTH_STEP_CM: Final = 5.0
HEIGHT_STEP_CM: Final = 8.0
# (measurement, step) in the order of the cell's bytes, highest first.
DIMENSIONS: Final[tuple[tuple[str, float], ...]] = (
    ("chest_cm", GIRTH_STEP_CM),
    ("waist_cm", GIRTH_STEP_CM),
    ("hip_cm", GIRTH_STEP_CM),
    ("height_cm", HEIGHT_STEP_CM),
)
_BITS: Final = 8
_MAX_INDEX: Final = (1 << _BITS) - 1


def _pack(indices: tuple[int, ...]) -> int:
    cell = 0
    for index in indices:
        cell = (cell << _BITS) | index
    return cell


def _unpack(cell: int) -> tuple[int, ...]:
    return tuple((cell >> (_BITS * shift)) & _MAX_INDEX for shift in reversed(range(len(DIMENSIONS))))


def shape_cell(measurements: Mapping[str, float]) -> int | None:
    """The cell of a body, or None when it lacks one of the measurements (or one is not finite)."""
    indices = []
    for key, step in DIMENSIONS:
        value = measurements.get(key)
        if value is None or not math.isfinite(value) or value <= 0:
            return None
        indices.append(min(int(value // step), _MAX_INDEX))
    return _pack(tuple(indices))


def nearby_cells(cell: int) -> list[int]:
    """``cell`` and its neighbours (one step either way in each dimension), ascending."""
    ranges = [range(max(0, index - 1), min(_MAX_INDEX, index + 1) + 1) for index in _unpack(cell)]
    return sorted(_pack(indices) for indices in product(*ranges))
