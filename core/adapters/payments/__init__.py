"""Payment providers: one interface, a Paystack adapter and a local sandbox for development.

The provider only talks to the outside world (initialize a transaction, verify it, refund it);
what a payment means for an order is decided in ``db.services.payments``. Webhooks are signed
the Paystack way: ``x-paystack-signature`` is the hex HMAC-SHA512 of the raw body with the
secret key.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Protocol

from core.errors import ServiceUnavailable
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


class PaymentProviderError(ServiceUnavailable):
    """The provider could not be reached or refused the call; the client should retry later."""

    code = "payment_provider_unavailable"
    title = "Payment provider unavailable"


class PaymentProvider(Protocol):
    name: str

    async def initialize(self, request: PaymentRequest) -> InitializedPayment:
        """Start a transaction; raises PaymentProviderError."""
        ...

    async def verify(self, reference: str) -> VerifiedPayment | None:
        """The provider's record of ``reference``; None when it keeps none (the sandbox)."""
        ...

    async def refund(self, reference: str, amount: int) -> None:
        """Refund a successful transaction; raises PaymentProviderError."""
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

    return SandboxProvider(base_url=settings.public_api_base_url)
