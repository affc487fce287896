"""Errors of the body-measurement domain."""

from __future__ import annotations

from core.errors import DomainError, InvalidInput, NotFound


class MeasurementNotFound(NotFound):
    title = "Measurement not found"
    code = "measurement_not_found"


class BodyProfileNotFound(NotFound):
    title = "No body profile"
    code = "body_profile_not_found"

    def __init__(self) -> None:
        super().__init__("You have no finished measurement yet; upload a front and a side photo.")


class UnusablePhoto(InvalidInput):
    """A photo that is an image but cannot be used (damaged, too small, too many pixels)."""

    title = "Unusable image"
    code = "unusable_image"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(
            f"The {field} photo cannot be used. {message}", errors=[{"field": field, "message": message}]
        )


def field_error(field: str, message: str) -> InvalidInput:
    return InvalidInput(message, errors=[{"field": field, "message": message}])


class MeasurementAbandoned(DomainError):
    """A worker gave up on a measurement before measuring it (it is now ``failed``).

    The failure is committed (``preserve_changes``) before this reaches the task.
    """

    status_code = 409
    title = "Measurement abandoned"
    code = "measurement_abandoned"
    preserve_changes = True


class InvalidReading(ValueError):
    """A reading that does not have the shape the product promises (a pipeline bug)."""
