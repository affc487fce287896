"""Order test data straight into the database (the HTTP path is tested in tests/test_orders*.py).

``make_order`` writes an order as ``POST /orders`` would leave it, then walks it through the
state machine to ``status`` with the real transition service, so stock and audit rows match.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.jobs import job_buffer
from core.settings import get_settings
from db.models import Order, Product, User, Variant, Vendor
from db.services.orders import stock
from db.services.orders.placing import add_fulfilments, snapshot_line
from db.services.orders.transitions import record, transition
from db.services.shipping.methods import default_method
from db.services.shipping.quotes import Chosen

# How each status is reached from pending_payment, and by whom.
_PATHS: dict[str, list[tuple[str, Any]]] = {
    "pending_payment": [],
    "paid": [("paid", "payment")],
    "fulfilled": [("paid", "payment"), ("fulfilled", "staff")],
    "delivered": [("paid", "payment"), ("fulfilled", "staff"), ("delivered", "staff")],
    "cancelled": [("cancelled", "buyer")],
    "expired": [("expired", "system")],
    "refunded": [("paid", "payment"), ("refunded", "staff")],
}


async def make_order(
    session: AsyncSession,
    buyer: User,
    lines: list[tuple[Variant, int]],
    *,
    status: str = "paid",
    created_at: datetime | None = None,
) -> Order:
    """An order of ``lines`` (variant, quantity) by ``buyer``, moved to ``status``.

    Stock is reserved as the API does (the variants need enough of it). ``created_at`` backdates
    the order (vendor stats over date ranges).
    """
    assert lines
    snapshots = []
    currency = ""
    for variant, quantity in lines:
        product = await session.get(Product, variant.product_id)
        assert product is not None
        vendor = await session.get(Vendor, product.vendor_id)
        assert vendor is not None
        currency = product.currency
        snapshots.append(snapshot_line(variant, product, vendor, quantity))
    subtotal = sum(line.line_total_amount for line in snapshots)
    now = created_at or datetime.now(UTC)
    order = Order(
        user_id=buyer.id,
        status="pending_payment",
        currency=currency,
        subtotal_amount=subtotal,
        shipping_amount=0,
        total_amount=subtotal,
        item_count=sum(line.quantity for line in snapshots),
        shipping_address={"name": buyer.full_name, "line1": "1 Marina", "city": "Lagos", "country": "NG"},
        expires_at=now + timedelta(minutes=30),
    )
    if created_at is not None:
        order.created_at = created_at
    session.add(order)
    await session.flush()
    # One fulfilment per vendor, as placing makes them; shipped free so the total is the subtotal.
    settings = get_settings()
    free = Chosen(method=default_method(settings), amount=0)
    await add_fulfilments(session, settings, order, snapshots, {line.vendor_id: free for line in snapshots})
    short = await stock.reserve(session, {line.variant_id: line.quantity for line in snapshots})
    assert short is None, f"not enough stock for {short}"
    record(session, order, None, "buyer", actor_id=buyer.id)
    await session.flush()
    # The jobs that event subscribers defer are dropped: tests of those jobs send them themselves.
    with job_buffer():
        for target, actor in _PATHS[status]:
            await transition(session, order, target, actor)
    await session.commit()
    return order


async def variants_of(session: AsyncSession, product: Product) -> list[Variant]:
    return list((await session.scalars(select(Variant).where(Variant.product_id == product.id))).all())
