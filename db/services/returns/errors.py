"""Errors of returns (mapped to HTTP by ``api/errors.py``)."""

from __future__ import annotations

from core.errors import Conflict, InvalidInput, NotFound


class ReturnNotFound(NotFound):
    code = "return_not_found"
    title = "Return not found"


class ReturnNotAllowed(InvalidInput):
    """Lines that cannot be returned: not delivered, past the window, final sale, or too many units."""

    code = "return_not_allowed"
    title = "These items cannot be returned"


class InvalidReturnMove(Conflict):
    code = "invalid_return_transition"
    title = "This return cannot change that way"
