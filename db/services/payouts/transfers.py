"""Sending a payout through the provider's transfer API, and settling it from the provider's word.

**Sending** (``critical.payouts.send``, queued durably when the payout is made) runs in two
transactions. The first counts the attempt and commits; the second, holding the payout's row
lock, asks the provider to transfer under the payout's unique reference and records that it was
accepted (``processing``). A worker killed after the provider accepted the transfer but before
that commit leaves the payout ``pending`` with an attempt counted: the retry then asks the
provider for the transfer by reference first and records what it finds instead of sending again.
The provider also refuses a reference it has seen, so a retry never pays twice. A transfer the
provider refuses outright (a closed account, say) fails the payout: its money is available again.
A payout held by staff is not sent until they release it.

**Settling** moves the payout once to ``paid``, ``failed`` or ``reversed`` and posts its ledger
transaction; anything else the provider says afterwards is recorded and changes nothing (a
``transfer.success`` after the payout failed never pays it twice; a failure after it was paid
is ignored; only a reversal follows payment). ``transfer.*`` webhook events are applied under the
payout's row lock after asking the provider for the transfer by reference, so events that arrive
late, twice or out of order end in the provider's own final word; the sandbox keeps no records,
so its event is taken as it says.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.adapters.payments import PaymentProvider, PaymentProviderRefused, Transfer, TransferNotFound
from core.logging import get_logger
from db.models import PaymentEvent, Payout, Vendor
from db.services.ledger import payouts as ledger
from db.services.payments.errors import PaymentEventNotFound
from db.services.payouts.errors import OtherProvider, PayoutNotFound

log = get_logger(__name__)

Outcome = Literal["paid", "failed", "reversed"]
# The provider's final statuses of a transfer; any other (pending, otp, received, ...) is under way.
FINAL: dict[str, Outcome] = {
    "success": "paid",
    "failed": "failed",
    "abandoned": "failed",
    "blocked": "failed",
    "rejected": "failed",
    "reversed": "reversed",
}
EVENTS: dict[str, Outcome] = {
    "transfer.success": "paid",
    "transfer.failed": "failed",
    "transfer.reversed": "reversed",
}
REASON = "Fashionistar vendor payout"


async def _locked(session: AsyncSession, payout_id: UUID) -> Payout:
    payout = await session.scalar(select(Payout).where(Payout.id == payout_id).with_for_update())
    if payout is None:
        raise PayoutNotFound()
    return payout


async def _held(session: AsyncSession, vendor_id: UUID) -> bool:
    return bool(await session.scalar(select(Vendor.payouts_on_hold).where(Vendor.id == vendor_id)))


async def settle(session: AsyncSession, payout: Payout, outcome: Outcome, reason: str | None = None) -> str:
    """Move a row-locked payout to ``outcome`` if that is a move it can make, with its ledger
    transaction (``reason``: why it failed or was reversed); the outcome recorded (``paid``,
    ``already_paid``, ``ignored_paid_after_failed``...)."""
    current = payout.status
    if current == outcome:
        return f"already_{current}"
    if current in ("pending", "processing") or (current, outcome) == ("paid", "reversed"):
        payout.status = outcome
        payout.completed_at = datetime.now(UTC)
        if outcome != "paid":
            payout.failure_reason = (reason or f"transfer {outcome} at the provider")[:500]
        if outcome == "paid":
            await ledger.record_paid(session, payout)
        else:
            await ledger.record_returned(session, payout, after_paid=current == "paid")
        log.info("payout settled", payout_id=str(payout.id), status=outcome, was=current)
        return outcome
    log.warning("transfer outcome ignored", payout_id=str(payout.id), status=current, outcome=outcome)
    return f"ignored_{outcome}_after_{current}"


async def look_up(provider: PaymentProvider, reference: str) -> Transfer | None:
    """The provider's record of the transfer; None when it has none (or keeps none)."""
    try:
        return await provider.verify_transfer(reference)
    except TransferNotFound:
        return None


async def record_transfer(
    session: AsyncSession, payout: Payout, transfer: Transfer, *, verified: bool
) -> str:
    """The provider has the transfer: ``processing``, or settled when its record is final (a
    transfer's first answer only says it was accepted, whatever status it shows)."""
    payout.transfer_code = transfer.transfer_code or payout.transfer_code
    payout.sent_at = payout.sent_at or datetime.now(UTC)
    final = FINAL.get(transfer.status) if verified else None
    if final is not None:
        return await settle(session, payout, final, transfer.failure_reason)
    payout.status = "processing"
    return "sent"


