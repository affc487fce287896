"""Body measurements from a front and a side photo and the person's height.

Pipeline, per photo: decode (EXIF orientation applied) → person segmentation → full-body crop →
pose landmarks → quality checks (``photo``). Then geometry on both (``geometry``): the pixel
scale from the silhouette's height, landmark-defined levels (chest, waist = narrowest torso level
between chest and hips, hips = widest, thigh, calf, ankle; bicep, forearm and wrist along the
arm), front widths and side depths at those levels, lengths from landmarks. A calibration
(``calibration``; fitted by ``just train-body`` on rendered bodies, shipped as
``models/body_calibration/calibration.json``) turns these raw features into the 14
measurements, each with a confidence, plus a body-shape embedding. ``measurer`` runs it all.

Pure: bytes and arrays in, results out. Raises ``MeasurementRejected`` with one of
``FAILURE_CODES`` when the photos cannot be measured.
"""

from inference.body_measure.calibration import (
    BODY_EMBEDDING_DIM,
    CALIBRATION_PATH,
    MEASUREMENT_KEYS,
    PROFILE_LEVELS,
    Calibration,
    apply_calibration,
    embedding,
)
from inference.body_measure.errors import FAILURE_CODES, MeasurementRejected
from inference.body_measure.geometry import TORSO_LEVELS, raw_features
from inference.body_measure.measurer import BodyMeasurer, BodyResult, load_body_measurer
from inference.body_measure.photo import analyse_view, check_pose, decode_photo
from inference.body_measure.view import ViewAnalysis

__all__ = [
    "BODY_EMBEDDING_DIM",
    "CALIBRATION_PATH",
    "FAILURE_CODES",
    "MEASUREMENT_KEYS",
    "PROFILE_LEVELS",
    "TORSO_LEVELS",
    "BodyMeasurer",
    "BodyResult",
    "Calibration",
    "MeasurementRejected",
    "ViewAnalysis",
    "analyse_view",
    "apply_calibration",
    "check_pose",
    "decode_photo",
    "embedding",
    "load_body_measurer",
    "raw_features",
]
