"""The body measurements the product speaks in (BodyM's 14), with plausible adult ranges in cm.

Girths (ankle, bicep, calf, chest, forearm, hip, thigh, waist, wrist) are circumferences;
``leg_length_cm`` is the inside leg (crotch to floor, the garment inseam).
"""

from __future__ import annotations

from typing import Final

# name -> (lowest, highest) plausible value in cm, generous on both ends.
PLAUSIBLE_CM: Final[dict[str, tuple[float, float]]] = {
    "ankle_cm": (12.0, 50.0),
    "arm_length_cm": (30.0, 100.0),
    "bicep_cm": (15.0, 70.0),
    "calf_cm": (15.0, 70.0),
    "chest_cm": (50.0, 200.0),
    "forearm_cm": (12.0, 55.0),
    "height_cm": (90.0, 250.0),
    "hip_cm": (50.0, 200.0),
    "leg_length_cm": (40.0, 120.0),
    "shoulder_breadth_cm": (25.0, 70.0),
    "shoulder_to_crotch_cm": (40.0, 110.0),
    "thigh_cm": (25.0, 110.0),
    "waist_cm": (40.0, 200.0),
    "wrist_cm": (10.0, 30.0),
}
MEASUREMENT_KEYS: Final[tuple[str, ...]] = tuple(sorted(PLAUSIBLE_CM))
