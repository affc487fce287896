"""Payment providers: one interface, a Paystack adapter and a local sandbox for development.

The provider only talks to the outside world (initialize a transaction, verify it, refund it;
resolve a bank account, make it a transfer recipient, transfer to it, verify the transfer); what
a payment means for an order is decided in ``db.services.payments``, what a transfer means for a
vendor's payout in ``db.services.payouts``. Webhooks are signed
the Paystack way: ``x-paystack-signature`` is the hex HMAC-SHA512 of the raw body with the
secret key.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Protocol

from core.errors import DomainError, ServiceUnavailable
from core.settings import Settings


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    reference: str
    amount: int  # minor units
    currency: str
    email: str
    callback_url: str | None


@dataclass(frozen=True, slots=True)
class InitializedPayment:
    authorization_url: str


@dataclass(frozen=True, slots=True)
class VerifiedPayment:
    """The provider's own record of a transaction."""

    reference: str
    succeeded: bool
    amount: int
    currency: str
    # What the provider kept of the charge (minor units), when it says.
    fees: int | None = None


class PaymentProviderError(ServiceUnavailable):
    """The provider could not be reached or refused the call; the client should retry later."""

    code = "payment_provider_unavailable"
    title = "Payment provider unavailable"


class TransactionNotFound(PaymentProviderError):
    """The provider has no transaction under this reference (nothing was ever charged for it)."""

    code = "payment_transaction_not_found"
    title = "Payment transaction not found at the provider"


class PaymentProviderRefused(DomainError):
    """The provider answered and said no (an account that does not resolve, a transfer it will not
    make): asking again will not change its mind, unlike :class:`PaymentProviderError`."""

    status_code = 422
    code = "payment_provider_refused"
    title = "The payment provider refused the request"


class TransferNotFound(PaymentProviderError):
    """The provider has no transfer under this reference (it never accepted one)."""

    code = "transfer_not_found"
    title = "Transfer not found at the payment provider"


@dataclass(frozen=True, slots=True)
class Transfer:
    """A transfer as the provider reports it, when it was made or when it is verified.

    ``status`` is the provider's word: ``pending``, ``otp``, ``received`` (still under way),
    ``success``, ``failed``, ``abandoned``, ``blocked``, ``rejected``, ``reversed``.
    """

    reference: str
    transfer_code: str
    status: str
    amount: int | None = None
    currency: str | None = None
    failure_reason: str | None = None


class PaymentProvider(Protocol):
    name: str

    async def initialize(self, request: PaymentRequest) -> InitializedPayment:
        """Start a transaction; raises PaymentProviderError."""
        ...

    async def verify(self, reference: str) -> VerifiedPayment | None:
        """The provider's record of ``reference``; None when it keeps none (the sandbox).

        Raises TransactionNotFound when it keeps records but none of ``reference``, and
        PaymentProviderError when it cannot be asked."""
        ...

    async def refund(self, reference: str, amount: int) -> None:
        """Refund a successful transaction; raises PaymentProviderError."""
        ...

    async def resolve_account(self, bank_code: str, account_number: str) -> str:
        """The name on the account; raises PaymentProviderRefused when it does not resolve and
        PaymentProviderError when the provider cannot be asked."""
        ...

    async def create_recipient(self, name: str, account_number: str, bank_code: str, currency: str) -> str:
        """A transfer recipient for the account: its code. Raises PaymentProviderRefused or
        PaymentProviderError."""
        ...

    async def transfer(
        self, *, reference: str, amount: int, currency: str, recipient_code: str, reason: str
    ) -> Transfer:
        """Send ``amount`` to a recipient under our unique ``reference`` (the provider refuses a
        reference twice). The answer says it was accepted; its outcome comes by webhook.

        Raises PaymentProviderRefused (not sent) or PaymentProviderError (it may or may not have
        been accepted: verify by reference before sending again)."""
        ...

    async def verify_transfer(self, reference: str) -> Transfer | None:
        """The provider's record of the transfer ``reference``; None when it keeps none (the
        sandbox). Raises TransferNotFound when it keeps records but none of ``reference``, and
        PaymentProviderError when it cannot be asked."""
        ...

    async def close(self) -> None: ...


def sign(body: bytes, secret: str) -> str:
    """The ``x-paystack-signature`` of ``body``."""
    return hmac.new(secret.encode(), body, hashlib.sha512).hexdigest()


def signature_matches(body: bytes, signature: str | None, secret: str) -> bool:
    """Constant-time check of a webhook signature against the raw body."""
    if not signature:
        return False
    return hmac.compare_digest(sign(body, secret).encode(), signature.strip().lower().encode())


def build_payment_provider(settings: Settings) -> PaymentProvider:
    """The provider ``PAYMENT_PROVIDER`` names."""
    if settings.payment_provider == "paystack":
        from core.adapters.payments.paystack import PaystackProvider  # noqa: PLC0415  # only when configured

        return PaystackProvider(
            secret_key=settings.paystack_secret_key.reveal(),
            base_url=settings.paystack_base_url,
            timeout=settings.payment_http_timeout_seconds,
        )
    from core.adapters.payments.sandbox import SandboxProvider  # noqa: PLC0415

    return SandboxProvider(
        settings.public_api_base_url,
        secret=settings.paystack_secret_key.reveal(),
        transfer_webhook_url=_sandbox_webhook_url(settings),
    )


def _sandbox_webhook_url(settings: Settings) -> str | None:
    """Where the sandbox delivers its transfer webhooks: the dev stack's own API (``up`` serves it
    on API_HOST:API_PORT). Elsewhere (tests) nowhere: an address there may be someone else's."""
    if settings.app_env != "dev":
        return None
    host = "127.0.0.1" if settings.api_host in ("0.0.0.0", "::", "") else settings.api_host  # noqa: S104  # a bind-all address is not one to call
    return f"http://{host}:{settings.api_port}/api/v1/webhooks/paystack"
