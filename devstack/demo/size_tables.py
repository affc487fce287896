"""Standard size tables (body measurements in cm) the demo catalog's size charts are built from.

Approximations of widely published international (UK/EU letter-size) tables for adult
womenswear and menswear; real vendors bring their own charts.
"""

from __future__ import annotations

Ranges = dict[str, tuple[float, float]]

WOMEN_TOPS: dict[str, Ranges] = {
    "XS": {"chest_cm": (78, 82), "waist_cm": (60, 64), "hip_cm": (86, 90)},
    "S": {"chest_cm": (82, 86), "waist_cm": (64, 68), "hip_cm": (90, 94)},
    "M": {"chest_cm": (86, 90), "waist_cm": (68, 72), "hip_cm": (94, 98)},
    "L": {"chest_cm": (90, 96), "waist_cm": (72, 78), "hip_cm": (98, 104)},
    "XL": {"chest_cm": (96, 102), "waist_cm": (78, 84), "hip_cm": (104, 110)},
    "XXL": {"chest_cm": (102, 108), "waist_cm": (84, 90), "hip_cm": (110, 116)},
}
MEN_TOPS: dict[str, Ranges] = {
    "XS": {
        "chest_cm": (82, 87),
        "waist_cm": (68, 73),
        "shoulder_breadth_cm": (40, 42),
        "arm_length_cm": (57, 59),
    },
    "S": {
        "chest_cm": (87, 92),
        "waist_cm": (73, 78),
        "shoulder_breadth_cm": (42, 44),
        "arm_length_cm": (59, 61),
    },
    "M": {
        "chest_cm": (92, 98),
        "waist_cm": (78, 84),
        "shoulder_breadth_cm": (44, 46),
        "arm_length_cm": (61, 63),
    },
    "L": {
        "chest_cm": (98, 104),
        "waist_cm": (84, 90),
        "shoulder_breadth_cm": (46, 48),
        "arm_length_cm": (63, 65),
    },
    "XL": {
        "chest_cm": (104, 110),
        "waist_cm": (90, 96),
        "shoulder_breadth_cm": (48, 50),
        "arm_length_cm": (65, 67),
    },
    "XXL": {
        "chest_cm": (110, 116),
        "waist_cm": (96, 102),
        "shoulder_breadth_cm": (50, 52),
        "arm_length_cm": (67, 69),
    },
}
WOMEN_DRESSES: dict[str, Ranges] = {
    size: {**ranges, "shoulder_to_crotch_cm": (62 + 2 * i, 66 + 2 * i)}
    for i, (size, ranges) in enumerate(WOMEN_TOPS.items())
}


def bottoms(waist_sizes: list[int], *, women: bool) -> dict[str, Ranges]:
    """Waist-size runs (inches on the label, cm in the chart) with hip and inside leg."""
    table: dict[str, Ranges] = {}
    for size in waist_sizes:
        waist = size * 2.54
        hip = waist + (24 if women else 18)
        table[str(size)] = {
            "waist_cm": (round(waist - 1.3, 1), round(waist + 1.3, 1)),
            "hip_cm": (round(hip - 2, 1), round(hip + 2, 1)),
            "leg_length_cm": (76, 81) if women else (79, 84),
            "thigh_cm": (round(hip * 0.56 - 2, 1), round(hip * 0.56 + 2, 1)),
        }
    return table


WOMEN_BOTTOMS = bottoms([24, 26, 28, 30, 32, 34, 36], women=True)
MEN_BOTTOMS = bottoms([28, 30, 32, 34, 36, 38, 40], women=False)


def chart_for(garment: str | None, department: str) -> dict[str, Ranges] | None:
    women = department == "women"
    if garment in ("tops", "outerwear"):
        return WOMEN_TOPS if women else MEN_TOPS
    if garment == "dresses":
        return WOMEN_DRESSES if women else MEN_TOPS
    if garment == "bottoms":
        return WOMEN_BOTTOMS if women else MEN_BOTTOMS
    return None


SHOE_SIZES = ["38", "39", "40", "41", "42", "43", "44", "45"]
ONE_SIZE = ["ONE SIZE"]
