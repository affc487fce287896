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
from db.models import Order, OrderLine, Product, User, Variant, Vendor
from db.services.orders import stock
from db.services.orders.transitions import record, transition

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
    for variant, quantity in lines:
        product = await session.get(Product, variant.product_id)
        assert product is not None
        vendor = await session.get(Vendor, product.vendor_id)
        assert vendor is not None
        unit = variant.price_amount or product.price_amount
        snapshots.append((variant, product, vendor, unit, quantity))
    subtotal = sum(unit * quantity for *_, unit, quantity in snapshots)
    now = created_at or datetime.now(UTC)
    order = Order(
        user_id=buyer.id,
        status="pending_payment",
        currency=snapshots[0][1].currency,
        subtotal_amount=subtotal,
        shipping_amount=0,
        total_amount=subtotal,
        item_count=sum(q for *_, q in snapshots),
        shipping_address={"name": buyer.full_name, "line1": "1 Marina", "city": "Lagos", "country": "NG"},
        expires_at=now + timedelta(minutes=30),
    )
    if created_at is not None:
        order.created_at = created_at
    session.add(order)
    await session.flush()
    for variant, product, vendor, unit, quantity in snapshots:
        session.add(
            OrderLine(
                order_id=order.id,
                variant_id=variant.id,
                product_id=product.id,
                vendor_id=vendor.id,
                title=product.title,
                vendor_name=vendor.name,
                sku=variant.sku,
                size=variant.size,
                color=variant.color,
                unit_price_amount=unit,
                quantity=quantity,
                line_total_amount=unit * quantity,
            )
        )
    short = await stock.reserve(session, {variant.id: quantity for variant, _, _, _, quantity in snapshots})
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
