"""The whole measurement: two photos and a height in, measurements, confidences and an embedding out."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inference.body import PersonSegmenter, PoseEstimator
from inference.body_measure.calibration import (
    CALIBRATION_PATH,
    MEASUREMENT_KEYS,
    Calibration,
    apply_calibration,
    embedding,
)
from inference.body_measure.geometry import raw_features
from inference.body_measure.photo import analyse_view, check_pose, decode_photo
from inference.body_measure.view import ViewAnalysis
from inference.manifest import Manifest


@dataclass(frozen=True)
class BodyResult:
    measurements: dict[str, float]  # cm, all of MEASUREMENT_KEYS
    confidence: dict[str, float]  # 0..1
    intervals: dict[str, tuple[float, float]]  # cm (low, high) where the calibration states one
    embedding: np.ndarray  # float32 (BODY_EMBEDDING_DIM,), compare with Euclidean distance
    model: str
    version: str
    timings_ms: dict[str, float]


class BodyMeasurer:
    """The whole measurement: photos + height → measurements, confidences, embedding."""

    name = "body-measure"

    def __init__(self, segmenter: PersonSegmenter, pose: PoseEstimator, calibration: Calibration) -> None:
        self.segmenter = segmenter
        self.pose = pose
        self.calibration = calibration

    @property
    def version(self) -> str:
        return self.calibration.version

    def analyse(
        self, front: bytes, side: bytes, timings: dict[str, float] | None = None
    ) -> tuple[ViewAnalysis, ViewAnalysis]:
        timings = timings if timings is not None else {}
        started = time.perf_counter()
        front_image, side_image = decode_photo(front), decode_photo(side)
        timings["decode"] = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        front_view = analyse_view(front_image, self.segmenter, self.pose, "front")
        side_view = analyse_view(side_image, self.segmenter, self.pose, "side")
        check_pose(front_view, side_view)
        timings["models"] = (time.perf_counter() - started) * 1000
        return front_view, side_view

    def features(self, front: bytes, side: bytes, height_cm: float) -> dict[str, float]:
        front_view, side_view = self.analyse(front, side)
        return raw_features(front_view, side_view, height_cm, self.calibration)

    def measure(self, front: bytes, side: bytes, height_cm: float) -> BodyResult:
        timings: dict[str, float] = {}
        front_view, side_view = self.analyse(front, side, timings)
        started = time.perf_counter()
        features = raw_features(front_view, side_view, height_cm, self.calibration)
        calibrated = apply_calibration(features, self.calibration)
        values, confidence = calibrated.values, calibrated.confidence
        vector = embedding(values, features, self.calibration)
        timings["geometry"] = (time.perf_counter() - started) * 1000
        return BodyResult(
            measurements={k: values[k] for k in MEASUREMENT_KEYS},
            confidence={k: confidence[k] for k in MEASUREMENT_KEYS},
            intervals=calibrated.intervals,
            embedding=vector,
            model=self.name,
            version=self.version,
            timings_ms={k: round(v, 1) for k, v in timings.items()},
        )


def load_body_measurer(
    manifests: dict[str, Manifest], *, intra_op_threads: int = 2, calibration: Path = CALIBRATION_PATH,
    segmenter: PersonSegmenter | None = None, pose: PoseEstimator | None = None,
) -> BodyMeasurer:  # fmt: skip
    """The measurer over the shipped models (pass already-loaded sessions to share them)."""
    return BodyMeasurer(
        segmenter or PersonSegmenter(manifests["person_segmentation"], intra_op_threads=intra_op_threads),
        pose or PoseEstimator(manifests["pose_landmarks"], intra_op_threads=intra_op_threads),
        Calibration.load(calibration),
    )
