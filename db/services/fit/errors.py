"""Errors of the fit domain."""

from __future__ import annotations

from core.errors import Conflict, InvalidInput


class BodyProfileRequired(Conflict):
    """Size advice needs a finished measurement (409: the caller can fix it by measuring)."""

    title = "Body profile required"
    code = "body_profile_required"

    def __init__(self) -> None:
        super().__init__(
            "Size advice needs your body measurements: upload a front and a side photo first "
            "(POST /api/v1/measurements) and wait until the measurement is ready."
        )


class NoSizeChart(InvalidInput):
    title = "No size chart"
    code = "no_size_chart"

    def __init__(self) -> None:
        super().__init__(
            "This product has no size chart, so there is nothing to compare your measurements with.",
            errors=[{"field": "product_id", "message": "the product has no size chart"}],
        )
