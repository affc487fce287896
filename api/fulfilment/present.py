"""Fulfilments shaped into their response Structs (in orders, and for vendors and staff)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from api.catalog.schemas import VendorRef
from api.common import money
from api.fulfilment import schemas
from db.models import Fulfilment, Order, OrderLine
from db.services.fulfilment.queries import FulfilmentView


def line_out(line: OrderLine, currency: str) -> schemas.FulfilmentLine:
    return schemas.FulfilmentLine(
        order_line_id=line.id,
        variant_id=line.variant_id,
        product_id=line.product_id,
        title=line.title,
        sku=line.sku,
        size=line.size,
        color=line.color,
        quantity=line.quantity,
        cancelled_quantity=line.cancelled_quantity,
        returned_quantity=line.returned_quantity,
        unit_price=money(line.unit_price_amount, currency),
        line_total=money(line.line_total_amount, currency),
        final_sale=line.final_sale,
    )


def _fields(f: Fulfilment, lines: Sequence[OrderLine], vendor_name: str) -> dict[str, object]:
    method = f.shipping_method
    return {
        "id": f.id,
        "order_id": f.order_id,
        "vendor": VendorRef(id=f.vendor_id, name=vendor_name),
        "status": f.status,
        "lines": [line_out(line, f.currency) for line in lines if line.fulfilment_id == f.id],
        "shipping_method": schemas.ShippingMethodRef(
            id=method.get("id"),
            name=str(method.get("name", "")),
            kind=str(method.get("kind", "standard")),
            days=(int(method.get("min_days", 0)), int(method.get("max_days", 0))),
        ),
        "shipping": money(f.shipping_amount, f.currency),
        "carrier": f.carrier,
        "tracking_number": f.tracking_number,
        "tracking_url": f.tracking_url,
        "return_window_days": f.return_window_days,
        "packed_at": f.packed_at,
        "shipped_at": f.shipped_at,
        "delivered_at": f.delivered_at,
        "cancelled_at": f.cancelled_at,
        "cancel_reason": f.cancel_reason,
        "return_until": f.delivered_at + timedelta(days=f.return_window_days) if f.delivered_at else None,
    }


def _vendor_name(f: Fulfilment, lines: Sequence[OrderLine]) -> str:
    return next((line.vendor_name for line in lines if line.vendor_id == f.vendor_id), "")


def fulfilment_out(f: Fulfilment, lines: Sequence[OrderLine]) -> schemas.Fulfilment:
    return schemas.Fulfilment(**_fields(f, lines, _vendor_name(f, lines)))  # type: ignore[arg-type]


def vendor_fulfilment_out(view: FulfilmentView) -> schemas.VendorFulfilment:
    order: Order = view.order
    return schemas.VendorFulfilment(
        **_fields(view.fulfilment, view.lines, _vendor_name(view.fulfilment, view.lines)),  # type: ignore[arg-type]
        order_status=order.status,
        order_created_at=order.created_at,
        shipping_address=order.shipping_address,
    )
