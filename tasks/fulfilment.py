"""Fulfilment notices and mail (queue ``emails``): vendors learn of each paid order with items of
theirs, shoppers of each shipment (with its tracking), delivery, cancellation and refund.

Each job may run twice: a notice is unique per user and dedupe key in the database; a mail is
recorded in ``sent_mails`` by the transaction that sends it, as the order mails are
(``tasks/orders.py``).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from core.adapters.mail import compose
from core.logging import get_logger
from db.services.fulfilment.errors import FulfilmentNotFound
from db.services.notifications.fulfilments import (
    FulfilmentForMessage,
    fulfilment_for_message,
    live_fulfilment_ids,
    notify_fulfilment,
    notify_refund,
    notify_vendor_of_sale,
)
from db.services.notifications.orders import format_money, items_text, order_number
from db.services.payments.errors import PaymentNotFound
from tasks.orders import address_text, lines_text, record_send
from tasks.runtime.broker import queue_task
from tasks.runtime.resources import Resources, TaskResources

log = get_logger(__name__)


@queue_task("emails", "notifications.vendor_sale")
async def vendor_sale(order_id: str, resources: Resources) -> dict[str, int]:
    """Tell each vendor of a paid order about its part: an in-app notice and a mail (once each)."""
    async with resources.uow() as session:
        ids = await live_fulfilment_ids(session, UUID(order_id))
    notices = mails = 0
    for fulfilment_id in ids:
        async with resources.uow() as session:
            notices += int(await notify_vendor_of_sale(session, fulfilment_id))
        mails += int(await _send(resources, fulfilment_id, "sold", _vendor_mail) == "sent")
    return {"fulfilments": len(ids), "notices": notices, "mails": mails}


@queue_task("emails", "notifications.fulfilment_update")
async def fulfilment_update(fulfilment_id: str, kind: str, change: str, resources: Resources) -> str:
    """Write the shopper's ``kind`` notice about one move of a fulfilment, once."""
    try:
        async with resources.uow() as session:
            created = await notify_fulfilment(session, UUID(fulfilment_id), kind, change)
    except FulfilmentNotFound:
        log.warning("notice for a missing fulfilment", fulfilment_id=fulfilment_id, kind=kind)
        return "fulfilment_not_found"
    return "created" if created else "already_notified"


@queue_task("emails", "fulfilment.send_shipped")
async def send_shipped(fulfilment_id: str, resources: Resources) -> str:
    """Email the shopper that a vendor shipped their part, with the carrier and tracking."""
    return await _send(resources, UUID(fulfilment_id), "shipped", _shipped_mail)


@queue_task("emails", "notifications.refund_sent")
async def refund_sent(refund_id: str, resources: Resources) -> str:
    """Write the shopper's notice that a refund went through, once."""
    try:
        async with resources.uow() as session:
            created = await notify_refund(session, UUID(refund_id))
    except PaymentNotFound:
        log.warning("notice for a missing refund", refund_id=refund_id)
        return "refund_not_found"
    return "created" if created else "already_notified"


def _shipped_mail(found: FulfilmentForMessage) -> tuple[str, str, dict[str, str]]:
    f = found.fulfilment
    method = f.shipping_method
    link = f"Track it: {f.tracking_url}" if f.tracking_url else ""
    values = {
        "name": found.buyer.full_name,
        "vendor": found.vendor.name,
        "number": order_number(found.order.id),
        "lines": lines_text(_live(found), f.currency),
        "carrier": f.carrier or "",
        "tracking_number": f.tracking_number or "",
        "tracking_link": link,
        "days": f"{method.get('min_days', '?')}-{method.get('max_days', '?')}",
    }
    return found.buyer.email, "fulfilment_shipped", values


def _vendor_mail(found: FulfilmentForMessage) -> tuple[str, str, dict[str, str]]:
    f, order = found.fulfilment, found.order
    lines = _live(found)
    values = {
        "name": found.vendor_owner.full_name,
        "vendor": found.vendor.name,
        "number": order_number(order.id),
        "items": items_text(sum(line.quantity for line in lines)),
        "lines": lines_text(lines, f.currency),
        "subtotal": format_money(sum(line.line_total_amount for line in lines), f.currency),
        "shipping": format_money(f.shipping_amount, f.currency),
        "method": str(f.shipping_method.get("name", "")),
        "address": address_text(order.shipping_address),
    }
    return found.vendor_owner.email, "vendor_new_order", values


def _live(found: FulfilmentForMessage) -> list[Any]:
    return [line for line in found.lines if line.quantity > line.cancelled_quantity]


async def _send(resources: TaskResources, fulfilment_id: UUID, kind: str, build: Any) -> str:
    """Send the ``kind`` mail about a fulfilment once (recorded in ``sent_mails`` by the
    transaction that hands it over, as the order mails are); returns what happened."""
    message_key = f"fulfilment-{fulfilment_id}-{kind}"
    try:
        async with resources.uow() as session:
            found = await fulfilment_for_message(session, fulfilment_id)
            if not await record_send(session, message_key, found.order.id):
                return "already_sent"
            to, template, values = build(found)
            mail = compose(
                sender=resources.settings.mail_from,
                to=to,
                template=template,
                message_key=message_key,
                **values,
            )
            await resources.mailer.send(mail)
    except FulfilmentNotFound:
        log.warning("fulfilment mail for a missing fulfilment", fulfilment_id=str(fulfilment_id), kind=kind)
        return "fulfilment_not_found"
    log.info("fulfilment mail sent", fulfilment_id=str(fulfilment_id), kind=kind)
    return "sent"