async def _send(session: AsyncSession, provider: PaymentProvider, payout: Payout) -> str:
    if payout.attempts > 1:
        # An earlier attempt may have reached the provider (its worker died before recording it).
        found = await look_up(provider, payout.reference)
        if found is not None:
            return await record_transfer(session, payout, found, verified=True)
    try:
        sent = await provider.transfer(
            reference=payout.reference,
            amount=payout.amount,
            currency=payout.currency,
            recipient_code=payout.recipient_code,
            reason=REASON,
        )
    except PaymentProviderRefused as refused:
        # It may be refusing a reference it already has: then that transfer is this payout's.
        found = await look_up(provider, payout.reference)
        if found is not None:
            return await record_transfer(session, payout, found, verified=True)
        await settle(session, payout, "failed", f"refused by the provider: {refused.detail}")
        return "refused"
    return await record_transfer(session, payout, sent, verified=False)


async def send_payout(
    transaction: Callable[[], AbstractAsyncContextManager[AsyncSession]],
    provider: PaymentProvider,
    payout_id: UUID,
) -> str:
    """Send a pending payout to the provider (see the module's docstring); what happened:
    ``sent``, ``paid``/``failed``/``reversed`` (found settled at the provider), ``refused``,
    ``held`` or ``already_<status>`` (nothing to do).

    Raises:
        PayoutNotFound: no such payout.
        OtherProvider: the payout was made with another provider than ``provider``.
        PaymentProviderError: the provider cannot be asked (the job is retried; the next attempt
            asks for the transfer by reference before sending).
    """
    async with transaction() as session:
        payout = await _locked(session, payout_id)
        if payout.status != "pending":
            return f"already_{payout.status}"
        if payout.provider != provider.name:
            raise OtherProvider(f"payout {payout_id} is {payout.provider}'s, not {provider.name}'s")
        if await _held(session, payout.vendor_id):
            return "held"
        payout.attempts += 1
    async with transaction() as session:
        payout = await _locked(session, payout_id)
        if payout.status != "pending":
            return f"already_{payout.status}"
        if await _held(session, payout.vendor_id):
            return "held"
        outcome = await _send(session, provider, payout)
    log.info("payout sent", payout_id=str(payout_id), outcome=outcome, attempt=payout.attempts)
    return outcome


def _failure_of(payload: dict[str, Any]) -> str | None:
    data = payload.get("data") or {}
    failures = data.get("failures") if isinstance(data, dict) else None
    reason = failures.get("reason") if isinstance(failures, dict) else None
    return str(reason)[:500] if reason else None


async def _apply_event(session: AsyncSession, provider: PaymentProvider, event: PaymentEvent) -> str:
    claimed = EVENTS.get(event.event_type)
    payout = await session.scalar(
        select(Payout)
        .where(Payout.reference == event.reference, Payout.provider == event.provider)
        .with_for_update()
    )
    if claimed is None or payout is None:
        log.warning("transfer event for no payout", reference=event.reference, event_type=event.event_type)
        return "unknown_reference"
    try:
        verified = await provider.verify_transfer(payout.reference)
    except TransferNotFound:
        log.warning("transfer event the provider does not know", reference=event.reference)
        return "not_found_at_provider"
    if verified is None:  # the sandbox: the signed event is all there is
        return await settle(session, payout, claimed, _failure_of(event.payload))
    return await _settle_verified(session, payout, verified)


async def _settle_verified(session: AsyncSession, payout: Payout, verified: Transfer) -> str:
    """Settle by the provider's own record of the transfer, whatever the event claimed."""
    if verified.amount is not None and verified.amount != payout.amount:
        log.warning("transfer amount differs", reference=payout.reference, amount=verified.amount)
        return "amount_mismatch"
    if FINAL.get(verified.status) is None:
        return "not_final"  # still under way: reconciliation asks again later
    return await record_transfer(session, payout, verified, verified=True)


async def process_transfer_event(session: AsyncSession, provider: PaymentProvider, event_id: UUID) -> str:
    """Apply one stored ``transfer.*`` event to its payout; returns (and records) the outcome.
    An event already processed returns its recorded outcome.

    Raises:
        PaymentEventNotFound: no such event.
        OtherProvider: the event came from another provider than ``provider``.
        PaymentProviderError: the provider cannot be asked (the job is retried).
    """
    event = await session.scalar(select(PaymentEvent).where(PaymentEvent.id == event_id).with_for_update())
    if event is None:
        raise PaymentEventNotFound()
    if event.processed_at is not None:
        return event.outcome or "processed"
    if event.provider != provider.name:
        raise OtherProvider(f"event {event_id} is {event.provider}'s, not {provider.name}'s")
    outcome = await _apply_event(session, provider, event)
    event.processed_at = datetime.now(UTC)
    event.outcome = outcome[:40]
    log.info(
        "transfer event processed", reference=event.reference, event_type=event.event_type, outcome=outcome
    )
    return outcome
