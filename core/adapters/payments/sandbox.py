"""The development payment provider: a local checkout page instead of Paystack.

Its ``authorization_url`` points at ``GET /api/v1/sandbox/paystack/checkout/{reference}`` on the
API itself; opening it "pays" by delivering a ``charge.success`` webhook, signed with
``PAYSTACK_SECRET_KEY`` exactly as Paystack signs them, to ``POST /api/v1/webhooks/paystack``.
The amount and currency it reports are the ones in the URL, so a test (or a curious developer)
can also simulate a customer paying the wrong amount. Never enabled in production.

Payouts: any 10-digit account number resolves, to ``SANDBOX ACCOUNT <last 4 digits>``; others do
not. A transfer is accepted at once and "succeeds" by delivering a signed ``transfer.success``
webhook to ``transfer_webhook_url`` (the dev stack's own API) before :meth:`transfer` returns; with
no URL (tests) nothing is delivered and the caller delivers :func:`transfer_event` itself. The
sandbox keeps no records, so a transfer cannot be verified (``verify_transfer`` is None).
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import msgspec

from core.adapters.payments import (
    InitializedPayment,
    PaymentProviderRefused,
    PaymentRequest,
    Transfer,
    VerifiedPayment,
    sign,
)
from core.logging import get_logger

log = get_logger(__name__)

CHECKOUT_PATH = "/api/v1/sandbox/paystack/checkout"
NUBAN = re.compile(r"[0-9]{10}")


class SandboxProvider:
    """Checkout URLs are built on ``base_url`` (``PUBLIC_BASE_URL``), never on the Host header of
    the request that asked for them: a forged Host would send the shopper elsewhere."""

    name = "sandbox"

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        secret: str = "",
        transfer_webhook_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._secret = secret
        self._webhook_url = transfer_webhook_url
        # How webhooks reach the API (tests deliver through the app's ASGI stack in-process).
        self._transport = transport

    async def initialize(self, request: PaymentRequest) -> InitializedPayment:
        query = urlencode({"amount": request.amount, "currency": request.currency, "email": request.email})
        return InitializedPayment(
            authorization_url=f"{self.base_url}{CHECKOUT_PATH}/{request.reference}?{query}"
        )

    async def verify(self, reference: str) -> VerifiedPayment | None:
        return None  # no record beyond the signed webhook itself

    async def refund(self, reference: str, amount: int) -> None:
        return None  # nothing was charged

    async def resolve_account(self, bank_code: str, account_number: str) -> str:
        if not NUBAN.fullmatch(account_number):
            raise PaymentProviderRefused("Could not resolve account name. Check parameters or try again.")
        return sandbox_account_name(account_number)

    async def create_recipient(self, name: str, account_number: str, bank_code: str, currency: str) -> str:
        digest = hashlib.sha256(f"{bank_code}:{account_number}:{currency}".encode()).hexdigest()
        return f"RCP_sandbox{digest[:14]}"

    async def transfer(
        self, *, reference: str, amount: int, currency: str, recipient_code: str, reason: str
    ) -> Transfer:
        sent = Transfer(
            reference=reference,
            transfer_code=sandbox_transfer_code(reference),
            status="pending",
            amount=amount,
            currency=currency,
        )
        if self._webhook_url is not None:
            body = transfer_event("transfer.success", sent, recipient_code=recipient_code, reason=reason)
            await self._deliver(self._webhook_url, body)
        return sent

    async def verify_transfer(self, reference: str) -> Transfer | None:
        return None  # no record beyond the signed webhook itself

    async def _deliver(self, url: str, body: bytes) -> None:
        """POST a signed webhook; a failure is logged (the payout stays processing, as when a
        provider's webhook is lost)."""
        headers = {"x-paystack-signature": sign(body, self._secret), "content-type": "application/json"}
        try:
            async with httpx.AsyncClient(timeout=5, transport=self._transport) as client:
                response = await client.post(url, content=body, headers=headers)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("sandbox transfer webhook not delivered", url=url, error=type(exc).__name__)

    async def close(self) -> None:
        return None


def sandbox_account_name(account_number: str) -> str:
    """The name the sandbox (and the Paystack stand-in) resolves an account number to."""
    return f"SANDBOX ACCOUNT {account_number[-4:]}"


def sandbox_transfer_code(reference: str) -> str:
    return "TRF_" + hashlib.sha256(reference.encode()).hexdigest()[:16]


def sandbox_fee(amount: int) -> int:
    """The fee the sandbox reports for a charge, shaped like a card processor's local price:
    1.5 % plus 100.00 (the flat part waived under 2,500.00), capped at 2,000.00."""
    flat = 10_000 if amount >= 250_000 else 0
    return min(amount * 15 // 1_000 + flat, 200_000)


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
            "fees": sandbox_fee(amount),
            "channel": "sandbox",
            "paid_at": datetime.now(UTC).isoformat(),
            "customer": {"email": email},
        },
    }
    return msgspec.json.encode(event)


def transfer_event(
    event: str,
    transfer: Transfer,
    *,
    recipient_code: str = "",
    reason: str = "",
    failure_reason: str | None = None,
) -> bytes:
    """A ``transfer.success`` / ``transfer.failed`` / ``transfer.reversed`` webhook body shaped like
    Paystack's (``data`` is the transfer)."""
    status = {"transfer.success": "success", "transfer.failed": "failed", "transfer.reversed": "reversed"}
    now = datetime.now(UTC).isoformat()
    data: dict[str, Any] = {
        "id": int(datetime.now(UTC).timestamp() * 1000),
        "domain": "test",
        "status": status.get(event, event.rsplit(".", 1)[-1]),
        "reference": transfer.reference,
        "transfer_code": transfer.transfer_code,
        "amount": transfer.amount,
        "currency": transfer.currency,
        "source": "balance",
        "reason": reason,
        "failures": {"reason": failure_reason} if failure_reason else None,
        "recipient": {"recipient_code": recipient_code, "type": "nuban"},
        "transferred_at": now if event == "transfer.success" else None,
        "created_at": now,
        "updated_at": now,
    }
    return msgspec.json.encode({"event": event, "data": data})
