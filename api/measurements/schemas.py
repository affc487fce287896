"""Bodies of the measurement endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec
from litestar.datastructures import UploadFile
from msgspec import Meta

HeightCm = Annotated[float, Meta(ge=100, le=230, description="Standing height in cm")]
WeightKg = Annotated[float, Meta(ge=30, le=300, description="Body weight in kg")]
Centimetres = Annotated[float, Meta(description="cm")]
Confidence = Annotated[float, Meta(ge=0, le=1)]
MeasurementStatus = Literal["pending", "processing", "ready", "failed"]


class MeasurementUpload(msgspec.Struct, forbid_unknown_fields=True):
    """multipart/form-data: a front and a side photo (JPEG, PNG, WebP or HEIC) and the height."""

    front: UploadFile
    side: UploadFile
    height_cm: HeightCm
    weight_kg: WeightKg | None = None


class BodyMeasurements(msgspec.Struct):
    """Girths (ankle, bicep, calf, chest, forearm, hip, thigh, waist, wrist) are circumferences;
    ``leg_length_cm`` is the inside leg (crotch to floor)."""

    ankle_cm: Centimetres
    arm_length_cm: Centimetres
    bicep_cm: Centimetres
    calf_cm: Centimetres
    chest_cm: Centimetres
    forearm_cm: Centimetres
    height_cm: Centimetres
    hip_cm: Centimetres
    leg_length_cm: Centimetres
    shoulder_breadth_cm: Centimetres
    shoulder_to_crotch_cm: Centimetres
    thigh_cm: Centimetres
    waist_cm: Centimetres
    wrist_cm: Centimetres


class MeasurementConfidence(msgspec.Struct):
    """How sure the measurement of each dimension is, 0..1."""

    ankle_cm: Confidence
    arm_length_cm: Confidence
    bicep_cm: Confidence
    calf_cm: Confidence
    chest_cm: Confidence
    forearm_cm: Confidence
    height_cm: Confidence
    hip_cm: Confidence
    leg_length_cm: Confidence
    shoulder_breadth_cm: Confidence
    shoulder_to_crotch_cm: Confidence
    thigh_cm: Confidence
    waist_cm: Confidence
    wrist_cm: Confidence


class MeasurementError(msgspec.Struct):
    code: Annotated[
        str,
        Meta(
            description="`no_person_detected`, `person_cut_off`, `multiple_people`, `low_quality`, "
            "`bad_pose`, `photos_unavailable`, `processing_error` or `timeout`"
        ),
    ]
    message: Annotated[str, Meta(description="Human readable; fit to show the user")]


class ModelInfo(msgspec.Struct):
    name: str
    version: str


class Measurement(msgspec.Struct):
    id: UUID
    status: MeasurementStatus
    height_cm: float
    weight_kg: float | None
    measurements: BodyMeasurements | None
    confidence: MeasurementConfidence | None
    error: MeasurementError | None
    model: ModelInfo | None
    created_at: datetime
    completed_at: datetime | None
