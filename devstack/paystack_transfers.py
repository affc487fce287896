"""The transfer side of the Paystack stand-in (``devstack/paystack.py``): bank account resolution,
transfer recipients and transfers, as Paystack's API answers them (envelope ``{"status", "message",
"data"}``).

* ``GET /bank/resolve?account_number=&bank_code=``: any 10-digit number at a 3-6 digit bank code
  resolves to ``SANDBOX ACCOUNT <last 4>`` (as the sandbox provider does), except those in
  ``unresolvable``; others are 422 ``Could not resolve account name``.
* ``POST /transferrecipient`` ``{type: "nuban", name, account_number, bank_code, currency}``: the
  recipient (an account it already has gives the same ``recipient_code``, as Paystack does).
* ``POST /transfer`` ``{source: "balance", amount, recipient, reference, reason, currency?}``: the
  transfer, ``pending``; a reference seen before is 400 ``Duplicate Transfer Reference`` and an
  unknown recipient 400. With ``transfer_delay`` the stand-in accepts the transfer, then waits that
  long before answering (a worker can be killed while it waits).
* ``GET /transfer/verify/{reference}``: the transfer; an unknown reference is 404 ``Transfer not
  found``.

Once it has answered, a transfer is settled by ``outcome``: ``success`` (``transfer.success``),
``failed`` (``transfer.failed``) or ``reversed`` (``transfer.success``, then ``transfer.reversed``),
and its webhooks go out as the stand-in's charge webhooks do (``webhook_url``, else kept for the
caller to take; none with ``drop_webhooks``). With ``auto_settle`` off, transfers stay ``pending``
until :meth:`TransferDesk.settle` is called.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

from core.adapters.payments import Transfer
from core.adapters.payments.sandbox import sandbox_account_name, sandbox_transfer_code, transfer_event

Outcome = Literal["success", "failed", "reversed"]
Answer = tuple[int, dict[str, Any]]

NOT_RESOLVED = {"status": False, "message": "Could not resolve account name. Check parameters or try again."}
TRANSFER_NOT_FOUND = {"status": False, "message": "Transfer not found", "code": "transfer_not_found"}
FAILURE = "Account is not able to receive funds"


@dataclass(slots=True)
class StandInTransfer:
    id: int
    reference: str
    transfer_code: str
    amount: int
    currency: str
    recipient_code: str
    reason: str
    status: str = "pending"
    events: list[str] = field(default_factory=list)

    def data(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "domain": "test",
            "reference": self.reference,
            "transfer_code": self.transfer_code,
            "amount": self.amount,
            "currency": self.currency,
            "source": "balance",
            "reason": self.reason,
            "recipient": self.recipient_code,
            "status": self.status,
            "failures": {"reason": FAILURE} if self.status == "failed" else None,
        }

    def webhook_body(self, event: str) -> bytes:
        transfer = Transfer(self.reference, self.transfer_code, self.status, self.amount, self.currency)
        failure = FAILURE if event == "transfer.failed" else None
        return transfer_event(
            event, transfer, recipient_code=self.recipient_code, reason=self.reason, failure_reason=failure
        )


class TransferDesk:
    """The stand-in's transfers, recipients and switches (thread-safe: the server is threaded)."""

    def __init__(self) -> None:
        self.outcome: Outcome = "success"
        self.transfer_delay = 0.0
        self.auto_settle = True
        self.unresolvable: set[str] = set()
        self._recipients: dict[str, dict[str, Any]] = {}
        self._transfers: dict[str, StandInTransfer] = {}
        self._lock = threading.Lock()

    def count(self) -> int:
        """Transfers accepted (each reference once)."""
        with self._lock:
            return len(self._transfers)

    def resolve(self, account_number: str, bank_code: str) -> Answer:
        if (
            not re.fullmatch(r"[0-9]{10}", account_number)
            or not re.fullmatch(r"[0-9]{3,6}", bank_code)
            or account_number in self.unresolvable
        ):
            return 422, NOT_RESOLVED
        data = {"account_number": account_number, "account_name": sandbox_account_name(account_number)}
        return 200, {"status": True, "message": "Account number resolved", "data": data}

    def create_recipient(self, body: dict[str, Any]) -> Answer:
        number, bank = str(body.get("account_number") or ""), str(body.get("bank_code") or "")
        if body.get("type") != "nuban" or self.resolve(number, bank)[0] != 200 or not body.get("name"):
            return 400, {"status": False, "message": "Invalid recipient details"}
        with self._lock:
            code = "RCP_" + hashlib.sha256(f"{bank}:{number}".encode()).hexdigest()[:14]
            self._recipients.setdefault(code, {"name": body["name"], "currency": body.get("currency", "NGN")})
        data = {"recipient_code": code, "type": "nuban", "name": body["name"], "active": True}
        return 201, {"status": True, "message": "Transfer recipient created successfully", "data": data}

    def transfer(self, body: dict[str, Any]) -> Answer:
        reference, amount = str(body.get("reference") or ""), body.get("amount")
        recipient = str(body.get("recipient") or "")
        if body.get("source") != "balance" or not reference or not isinstance(amount, int) or amount <= 0:
            return 400, {"status": False, "message": "source, amount, recipient and reference are required"}
        with self._lock:
            if recipient not in self._recipients:
                return 400, {"status": False, "message": "Recipient specified is invalid"}
            if reference in self._transfers:
                return 400, {"status": False, "message": "Duplicate Transfer Reference"}
            found = StandInTransfer(
                id=len(self._transfers) + 1,
                reference=reference,
                transfer_code=sandbox_transfer_code(reference),
                amount=amount,
                currency=str(body.get("currency") or self._recipients[recipient]["currency"]),
                recipient_code=recipient,
                reason=str(body.get("reason") or ""),
            )
            self._transfers[reference] = found
            return 200, {"status": True, "message": "Transfer has been queued", "data": found.data()}

    def verify(self, reference: str) -> Answer:
        with self._lock:
            found = self._transfers.get(reference)
            if found is None:
                return 404, TRANSFER_NOT_FOUND
            return 200, {"status": True, "message": "Transfer retrieved", "data": found.data()}

    def settle(self, reference: str) -> list[bytes]:
        """Give a pending transfer its ``outcome``; the webhook bodies that tells (none when it was
        settled already or is unknown)."""
        with self._lock:
            found = self._transfers.get(reference)
            if found is None or found.status != "pending":
                return []
            found.events = {
                "success": ["transfer.success"],
                "failed": ["transfer.failed"],
                "reversed": ["transfer.success", "transfer.reversed"],
            }[self.outcome]
            bodies = []
            for event in found.events:
                found.status = event.removeprefix("transfer.")
                bodies.append(found.webhook_body(event))
            return bodies

    def webhook_bodies(self, reference: str) -> list[bytes]:
        """The webhooks a settled transfer made, again (a late delivery).

        Raises:
            KeyError: no such transfer.
        """
        with self._lock:
            found = self._transfers[reference]
            return [found.webhook_body(event) for event in found.events]
