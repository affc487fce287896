"""The Paystack API (https://paystack.com/docs/api/): initialize, verify and refund transactions."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec

from core.adapters.payments import (
    InitializedPayment,
    PaymentProviderError,
    PaymentRequest,
    TransactionNotFound,
    VerifiedPayment,
)
from core.logging import get_logger

log = get_logger(__name__)


class _Envelope(msgspec.Struct):
    status: bool
    message: str = ""
    data: Any = None
    code: str | None = None  # on errors, e.g. "transaction_not_found"


def _not_found(status_code: int, envelope: _Envelope | None) -> bool:
    """Paystack's answer to a reference it has no transaction for (400 or 404, by code or text)."""
    if status_code not in (400, 404) or envelope is None:
        return False
    return envelope.code == "transaction_not_found" or "not found" in envelope.message.lower()


class _Initialized(msgspec.Struct):
    authorization_url: str
    reference: str


class _Transaction(msgspec.Struct):
    reference: str
    status: str
    amount: int
    currency: str
    fees: int | None = None


class PaystackProvider:
    name = "paystack"

    def __init__(
        self,
        *,
        secret_key: str,
        base_url: str,
        timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {secret_key}", "Content-Type": "application/json"},
            timeout=timeout,
            transport=transport,
        )

    async def _call(self, method: str, path: str, json: dict[str, Any] | None = None) -> Any:
        try:
            response = await self._client.request(method, path, json=json)
        except httpx.HTTPError as exc:
            log.warning("paystack unreachable", path=path, error=type(exc).__name__)
            raise PaymentProviderError("The payment provider could not be reached; please retry.") from exc
        try:
            envelope = msgspec.json.decode(response.content, type=_Envelope)
        except msgspec.DecodeError:
            envelope = None
        if response.status_code >= 400 or envelope is None or not envelope.status:
            message = envelope.message if envelope is not None else response.text[:200]
            if path.startswith("/transaction/verify/") and _not_found(response.status_code, envelope):
                raise TransactionNotFound(f"The payment provider has no such transaction: {message}")
            log.warning("paystack refused", path=path, status=response.status_code, message=message)
            raise PaymentProviderError(f"The payment provider refused the request: {message}")
        return envelope.data

    async def initialize(self, request: PaymentRequest) -> InitializedPayment:
        body: dict[str, Any] = {
            "email": request.email,
            "amount": request.amount,
            "currency": request.currency,
            "reference": request.reference,
        }
        if request.callback_url:
            body["callback_url"] = request.callback_url
        data = msgspec.convert(await self._call("POST", "/transaction/initialize", body), _Initialized)
        return InitializedPayment(authorization_url=data.authorization_url)

    async def verify(self, reference: str) -> VerifiedPayment:
        """Paystack's record of ``reference``: ``succeeded`` only for status ``success`` (not for
        ``abandoned``, ``failed``, ``ongoing``, ``pending``, ``reversed``, ...).

        Raises:
            TransactionNotFound: Paystack has no transaction under ``reference``.
            PaymentProviderError: unreachable, or refused otherwise.
        """
        data = await self._call("GET", f"/transaction/verify/{reference}")
        tx = msgspec.convert(data, _Transaction, strict=False)
        return VerifiedPayment(
            reference=tx.reference,
            succeeded=tx.status == "success",
            amount=tx.amount,
            currency=tx.currency,
            fees=tx.fees,
        )

    async def refund(self, reference: str, amount: int) -> None:
        await self._call("POST", "/refund", {"transaction": reference, "amount": amount})

    async def close(self) -> None:
        await self._client.aclose()
