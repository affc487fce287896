"""Errors of payouts (mapped to HTTP by ``api/errors.py``)."""

from __future__ import annotations

from core.adapters.payments import PaymentProviderError
from core.errors import Conflict, InvalidInput, NotFound


class PayoutAccountNotFound(NotFound):
    code = "payout_account_not_found"
    title = "No payout account"


class PayoutNotFound(NotFound):
    code = "payout_not_found"
    title = "Payout not found"


class AccountNotResolved(InvalidInput):
    """The provider could not resolve the bank account (wrong number or bank)."""

    code = "payout_account_not_resolved"
    title = "The bank account could not be verified"


class PayoutAccountRequired(InvalidInput):
    code = "payout_account_required"
    title = "Register a payout account first"


class PayoutNotAllowed(InvalidInput):
    """Below the minimum payout, or more than is available."""

    code = "payout_amount_not_allowed"
    title = "This amount cannot be paid out"


class PayoutsOnHold(Conflict):
    """Staff hold the vendor's payouts: the state of the vendor's account, not the request, stands
    in the way, hence 409 (until staff release them)."""

    code = "payouts_on_hold"
    title = "Payouts are on hold"


class OtherProvider(PaymentProviderError):
    """A payout (or transfer event) of another provider than this process's: another worker, or
    this one once configured for it, must handle it (retried like a provider outage)."""

    code = "payout_of_another_provider"
    title = "This payout belongs to another payment provider"
