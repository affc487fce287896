"""Body measurements: a front and a side photo with the person's height, measured by the worker.

``pending`` (stored, job queued) -> ``processing`` (a worker claimed it) -> ``ready`` (14
measurements in cm, their confidence and a body-shape embedding) | ``failed`` (``error_code``
says why: unusable photos, a timeout, a processing error). The photos are personal data: they
live in private storage and are deleted once ``MEASUREMENT_PHOTO_RETENTION_DAYS`` have passed
since the measurement finished (the keys are then cleared and ``photos_deleted_at`` set).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pgvector.sqlalchemy import Vector
from sqlalchemy import CheckConstraint, DateTime, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base

MeasurementStatus = Literal["pending", "processing", "ready", "failed"]
STATUSES: tuple[MeasurementStatus, ...] = ("pending", "processing", "ready", "failed")
FINISHED: tuple[MeasurementStatus, ...] = ("ready", "failed")
# Dimensions of the body-shape embedding (inference.body_measure.BODY_EMBEDDING_DIM).
BODY_EMBEDDING_DIMENSIONS = 32

READY = text("status = 'ready'")
IN_FLIGHT = text("status IN ('pending', 'processing')")


class Measurement(Base):
    __tablename__ = "measurements"

    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    height_cm: Mapped[float] = mapped_column(Float)
    weight_kg: Mapped[float | None] = mapped_column(Float, default=None)
    # Keys in private storage; cleared when the photos are deleted.
    front_key: Mapped[str | None] = mapped_column(String(300), default=None)
    side_key: Mapped[str | None] = mapped_column(String(300), default=None)
    # {"chest_cm": 96.4, ...} and {"chest_cm": 0.91, ...}, the 14 keys of core.rules.measurements.
    measurements: Mapped[dict[str, float] | None] = mapped_column(JSONB, default=None)
    confidence: Mapped[dict[str, float] | None] = mapped_column(JSONB, default=None)
    # Body shape (standardised proportions); neighbours by Euclidean distance ("shoppers like me").
    embedding: Mapped[Any] = mapped_column(Vector(BODY_EMBEDDING_DIMENSIONS), nullable=True, default=None)
    error_code: Mapped[str | None] = mapped_column(String(40), default=None)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    model_name: Mapped[str | None] = mapped_column(String(64), default=None)
    model_version: Mapped[str | None] = mapped_column(String(32), default=None)
    timings: Mapped[dict[str, float] | None] = mapped_column(JSONB, default=None)
    # Claims by workers; also the fencing token that lets only the latest claim store a result.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    photos_deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)

    __table_args__ = (
        CheckConstraint("status IN ('pending', 'processing', 'ready', 'failed')", name="status_known"),
        CheckConstraint("height_cm BETWEEN 100 AND 230", name="height_plausible"),
        CheckConstraint("weight_kg IS NULL OR weight_kg BETWEEN 30 AND 300", name="weight_plausible"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        # A user's measurements, newest first (a backward scan serves DESC).
        Index("ix_measurements_user_created", "user_id", "created_at"),
        # The body profile: a user's latest ready measurement.
        Index("ix_measurements_user_ready", "user_id", "created_at", postgresql_where=READY),
        # The stuck sweep only looks at the few measurements still in flight.
        Index("ix_measurements_in_flight", "created_at", postgresql_where=IN_FLIGHT),
        # Photo retention: finished measurements whose photos are still stored.
        Index(
            "ix_measurements_photo_retention",
            "completed_at",
            postgresql_where=text("photos_deleted_at IS NULL AND completed_at IS NOT NULL"),
        ),
        Index(
            "ix_measurements_embedding_hnsw",
            "embedding",
            postgresql_using="hnsw",
            postgresql_with={"m": 16, "ef_construction": 64},
            postgresql_ops={"embedding": "vector_l2_ops"},
            postgresql_where=READY,
        ),
    )
