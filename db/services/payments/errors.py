"""Errors of payments and payment webhooks (mapped to HTTP by ``api/errors.py``)."""

from __future__ import annotations

from core.errors import Conflict, DomainError, NotFound


class OrderNotPayable(Conflict):
    code = "order_not_payable"
    title = "This order cannot be paid"


class MalformedWebhook(DomainError):
    status_code = 400
    code = "malformed_webhook"
    title = "Webhook body is not a payment event"


class PaymentEventNotFound(NotFound):
    code = "payment_event_not_found"


class PaymentNotFound(NotFound):
    code = "payment_not_found"
