"""Errors of shipping profiles and shipping choices (mapped to HTTP by ``api/errors.py``)."""

from __future__ import annotations

from core.errors import InvalidInput


class InvalidShippingProfile(InvalidInput):
    code = "invalid_shipping_profile"
    title = "The shipping profile is not valid"


class ShippingUnavailable(InvalidInput):
    """A vendor of the order has no method serving the address, or the chosen one does not."""

    code = "shipping_unavailable"
    title = "Shipping is not available for this address"


class InvalidShippingChoice(InvalidInput):
    code = "invalid_shipping_choice"
    title = "The shipping choice is not valid"
