"""Orders and carts shaped into their response Structs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from api.catalog.schemas import VendorRef
from api.common import money
from api.fulfilment.present import fulfilment_out
from api.orders import schemas
from core.adapters.storage import MediaStorage
from db.models import Fulfilment, Order, OrderLine, Payment
from db.services.orders.cart import CartLine
from db.services.vouchers.cart import CartDiscount


def cart_out(
    lines: list[CartLine], currency: str, storage: MediaStorage, voucher: CartDiscount | None = None
) -> schemas.Cart:
    subtotal = sum(line.unit_price * line.quantity for line in lines)
    discount = voucher.amount if voucher is not None else 0
    return schemas.Cart(
        items=[
            schemas.CartItem(
                id=line.id,
                variant_id=line.variant_id,
                product_id=line.product_id,
                title=line.title,
                sku=line.sku,
                size=line.size,
                color=line.color,
                thumbnail_url=storage.url(line.thumbnail_key),
                vendor_id=line.vendor_id,
                quantity=line.quantity,
                unit_price=money(line.unit_price, line.currency),
                line_total=money(line.unit_price * line.quantity, line.currency),
                available=line.available,
            )
            for line in lines
        ],
        item_count=sum(line.quantity for line in lines),
        subtotal=money(subtotal, currency),
        discount=money(discount, currency),
        total=money(subtotal - discount, currency),
        voucher=schemas.CartVoucher(
            code=voucher.code, discount=money(voucher.amount, currency), problem=voucher.problem
        )
        if voucher is not None
        else None,
    )


def line_out(line: OrderLine, currency: str) -> schemas.OrderLine:
    return schemas.OrderLine(
        id=line.id,
        fulfilment_id=line.fulfilment_id,
        variant_id=line.variant_id,
        product_id=line.product_id,
        vendor=VendorRef(id=line.vendor_id, name=line.vendor_name),
        title=line.title,
        sku=line.sku,
        size=line.size,
        color=line.color,
        quantity=line.quantity,
        unit_price=money(line.unit_price_amount, currency),
        line_total=money(line.line_total_amount, currency),
        cancelled_quantity=line.cancelled_quantity,
        returned_quantity=line.returned_quantity,
        final_sale=line.final_sale,
        discount=money(line.discount_amount, currency),
    )


def order_out(
    order: Order,
    lines: Sequence[OrderLine],
    fulfilments: Sequence[Fulfilment],
    payments: Sequence[Payment] | None = None,
) -> schemas.Order:
    currency = order.currency
    return schemas.Order(
        id=order.id,
        status=order.status,  # type: ignore[arg-type]  # the table's check constraint keeps it known
        lines=[line_out(line, currency) for line in lines],
        item_count=order.item_count,
        subtotal=money(order.subtotal_amount, currency),
        shipping=money(order.shipping_amount, currency),
        shipping_total=money(order.shipping_amount, currency),
        discount_total=money(order.discount_amount, currency),
        total=money(order.total_amount, currency),
        fulfilments=[fulfilment_out(f, lines) for f in fulfilments],
        shipping_address=order.shipping_address,
        expires_at=order.expires_at,
        paid_at=order.paid_at,
        created_at=order.created_at,
        payments=[payment_out(p) for p in payments] if payments is not None else None,
    )


def payment_out(payment: Payment) -> schemas.PaymentSummary:
    return schemas.PaymentSummary(
        provider=payment.provider,
        reference=payment.reference,
        status=payment.status,
        amount=money(payment.amount, payment.currency),
        created_at=payment.created_at,
    )


def order_of(document: dict[str, Any]) -> schemas.Order:
    """An order read as the response's document (db.services.orders.reads) into its Struct."""
    return msgspec.convert(document, schemas.Order)
