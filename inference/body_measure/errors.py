"""Why a pair of photos cannot be measured: the refusal codes and the exception carrying one."""

from __future__ import annotations

from typing import Final

FAILURE_CODES: Final = ("no_person_detected", "person_cut_off", "multiple_people", "low_quality", "bad_pose")


class MeasurementRejected(Exception):
    """The photos cannot be measured; ``code`` is one of ``FAILURE_CODES``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
