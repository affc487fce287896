"""The development payment provider: a local checkout page instead of Paystack.

Its ``authorization_url`` points at ``GET /api/v1/sandbox/paystack/checkout/{reference}`` on the
API itself; opening it "pays" by delivering a ``charge.success`` webhook, signed with
``PAYSTACK_SECRET_KEY`` exactly as Paystack signs them, to ``POST /api/v1/webhooks/paystack``.
The amount and currency it reports are the ones in the URL, so a test (or a curious developer)
can also simulate a customer paying the wrong amount. Never enabled in production.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import msgspec

from core.adapters.payments import InitializedPayment, PaymentRequest, VerifiedPayment

CHECKOUT_PATH = "/api/v1/sandbox/paystack/checkout"


class SandboxProvider:
    """Checkout URLs are built on ``base_url`` (``PUBLIC_BASE_URL``), never on the Host header of
    the request that asked for them: a forged Host would send the shopper elsewhere."""

    name = "sandbox"

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    async def initialize(self, request: PaymentRequest) -> InitializedPayment:
        query = urlencode({"amount": request.amount, "currency": request.currency, "email": request.email})
        return InitializedPayment(
            authorization_url=f"{self.base_url}{CHECKOUT_PATH}/{request.reference}?{query}"
        )

    async def verify(self, reference: str) -> VerifiedPayment | None:
        return None  # no record beyond the signed webhook itself

    async def refund(self, reference: str, amount: int) -> None:
        return None  # nothing was charged

    async def close(self) -> None:
        return None


def charge_success_event(reference: str, amount: int, currency: str, email: str) -> bytes:
    """A ``charge.success`` webhook body shaped like Paystack's."""
    event: dict[str, Any] = {
        "event": "charge.success",
        "data": {
            "id": int(datetime.now(UTC).timestamp() * 1000),
            "status": "success",
            "reference": reference,
            "amount": amount,
            "currency": currency,
            "channel": "sandbox",
            "paid_at": datetime.now(UTC).isoformat(),
            "customer": {"email": email},
        },
    }
    return msgspec.json.encode(event)
