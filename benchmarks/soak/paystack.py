"""A stand-in for Paystack's API on loopback, so the soak takes payments the production way.

    python -m benchmarks.soak.paystack --port 8765        (PAYSTACK_SECRET_KEY in the environment)

The API and the worker run with ``PAYMENT_PROVIDER=paystack`` and ``PAYSTACK_BASE_URL`` pointing
here: ``POST /orders/{id}/payments`` initializes a transaction (``POST /transaction/initialize``),
the worker verifies each ``charge.success`` webhook (``GET /transaction/verify/{reference}``)
before it pays the order, and refunds go to ``POST /refund``. Answers have Paystack's envelope
(``{"status": true, "message": ..., "data": ...}``); calls without the secret key as a bearer
token are refused (401), as Paystack refuses them.

A transaction is ``success`` for ``amount``/``currency`` as initialized: the soak's driver only
sends a webhook for a transaction it paid. An unknown reference is 404 (``status: false``).
``GET /_stats`` (not Paystack's) counts the calls, for the soak's report.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TRANSACTIONS: dict[str, dict[str, Any]] = {}
CALLS: Counter[str] = Counter()
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the provider's HTTP client expects
    secret = ""

    def log_message(self, format: str, *args: Any) -> None:  # the base class's names
        return  # one line per call would be noise; /_stats counts them

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self) -> bool:
        if self.headers.get("Authorization") == f"Bearer {self.secret}":
            return True
        self._answer(401, {"status": False, "message": "Invalid key"})
        return False

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        parsed = json.loads(raw or b"{}")
        return parsed if isinstance(parsed, dict) else {}

    def do_GET(self) -> None:
        if self.path == "/_stats":
            with LOCK:
                stats = {"calls": dict(CALLS), "transactions": len(TRANSACTIONS)}
            self._answer(200, stats)
            return
        if not self._authorised():
            return
        prefix = "/transaction/verify/"
        if not self.path.startswith(prefix):
            self._answer(404, {"status": False, "message": "Not found"})
            return
        reference = self.path[len(prefix) :]
        with LOCK:
            CALLS["verify"] += 1
            found = TRANSACTIONS.get(reference)
        if found is None:
            self._answer(404, {"status": False, "message": "Transaction reference not found"})
            return
        data = {"reference": reference, "status": "success", **found}
        self._answer(200, {"status": True, "message": "Verification successful", "data": data})

    def do_POST(self) -> None:
        if not self._authorised():
            return
        body = self._body()
        if self.path == "/transaction/initialize":
            reference = str(body.get("reference") or "")
            amount, currency = body.get("amount"), body.get("currency")
            if not reference or not isinstance(amount, int) or not isinstance(currency, str):
                self._answer(400, {"status": False, "message": "reference, amount and currency are required"})
                return
            with LOCK:
                CALLS["initialize"] += 1
                TRANSACTIONS[reference] = {"amount": amount, "currency": currency}
            data = {
                "authorization_url": f"https://checkout.paystack.test/{reference}",
                "access_code": reference[-12:],
                "reference": reference,
            }
            self._answer(200, {"status": True, "message": "Authorization URL created", "data": data})
        elif self.path == "/refund":
            with LOCK:
                CALLS["refund"] += 1
            self._answer(
                200, {"status": True, "message": "Refund has been queued for processing", "data": body}
            )
        else:
            self._answer(404, {"status": False, "message": "Not found"})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    Handler.secret = os.environ["PAYSTACK_SECRET_KEY"]
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"fake paystack listening on 127.0.0.1:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
