"""Receiving payment webhooks: verify the signature, store the event once, queue its processing.

The signature is checked on the raw bytes before anything is parsed or stored, so a forged or
unsigned request leaves no trace but a log line. Each event is stored once (unique on provider,
reference and event type): a replay finds the row and changes nothing. What the event means
for the order (``charge.success``) or the vendor's payout (``transfer.*``) is decided on the
``critical`` queue (``tasks/payments.py``, ``tasks/payouts.py``), after the provider has its
acknowledgement.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.adapters.payments import signature_matches
from core.errors import NotAuthenticated
from core.jobs import defer
from core.logging import get_logger
from core.task_names import PROCESS_PAYMENT_EVENT, PROCESS_TRANSFER_EVENT
from db.models import PaymentEvent
from db.services.payments.errors import MalformedWebhook

log = get_logger(__name__)

# Transfer events settle a vendor's payout (db/services/payouts/transfers.py).
TRANSFER_EVENTS = frozenset({"transfer.success", "transfer.failed", "transfer.reversed"})
# Events that can change an order or a payout; others are stored (for the record) but need no
# processing.
HANDLED_EVENTS = frozenset({"charge.success"}) | TRANSFER_EVENTS


class BadSignature(NotAuthenticated):
    code = "bad_webhook_signature"
    title = "Webhook signature missing or wrong"


class _Data(msgspec.Struct):
    reference: str


class _Event(msgspec.Struct):
    event: str
    data: _Data


Outcome = Literal["queued", "stored", "duplicate"]
_LOGGED: dict[Outcome, str] = {
    "queued": "webhook queued",
    "stored": "webhook stored, not handled",
    "duplicate": "webhook replay ignored",
}


async def receive(
    session: AsyncSession, *, provider: str, raw: bytes, signature: str | None, secret: str
) -> Outcome:
    """Verify, store and queue one webhook delivery.

    Raises:
        BadSignature: missing or wrong ``x-paystack-signature`` (401; nothing stored).
        MalformedWebhook: signed, but not an event with ``event`` and ``data.reference`` (400).
    """
    if not signature_matches(raw, signature, secret):
        log.warning("webhook refused: bad signature", provider=provider, signed=signature is not None)
        raise BadSignature("The webhook signature is missing or does not match the body.")
    try:
        event = msgspec.json.decode(raw, type=_Event)
        payload: dict[str, Any] = msgspec.json.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise MalformedWebhook(f"Not a payment event: {exc}") from None
    reference = event.data.reference[:100]
    event_type = event.event[:60]
    outcome = await record_event(session, provider, reference, event_type, payload)
    log.info(_LOGGED[outcome], provider=provider, reference=reference, event_type=event_type)
    return outcome


async def record_event(
    session: AsyncSession, provider: str, reference: str, event_type: str, payload: dict[str, Any]
) -> Outcome:
    """Store a provider's event once and, when it can change an order, queue its processing
    (durably, after commit). An event already stored (same provider, reference and type) changes
    nothing: ``duplicate``. Reconciliation records the charges it finds through this too."""
    stmt = (
        insert(PaymentEvent)
        .values(provider=provider, reference=reference, event_type=event_type, payload=payload)
        .on_conflict_do_nothing(constraint="uq_payment_events_provider_ref_type")
        .returning(PaymentEvent.id)
    )
    event_id = await session.scalar(stmt)
    if event_id is None:
        return "duplicate"
    if event_type not in HANDLED_EVENTS:
        return "stored"
    if event_type in TRANSFER_EVENTS:
        defer(PROCESS_TRANSFER_EVENT, str(event_id), durable=True)
    else:
        defer(PROCESS_PAYMENT_EVENT, str(event_id), durable=True)
    return "queued"
