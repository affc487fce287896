"""Errors of vouchers (mapped to HTTP by ``api/errors.py``).

A code that cannot be used is a 422 whose ``type`` names the reason (``voucher_expired``,
``voucher_exhausted``, ...) and whose ``errors`` name the field the code came in (``code`` when
applied to the cart, ``voucher_code`` when ordering) with the reason in words.
"""

from __future__ import annotations

from core.errors import InvalidInput, NotFound
from core.rules.vouchers import MESSAGES


class VoucherNotFound(NotFound):
    code = "voucher_not_found"
    title = "Voucher not found"


class InvalidVoucher(InvalidInput):
    """A code a vendor or staff member wants to issue is not acceptable (the fields say why)."""

    code = "invalid_voucher"
    title = "The voucher is not valid"


class VoucherRefused(InvalidInput):
    """A shopper's code cannot be used; subclasses say why."""

    code = "voucher_refused"
    title = "This voucher cannot be used"
    reason = "unknown"

    def __init__(self, field: str) -> None:
        message = MESSAGES[self.reason]
        super().__init__(
            f"This voucher cannot be used: {message}.", errors=[{"field": field, "message": message}]
        )


class VoucherUnknown(VoucherRefused):
    code = "voucher_unknown"
    reason = "unknown"


class VoucherNotYetValid(VoucherRefused):
    code = "voucher_not_yet_valid"
    reason = "not_yet_valid"


class VoucherExpired(VoucherRefused):
    code = "voucher_expired"
    reason = "expired"


class VoucherExhausted(VoucherRefused):
    code = "voucher_exhausted"
    reason = "exhausted"


class VoucherLimitReached(VoucherRefused):
    code = "voucher_limit_reached"
    reason = "limit_reached"


class VoucherNotApplicable(VoucherRefused):
    code = "voucher_not_applicable"
    reason = "not_applicable"


class VoucherBelowMinimum(VoucherRefused):
    code = "voucher_below_minimum"
    reason = "below_minimum"


_BY_REASON: dict[str, type[VoucherRefused]] = {
    cls.reason: cls
    for cls in (
        VoucherUnknown,
        VoucherNotYetValid,
        VoucherExpired,
        VoucherExhausted,
        VoucherLimitReached,
        VoucherNotApplicable,
        VoucherBelowMinimum,
    )
}


def refused(reason: str, field: str) -> VoucherRefused:
    """The error for ``reason`` (one of ``core.rules.vouchers.REFUSALS``), naming ``field``."""
    return _BY_REASON[reason](field)
