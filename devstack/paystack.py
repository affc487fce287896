"""A stand-in for Paystack's HTTP API on loopback, so tests and benchmarks take payments the
production way (``PAYMENT_PROVIDER=paystack`` with ``PAYSTACK_BASE_URL`` pointing here).

Paystack's protocol (https://paystack.com/docs/api/), every answer in its envelope ``{"status":
bool, "message": str, "data": ...}``, every call without the secret key as bearer token refused
with 401 as Paystack refuses it:

* ``POST /transaction/initialize`` ``{email, amount, currency, reference}``: the transaction, and
  an ``authorization_url`` on this server. It stays ``abandoned`` until the shopper pays.
* ``GET /transaction/verify/{reference}``: the transaction, ``status`` ``abandoned`` or
  ``success`` with what was charged; an unknown reference is 400 ``Transaction reference not
  found`` (``code: transaction_not_found``).
* ``POST /refund`` ``{transaction, amount?}``: gives back ``amount`` (all that remains when
  omitted) of a successful transaction; more than remains, or a transaction never paid, is 400.

Transfers (payouts): ``GET /bank/resolve``, ``POST /transferrecipient``, ``POST /transfer`` and
``GET /transfer/verify/{reference}``, with switches for a transfer's outcome (``success``,
``failed``, ``reversed``) and a slow answer: ``devstack/paystack_transfers.py``. Their webhooks go
to ``webhook_url`` when one is set; otherwise they wait in :meth:`PaystackStandIn.take_webhooks`.

Not Paystack's: ``GET /checkout/{reference}`` is the checkout page (the ``authorization_url``):
opening it pays the transaction as initialized. ``GET /_stats`` counts calls by kind.

Paying (the checkout page, or :meth:`PaystackStandIn.pay`) makes the ``charge.success`` webhook,
signed as Paystack signs it. It is POSTed to ``webhook_url`` when one is set; without one,
:meth:`PaystackStandIn.pay` hands it to its caller to deliver (in-process tests, whose API has no
socket). With ``drop_webhooks`` it goes nowhere, as when a provider's webhook is lost;
:meth:`PaystackStandIn.webhook` still makes it for a late delivery.

    python -m devstack.paystack --port 8765 [--webhook-url URL] [--drop-webhooks]

(``PAYSTACK_SECRET_KEY`` in the environment). It listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import httpx

from core.adapters.payments import sign
from core.adapters.payments.sandbox import charge_success_event
from devstack.paystack_transfers import TransferDesk

HOST = "127.0.0.1"
NOT_FOUND = {"status": False, "message": "Transaction reference not found", "code": "transaction_not_found"}


@dataclass(frozen=True, slots=True)
class Webhook:
    """A signed webhook delivery: POST ``body`` with ``headers`` to ``/api/v1/webhooks/paystack``."""

    body: bytes
    headers: dict[str, str]


@dataclass(slots=True)
class Transaction:
    id: int
    reference: str
    amount: int  # as initialized; once paid, what was charged
    currency: str
    email: str
    status: str = "abandoned"
    paid_at: str | None = None
    refunded: int = 0

    def data(self) -> dict[str, Any]:
        """The transaction as ``/transaction/verify`` shows it."""
        return {
            "id": self.id,
            "domain": "test",
            "status": self.status,
            "reference": self.reference,
            "amount": self.amount,
            "currency": self.currency,
            "gateway_response": "Successful"
            if self.status == "success"
            else "The transaction was not completed",
            "paid_at": self.paid_at,
            "channel": "card",
            "customer": {"email": self.email},
        }


class PaystackStandIn:
    """The stand-in's state and its HTTP server (started in a thread of this process)."""

    def __init__(
        self, secret: str, *, port: int = 0, webhook_url: str | None = None, drop_webhooks: bool = False
    ) -> None:
        self.secret = secret
        self.webhook_url = webhook_url
        self.drop_webhooks = drop_webhooks
        # Seconds each verification takes to answer (a slow provider).
        self.verify_delay = 0.0
        self.calls: Counter[str] = Counter()
        # Bank accounts, recipients and transfers, with their switches (outcome, delay).
        self.transfers = TransferDesk()
        self._undelivered: list[Webhook] = []
        self._transactions: dict[str, Transaction] = {}
        self._lock = threading.Lock()
        self._server = _Server((HOST, port), _Handler)
        self._server.stand_in = self
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """What ``PAYSTACK_BASE_URL`` is set to."""
        return f"http://{HOST}:{self.port}"

    def start(self) -> PaystackStandIn:
        self._thread = threading.Thread(target=self._server.serve_forever, name="paystack", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> PaystackStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the provider's side ------------------------------------------------------------------
    def initialize(self, reference: str, amount: int, currency: str, email: str) -> Transaction:
        with self._lock:
            self.calls["initialize"] += 1
            found = self._transactions.get(reference)
            if found is None:
                found = Transaction(len(self._transactions) + 1, reference, amount, currency, email)
                self._transactions[reference] = found
            return found

    def verify(self, reference: str) -> dict[str, Any] | None:
        """The transaction as ``/transaction/verify`` shows it; None when there is none."""
        with self._lock:
            self.calls["verify"] += 1
            found = self._transactions.get(reference)
            return None if found is None else found.data()

    def pay(self, reference: str, *, amount: int | None = None) -> Webhook | None:
        """The shopper pays ``reference`` (``amount``: charged instead of the amount initialized).

        Returns the ``charge.success`` webhook for the caller to deliver, or None when it is
        dropped or was POSTed to ``webhook_url``.

        Raises:
            KeyError: no such transaction.
            httpx.HTTPError: ``webhook_url`` could not be reached (the charge stands).
        """
        with self._lock:
            found = self._transactions[reference]
            found.status = "success"
            found.amount = found.amount if amount is None else amount
            found.paid_at = datetime.now(UTC).isoformat()
            self.calls["paid"] += 1
        webhook = self.webhook(reference)
        if self.drop_webhooks:
            self.calls["webhook_dropped"] += 1
            return None
        if self.webhook_url is None:
            return webhook
        httpx.post(self.webhook_url, content=webhook.body, headers=webhook.headers, timeout=10)
        self.calls["webhook_sent"] += 1
        return None

    def webhook(self, reference: str) -> Webhook:
        """The signed ``charge.success`` of a paid transaction (whether or not it was sent).

        Raises:
            KeyError: no such transaction.
        """
        with self._lock:
            found = self._transactions[reference]
        return self._signed(charge_success_event(found.reference, found.amount, found.currency, found.email))

    def _signed(self, body: bytes) -> Webhook:
        return Webhook(
            body=body,
            headers={"x-paystack-signature": sign(body, self.secret), "content-type": "application/json"},
        )

    def settle_transfer(self, reference: str) -> None:
        """Give a pending transfer its outcome and send its webhooks (as ``pay`` sends a charge's):
        to ``webhook_url``, else kept for :meth:`take_webhooks`; none with ``drop_webhooks``."""
        for body in self.transfers.settle(reference):
            webhook = self._signed(body)
            with self._lock:
                self.calls["transfer_settled"] += 1
                if self.drop_webhooks:
                    self.calls["webhook_dropped"] += 1
                    continue
                if self.webhook_url is None:
                    self._undelivered.append(webhook)
                    continue
            httpx.post(self.webhook_url, content=webhook.body, headers=webhook.headers, timeout=10)
            self.calls["webhook_sent"] += 1

    def take_webhooks(self, expect: int = 0, *, timeout: float = 10.0) -> list[Webhook]:
        """The transfer webhooks made and not delivered (no ``webhook_url``), oldest first, each once;
        waiting up to ``timeout`` s for ``expect`` of them (transfers settle after their answer)."""
        deadline = time.monotonic() + timeout
        while len(self._undelivered) < expect and time.monotonic() < deadline:
            time.sleep(0.01)
        with self._lock:
            taken, self._undelivered = self._undelivered, []
            return taken

    def transfer_webhooks(self, reference: str) -> list[Webhook]:
        """The signed webhooks of a settled transfer, again (a late delivery); KeyError if unknown."""
        return [self._signed(body) for body in self.transfers.webhook_bodies(reference)]

    def refund(self, reference: str, amount: int | None) -> tuple[int, dict[str, Any]]:
        """(HTTP status, envelope) of a refund of ``amount`` (None: all that remains)."""
        with self._lock:
            self.calls["refund"] += 1
            found = self._transactions.get(reference)
            if found is None:
                return 400, NOT_FOUND
            left = found.amount - found.refunded
            wanted = left if amount is None else amount
            if found.status != "success" or wanted <= 0 or wanted > left:
                message = f"Cannot refund {wanted} of a {found.status} transaction with {left} left"
                return 400, {"status": False, "message": message}
            found.refunded += wanted
            data = {"transaction": found.data(), "amount": wanted, "currency": found.currency}
            return 200, {"status": True, "message": "Refund has been queued for processing", "data": data}

    def stats(self) -> dict[str, Any]:
        with self._lock:
            transactions = len(self._transactions)
        return {"calls": dict(self.calls), "transactions": transactions, "transfers": self.transfers.count()}


class _Server(ThreadingHTTPServer):
    stand_in: PaystackStandIn


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the provider's HTTP client expects
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # the base class's names
        return  # one line per call would be noise; /_stats counts them

    @property
    def stand_in(self) -> PaystackStandIn:
        return self.server.stand_in

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self) -> bool:
        if self.headers.get("Authorization") == f"Bearer {self.stand_in.secret}":
            return True
        self._answer(401, {"status": False, "message": "Invalid key"})
        return False

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        parsed = json.loads(raw or b"{}")
        return parsed if isinstance(parsed, dict) else {}

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if path == "/_stats":
            self._answer(200, self.stand_in.stats())
        elif path.startswith("/checkout/"):
            self._checkout(path.removeprefix("/checkout/"))
        elif not self._authorised():
            return
        elif path == "/bank/resolve":
            params = {name: values[0] for name, values in parse_qs(query).items()}
            self.stand_in.calls["resolve"] += 1
            self._answer(
                *self.stand_in.transfers.resolve(
                    params.get("account_number", ""), params.get("bank_code", "")
                )
            )
        elif path.startswith("/transfer/verify/"):
            self.stand_in.calls["transfer_verify"] += 1
            self._answer(*self.stand_in.transfers.verify(path.removeprefix("/transfer/verify/")))
        elif path.startswith("/transaction/verify/"):
            time.sleep(self.stand_in.verify_delay)
            found = self.stand_in.verify(path.removeprefix("/transaction/verify/"))
            if found is None:
                self._answer(400, NOT_FOUND)
            else:
                self._answer(200, {"status": True, "message": "Verification successful", "data": found})
        else:
            self._answer(404, {"status": False, "message": "Not found"})

    def _checkout(self, reference: str) -> None:
        try:
            self.stand_in.pay(reference)
        except KeyError:
            self._answer(404, NOT_FOUND)
            return
        except httpx.HTTPError as exc:
            self._answer(502, {"status": False, "message": f"webhook not delivered: {exc}"})
            return
        self._answer(200, {"status": True, "message": "Payment successful", "data": {"reference": reference}})

    def do_POST(self) -> None:
        if not self._authorised():
            return
        body = self._body()
        if self.path == "/transaction/initialize":
            self._initialize(body)
        elif self.path == "/transferrecipient":
            self.stand_in.calls["recipient"] += 1
            self._answer(*self.stand_in.transfers.create_recipient(body))
        elif self.path == "/transfer":
            self._transfer(body)
        elif self.path == "/refund":
            amount = body.get("amount")
            status, answer = self.stand_in.refund(
                str(body.get("transaction") or ""), amount if isinstance(amount, int) else None
            )
            self._answer(status, answer)
        else:
            self._answer(404, {"status": False, "message": "Not found"})

    def _transfer(self, body: dict[str, Any]) -> None:
        desk = self.stand_in.transfers
        self.stand_in.calls["transfer"] += 1
        status, answer = desk.transfer(body)
        if status == 200:
            time.sleep(desk.transfer_delay)  # accepted; the answer is late (its caller may be gone)
        with contextlib.suppress(OSError):  # the caller died waiting: the transfer stands, as at Paystack
            self._answer(status, answer)
        if status == 200 and desk.auto_settle:
            self.stand_in.settle_transfer(str(body["reference"]))

    def _initialize(self, body: dict[str, Any]) -> None:
        reference = str(body.get("reference") or "")
        amount, currency = body.get("amount"), body.get("currency")
        if not reference or not isinstance(amount, int) or not isinstance(currency, str):
            self._answer(400, {"status": False, "message": "reference, amount and currency are required"})
            return
        self.stand_in.initialize(reference, amount, currency, str(body.get("email") or ""))
        data = {
            "authorization_url": f"{self.stand_in.base_url}/checkout/{reference}",
            "access_code": reference[-12:],
            "reference": reference,
        }
        self._answer(200, {"status": True, "message": "Authorization URL created", "data": data})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--webhook-url", help="where paying POSTs the charge.success webhook")
    parser.add_argument("--drop-webhooks", action="store_true", help="never send a webhook")
    args = parser.parse_args(argv)
    stand_in = PaystackStandIn(
        os.environ["PAYSTACK_SECRET_KEY"],
        port=args.port,
        webhook_url=args.webhook_url,
        drop_webhooks=args.drop_webhooks,
    )
    print(f"paystack stand-in listening on {stand_in.base_url}", flush=True)
    stand_in.serve_forever()


if __name__ == "__main__":
    main()
