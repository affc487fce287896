"""Order mail, in-app notices and analytics: the jobs deferred by ``db.services.orders.subscribers``.

Every job here may run more than once (a redelivery after a worker died, the outbox sweeper
re-sending a job whose send was not recorded), so each is idempotent: a mail is recorded as sent
in PostgreSQL (``sent_mails``) by the transaction that sends it, and concurrent runs of one mail
take turns on that row's unique key; a notice is unique per order and kind in the database; an
analytics line carries a stable event key the pipeline deduplicates on.
"""

from __future__ import annotations

from datetime import UTC
from string import Template
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.adapters.mail import compose
from core.logging import get_logger
from core.rules.orders import SOLD
from db.models import OrderEvent, OrderLine, SentMail
from db.services.notifications.orders import (
    OrderForMessage,
    add_order_notification,
    format_money,
    items_text,
    order_for_message,
    order_number,
)
from db.services.orders.errors import OrderNotFound
from db.services.orders.subscribers import defer_placed_jobs
from tasks.runtime.broker import queue_task
from tasks.runtime.resources import Resources, TaskResources
from tasks.runtime.retry import PermanentTaskError

log = get_logger(__name__)

# Status -> (subject, message) of the status mails; the subscribers only ask for these.
STATUS_MAILS: dict[str, tuple[str, str]] = {
    "paid": (
        "Payment received for your Fashionistar order $number",
        "We received your payment of $total. Your order is being prepared.",
    ),
}
# Address fields in the order people write them; any others follow.
_ADDRESS_ORDER = ("full_name", "name", "line1", "line2", "city", "state", "postal_code", "country")


def lines_text(lines: list[OrderLine], currency: str) -> str:
    return "\n".join(
        f"{line.title} — size {line.size}, {line.color}, qty {line.quantity}: "
        f"{format_money(line.line_total_amount, currency)}"
        for line in lines
    )


def address_text(address: dict[str, Any]) -> str:
    keys = [k for k in _ADDRESS_ORDER if k in address] + sorted(
        k for k in address if k not in _ADDRESS_ORDER and k != "phone"
    )
    return "\n".join(str(address[k]) for k in keys if address[k] not in (None, ""))


def _next_step(found: OrderForMessage) -> str:
    order = found.order
    if order.status == "pending_payment":
        deadline = order.expires_at.astimezone(UTC).strftime("%d %b %Y, %H:%M UTC")
        return f"Please complete payment by {deadline}; until then we hold the items for you."
    if order.status in SOLD:
        return "We have received your payment and will let you know when your order ships."
    return f"This order has since been {order.status}."


def _confirmation_values(found: OrderForMessage) -> dict[str, str]:
    order = found.order
    return {
        "subtotal": format_money(order.subtotal_amount, order.currency),
        "shipping": format_money(order.shipping_amount, order.currency),
        "next_step": _next_step(found),
        "address": address_text(order.shipping_address),
    }


async def record_send(session: AsyncSession, message_key: str, order_id: UUID) -> bool:
    """Record the mail ``message_key`` as sent in this transaction; False if it already was.

    The row is written before the hand-over and committed after it: a worker dying in between
    rolls it back and the mail is sent again (at least once, never zero times). A second run of
    the same mail (a redelivery racing a slow first run) waits here on the unique key until the
    first transaction ends, then finds its row, or takes over if the first one failed.
    """
    recorded = await session.scalar(
        insert(SentMail)
        .values(message_key=message_key, order_id=order_id)
        .on_conflict_do_nothing(index_elements=[SentMail.message_key])
        .returning(SentMail.id)
    )
    return recorded is not None


