"""The staff order console's answers, shaped from the service's rows."""

from __future__ import annotations

import msgspec

from api.catalog.schemas import VendorRef
from api.common import money
from api.staff import schemas
from db.models import Fulfilment, Order, OrderEvent, OrderLine, Payment, PaymentEvent, Refund, User
from db.services.staff_console.detail import OrderInFull, ReturnInFull
from db.services.staff_console.search import OrderSummary


def _summary(order: Order, buyer: User, vendors: list[VendorRef]) -> schemas.StaffOrderSummary:
    currency = order.currency
    return schemas.StaffOrderSummary(
        id=order.id,
        status=order.status,  # type: ignore[arg-type]  # the column's CHECK constraint keeps it an OrderStatus
        buyer=schemas.Buyer(id=buyer.id, email=buyer.email, full_name=buyer.full_name),
        vendors=vendors,
        item_count=order.item_count,
        subtotal=money(order.subtotal_amount, currency),
        shipping_total=money(order.shipping_amount, currency),
        discount_total=money(order.discount_amount, currency),
        total=money(order.total_amount, currency),
        created_at=order.created_at,
        paid_at=order.paid_at,
    )


def summary_out(found: OrderSummary) -> schemas.StaffOrderSummary:
    return _summary(found.order, found.buyer, [VendorRef(id=v.id, name=v.name) for v in found.vendors])


def detail_out(found: OrderInFull) -> schemas.StaffOrderDetail:
    order = found.order
    currency = order.currency
    vendor_ids = list(dict.fromkeys(line.vendor_id for line in found.lines))
    summary = _summary(order, found.buyer, [VendorRef(id=v, name=found.vendor_name(v)) for v in vendor_ids])
    return schemas.StaffOrderDetail(
        **msgspec.structs.asdict(summary),
        shipping_address=order.shipping_address,
        expires_at=order.expires_at,
        closed_at=order.closed_at,
        lines=[_line(line, currency) for line in found.lines],
        fulfilments=[
            _fulfilment(f, VendorRef(id=f.vendor_id, name=found.vendor_name(f.vendor_id)))
            for f in found.fulfilments
        ],
        payments=[_payment(p) for p in found.payments],
        refunds=[_refund(r) for r in found.refunds],
        returns=[_return(r) for r in found.returns],
        webhook_events=[_webhook_event(e) for e in found.webhook_events],
        timeline=[_timeline_entry(e) for e in found.timeline],
    )


def _line(line: OrderLine, currency: str) -> schemas.StaffOrderLine:
    return schemas.StaffOrderLine(
        id=line.id,
        fulfilment_id=line.fulfilment_id,
        vendor=VendorRef(id=line.vendor_id, name=line.vendor_name),
        product_id=line.product_id,
        variant_id=line.variant_id,
        title=line.title,
        sku=line.sku,
        size=line.size,
        color=line.color,
        quantity=line.quantity,
        cancelled_quantity=line.cancelled_quantity,
        returned_quantity=line.returned_quantity,
        unit_price=money(line.unit_price_amount, currency),
        line_total=money(line.line_total_amount, currency),
        discount=money(line.discount_amount, currency),
        final_sale=line.final_sale,
    )


def _fulfilment(fulfilment: Fulfilment, vendor: VendorRef) -> schemas.StaffFulfilment:
    return schemas.StaffFulfilment(
        id=fulfilment.id,
        status=fulfilment.status,  # type: ignore[arg-type]  # the column's CHECK constraint keeps it known
        vendor=vendor,
        shipping_method=msgspec.convert(fulfilment.shipping_method, schemas.ShippingMethodSnapshot),
        shipping=money(fulfilment.shipping_amount, fulfilment.currency),
        carrier=fulfilment.carrier,
        tracking_number=fulfilment.tracking_number,
        tracking_url=fulfilment.tracking_url,
        created_at=fulfilment.created_at,
        packed_at=fulfilment.packed_at,
        shipped_at=fulfilment.shipped_at,
        delivered_at=fulfilment.delivered_at,
        cancelled_at=fulfilment.cancelled_at,
        cancel_reason=fulfilment.cancel_reason,
    )


def _payment(payment: Payment) -> schemas.StaffPayment:
    return schemas.StaffPayment(
        id=payment.id,
        provider=payment.provider,
        reference=payment.reference,
        status=payment.status,
        amount=money(payment.amount, payment.currency),
        refunded_amount=money(payment.refunded_amount, payment.currency),
        flag_reason=payment.flag_reason,
        created_at=payment.created_at,
        paid_at=payment.paid_at,
    )


def _refund(refund: Refund) -> schemas.StaffRefund:
    return schemas.StaffRefund(
        id=refund.id,
        payment_id=refund.payment_id,
        amount=money(refund.amount, refund.currency),
        status=refund.status,
        reason=refund.reason,
        fulfilment_id=refund.fulfilment_id,
        return_id=refund.return_id,
        created_at=refund.created_at,
        processed_at=refund.processed_at,
    )


def _return(found: ReturnInFull) -> schemas.StaffReturn:
    request = found.request
    return schemas.StaffReturn(
        id=request.id,
        status=request.status,
        fulfilment_id=request.fulfilment_id,
        vendor_id=request.vendor_id,
        lines=[
            schemas.StaffReturnLine(
                order_line_id=line.order_line_id, quantity=line.quantity, reason=line.reason
            )
            for line in found.lines
        ],
        note=request.note,
        vendor_note=request.vendor_note,
        restocked=request.restocked,
        refund_amount=money(request.refund_amount, request.currency)
        if request.refund_amount is not None
        else None,
        created_at=request.created_at,
        decided_at=request.decided_at,
        received_at=request.received_at,
        refunded_at=request.refunded_at,
    )


def _webhook_event(event: PaymentEvent) -> schemas.WebhookEvent:
    return schemas.WebhookEvent(
        id=event.id,
        provider=event.provider,
        reference=event.reference,
        event_type=event.event_type,
        outcome=event.outcome,
        received_at=event.created_at,
        processed_at=event.processed_at,
    )


def _timeline_entry(event: OrderEvent) -> schemas.TimelineEntry:
    return schemas.TimelineEntry(
        from_status=event.from_status,
        to_status=event.to_status,
        actor=event.actor,  # type: ignore[arg-type]  # written only from core.rules.orders.Actor
        actor_id=event.actor_id,
        reason=event.reason,
        fulfilment_id=event.fulfilment_id,
        request_id=event.request_id,
        at=event.created_at,
    )
