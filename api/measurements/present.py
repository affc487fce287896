"""Measurement rows shaped into the response Struct."""

from __future__ import annotations

import msgspec

from api.measurements import schemas
from db.models import Measurement


def measurement_out(measurement: Measurement) -> schemas.Measurement:
    ready = measurement.status == "ready"
    measurements = measurement.measurements if ready else None
    confidence = measurement.confidence if ready else None
    return schemas.Measurement(
        id=measurement.id,
        status=measurement.status,  # type: ignore[arg-type]  # constrained by a CHECK constraint
        height_cm=measurement.height_cm,
        weight_kg=measurement.weight_kg,
        measurements=msgspec.convert(measurements, schemas.BodyMeasurements) if measurements else None,
        confidence=msgspec.convert(confidence, schemas.MeasurementConfidence) if confidence else None,
        error=(
            schemas.MeasurementError(code=measurement.error_code, message=measurement.error_message or "")
            if measurement.status == "failed" and measurement.error_code
            else None
        ),
        model=(
            schemas.ModelInfo(name=measurement.model_name, version=measurement.model_version)
            if measurement.model_name and measurement.model_version
            else None
        ),
        created_at=measurement.created_at,
        completed_at=measurement.completed_at,
    )