async def _send_order_mail(
    resources: TaskResources, order_id: UUID, *, kind: str, template: str, status: str | None = None
) -> str:
    """Send the ``kind`` mail about an order to its buyer once; returns what happened."""
    message_key = f"order-{order_id}-{kind}"
    try:
        async with resources.uow() as session:
            found = await order_for_message(session, order_id)
            if not await record_send(session, message_key, order_id):
                return "already_sent"
            order = found.order
            number = order_number(order.id)
            total = format_money(order.total_amount, order.currency)
            values = {
                "name": found.buyer.full_name,
                "number": number,
                "total": total,
                "items": items_text(order.item_count),
                "lines": lines_text(found.lines, order.currency),
            }
            if status is None:
                values |= _confirmation_values(found)
            else:
                subject, message = STATUS_MAILS[status]
                values |= {
                    "subject": Template(subject).substitute(number=number),
                    "message": Template(message).substitute(total=total),
                }
            mail = compose(
                sender=resources.settings.mail_from,
                to=found.buyer.email,
                template=template,
                message_key=message_key,
                **values,
            )
            await resources.mailer.send(mail)
    except OrderNotFound:
        log.warning("order mail for a missing order", order_id=str(order_id), kind=kind)
        return "order_not_found"
    log.info("order mail sent", order_id=str(order_id), kind=kind)
    return "sent"


@queue_task("emails", "orders.fan_out_placed")
async def fan_out_placed(order_id: str, resources: Resources) -> str:
    """Defer a placed order's confirmation, notice and analytics jobs (durable, sent once this
    job's unit of work commits). Each of them is idempotent, so running this twice is harmless."""
    async with resources.uow():
        defer_placed_jobs(order_id)
    return "deferred"


@queue_task("emails", "orders.send_confirmation")
async def send_confirmation(order_id: str, resources: Resources) -> str:
    """Email the buyer their order confirmation: lines, amounts, what to do next, the address.

    Idempotent (see the module). A missing order is logged and the job ends ("order_not_found").
    """
    return await _send_order_mail(
        resources, UUID(order_id), kind="confirmation", template="order_confirmation"
    )


@queue_task("emails", "orders.send_status_update")
async def send_status_update(order_id: str, status: str, resources: Resources) -> str:
    """Email the buyer that their order is paid ("payment received"); shipments are mailed per vendor.

    Raises:
        PermanentTaskError: ``status`` has no mail (not retried).
    """
    if status not in STATUS_MAILS:
        raise PermanentTaskError(f"no status mail for {status!r}")
    return await _send_order_mail(
        resources, UUID(order_id), kind=f"status-{status}", template="order_status", status=status
    )


@queue_task("emails", "notifications.order_update")
async def order_update(order_id: str, kind: str, resources: Resources) -> str:
    """Write the buyer's in-app notice ``kind`` (``order_placed``, ``order_paid``, ...) once.

    Raises:
        UnknownNotificationKind: ``kind`` has no wording (a domain error: not retried).
    """
    try:
        async with resources.uow() as session:
            created = await add_order_notification(session, UUID(order_id), kind)
    except OrderNotFound:
        log.warning("notification for a missing order", order_id=order_id, kind=kind)
        return "order_not_found"
    return "created" if created else "already_notified"


@queue_task("analytics", "orders.record_event")
async def record_event(order_id: str, event: str, resources: Resources) -> str:
    """Emit one ``analytics event`` log line about an order (the analytics pipeline ingests logs).

    The line carries what the order was (total, currency, items, vendors: snapshots that never
    change) and when the event happened (its audit row, not when this job ran), plus a stable
    ``event_key`` for deduplication, so a second run is harmless.
    """
    oid = UUID(order_id)
    try:
        async with resources.uow() as session:
            found = await order_for_message(session, oid)
            # "order_placed" is the audit row without a previous status; "order_<status>" the
            # latest move to that status.
            stmt = select(OrderEvent).where(OrderEvent.order_id == oid)
            if event == "order_placed":
                stmt = stmt.where(OrderEvent.from_status.is_(None))
            else:
                stmt = stmt.where(OrderEvent.to_status == event.removeprefix("order_"))
            audit = await session.scalar(stmt.order_by(OrderEvent.id.desc()).limit(1))
    except OrderNotFound:
        log.warning("analytics event for a missing order", order_id=order_id, analytics_event=event)
        return "order_not_found"
    order = found.order
    log.info(
        "analytics event",
        analytics_event=event,
        event_key=f"order:{order_id}:{event}",
        order_id=order_id,
        user_id=str(order.user_id),
        occurred_at=(audit.created_at if audit else order.created_at).isoformat(),
        from_status=audit.from_status if audit else None,
        actor=audit.actor if audit else None,
        total_amount=order.total_amount,
        currency=order.currency,
        item_count=order.item_count,
        vendor_ids=sorted({str(line.vendor_id) for line in found.lines}),
    )
    return "recorded"
