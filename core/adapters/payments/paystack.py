"""The Paystack API (https://paystack.com/docs/api/): initialize, verify and refund transactions;
resolve bank accounts, create transfer recipients, initiate and verify transfers (payouts)."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec

from core.adapters.payments import (
    InitializedPayment,
    PaymentProviderError,
    PaymentProviderRefused,
    PaymentRequest,
    TransactionNotFound,
    Transfer,
    TransferNotFound,
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


class _Transfer(msgspec.Struct):
    reference: str
    transfer_code: str
    status: str
    amount: int | None = None
    currency: str | None = None
    failures: Any = None


def _transfer(data: Any) -> Transfer:
    tx = msgspec.convert(data, _Transfer, strict=False)
    failures = tx.failures if isinstance(tx.failures, dict) else {}
    reason = failures.get("reason") or failures.get("message")
    return Transfer(
        reference=tx.reference,
        transfer_code=tx.transfer_code,
        status=tx.status,
        amount=tx.amount,
        currency=tx.currency,
        failure_reason=str(reason) if reason else None,
    )


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

    async def _call(
        self,
        method: str,
        path: str,
        json: dict[str, Any] | None = None,
        *,
        params: dict[str, str] | None = None,
        refusable: bool = False,
    ) -> Any:
        """The ``data`` of Paystack's answer.

        Raises:
            TransactionNotFound / TransferNotFound: a verify of a reference Paystack does not know.
            PaymentProviderRefused: with ``refusable``, a 400 or 422 (Paystack said no).
            PaymentProviderError: unreachable, or refused otherwise.
        """
        try:
            response = await self._client.request(method, path, json=json, params=params)
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
            if path.startswith("/transfer/verify/") and _not_found(response.status_code, envelope):
                raise TransferNotFound(f"The payment provider has no such transfer: {message}")
            if refusable and response.status_code in (400, 422):
                log.info("paystack said no", path=path, status=response.status_code, message=message)
                raise PaymentProviderRefused(message)
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

    async def resolve_account(self, bank_code: str, account_number: str) -> str:
        """The account's name (``GET /bank/resolve``); PaymentProviderRefused when it does not resolve."""
        params = {"account_number": account_number, "bank_code": bank_code}
        data = await self._call("GET", "/bank/resolve", params=params, refusable=True)
        name = data.get("account_name") if isinstance(data, dict) else None
        if not isinstance(name, str) or not name.strip():
            raise PaymentProviderRefused("The account did not resolve to a name.")
        return name.strip()

    async def create_recipient(self, name: str, account_number: str, bank_code: str, currency: str) -> str:
        """A ``nuban`` transfer recipient (``POST /transferrecipient``): its ``recipient_code``.
        Paystack returns the existing recipient for an account it already has."""
        body = {
            "type": "nuban",
            "name": name,
            "account_number": account_number,
            "bank_code": bank_code,
            "currency": currency,
        }
        data = await self._call("POST", "/transferrecipient", body, refusable=True)
        code = data.get("recipient_code") if isinstance(data, dict) else None
        if not isinstance(code, str) or not code:
            raise PaymentProviderError("The payment provider answered without a recipient code.")
        return code

    async def transfer(
        self, *, reference: str, amount: int, currency: str, recipient_code: str, reason: str
    ) -> Transfer:
        """``POST /transfer`` from our balance. Its status (``pending``, or ``otp`` when the
        integration still asks for one) says it was accepted, not that it arrived."""
        body = {
            "source": "balance",
            "amount": amount,
            "currency": currency,
            "recipient": recipient_code,
            "reference": reference,
            "reason": reason,
        }
        return _transfer(await self._call("POST", "/transfer", body, refusable=True))

    async def verify_transfer(self, reference: str) -> Transfer:
        """Paystack's record of the transfer ``reference`` (``GET /transfer/verify/{reference}``).

        Raises:
            TransferNotFound: Paystack has no transfer under ``reference``.
            PaymentProviderError: unreachable, or refused otherwise.
        """
        return _transfer(await self._call("GET", f"/transfer/verify/{reference}"))

    async def close(self) -> None:
        await self._client.aclose()
