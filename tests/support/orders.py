"""Order test data straight into the database (the HTTP path is tested in tests/test_orders*.py).

``make_order`` writes an order as ``POST /orders`` would leave it, then walks it through the
state machine to ``status`` with the real transition service, so stock and audit rows match.
"""

from __future__ import annotations

import functools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.jobs import job_buffer
from core.settings import Settings, load_settings
from db.models import Order, Payment, Product, User, Variant, Vendor
from db.services.fulfilment import moves
from db.services.fulfilment.moves import Acting
from db.services.fulfilment.queries import of_order
from db.services.orders import stock
from db.services.orders.placing import (
    add_fulfilments,
    return_windows,
    set_commission,
    snapshot_line,
    vendor_parts,
)
from db.services.orders.transitions import record, transition
from db.services.shipping import quotes
from tests.support.stack import WORKER_TEST_ENV

# How each status is reached from pending_payment, and by whom ("ship" and "deliver" move every
# fulfilment of the order through the fulfilment services, which move the order).
_PATHS: dict[str, list[tuple[str, Any]]] = {
    "pending_payment": [],
    "paid": [("paid", "payment")],
    "shipped": [("paid", "payment"), ("ship", None)],
    "delivered": [("paid", "payment"), ("ship", None), ("deliver", None)],
    "cancelled": [("cancelled", "buyer")],
    "expired": [("expired", "system")],
    "refunded": [("paid", "payment"), ("refunded", "staff")],
}
ADDRESS = {"full_name": "Ada Buyer", "line1": "1 Marina", "city": "Lagos", "country": "NG", "state": "Lagos"}


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
    categories: dict[uuid.UUID, uuid.UUID] = {}
    vendors: list[Vendor] = []
    currency = ""
    for variant, quantity in lines:
        product = await session.get(Product, variant.product_id)
        assert product is not None
        vendor = await session.get(Vendor, product.vendor_id, populate_existing=True)
        assert vendor is not None
        currency = product.currency
        categories[product.id] = product.category_id
        vendors.append(vendor)
        snapshots.append(snapshot_line(variant, product, vendor, quantity))
    subtotal = sum(line.line_total_amount for line in snapshots)
    now = created_at or datetime.now(UTC)
    settings = _test_settings()
    address = {**ADDRESS, "full_name": buyer.full_name}
    chosen = await quotes.choose(
        session, settings, vendor_parts(snapshots), quotes.Address(country="NG", state="Lagos"), None
    )
    shipping = sum(choice.amount for choice in chosen.values())
    order = Order(
        user_id=buyer.id,
        status="pending_payment",
        currency=currency,
        subtotal_amount=subtotal,
        shipping_amount=shipping,
        discount_amount=0,
        total_amount=subtotal + shipping,
        item_count=sum(line.quantity for line in snapshots),
        shipping_address=address,
        expires_at=now + timedelta(minutes=30),
    )
    if created_at is not None:
        order.created_at = created_at
    session.add(order)
    await session.flush()
    await set_commission(session, settings, snapshots, categories)
    await add_fulfilments(session, order, snapshots, chosen, return_windows(settings, vendors))
    short = await stock.reserve(session, {line.variant_id: line.quantity for line in snapshots})
    assert short is None, f"not enough stock for {short}"
    record(session, order, None, "buyer", actor_id=buyer.id)
    await session.flush()
    # The jobs that event subscribers defer are dropped: tests of those jobs send them themselves.
    with job_buffer():
        for target, actor in _PATHS[status]:
            if target in ("ship", "deliver"):
                await _move_fulfilments(session, order, target)
            else:
                await transition(session, order, target, actor)
    await session.commit()
    return order


@functools.cache
def _test_settings() -> Settings:
    return load_settings({"APP_ENV": "test", **WORKER_TEST_ENV}, dotenv=None)


async def _move_fulfilments(session: AsyncSession, order: Order, move: str) -> None:
    staff = Acting(actor="staff", user_id=order.user_id, vendor_id=None)
    for fulfilment in await of_order(session, order.id):
        if move == "ship":
            await moves.ship(
                session,
                fulfilment.id,
                staff,
                moves.Tracking("GIG Logistics", f"GIG-{fulfilment.id.hex[:10]}"),
            )
        else:
            await moves.deliver(session, fulfilment.id, staff)
    await session.refresh(order)


async def variants_of(session: AsyncSession, product: Product) -> list[Variant]:
    return list((await session.scalars(select(Variant).where(Variant.product_id == product.id))).all())


async def captured_payment(
    session: AsyncSession, order: Order, *, provider: str = "sandbox", fee: int | None = None
) -> Payment:
    """The captured payment of ``order`` for its total, as the payment webhook leaves it."""
    payment = Payment(
        order_id=order.id,
        provider=provider,
        reference=f"fs-{uuid.uuid4().hex}",
        amount=order.total_amount,
        currency=order.currency,
        status="succeeded",
        authorization_url="https://sandbox.invalid/pay",
        paid_at=order.paid_at or datetime.now(UTC),
        fee_amount=fee,
    )
    session.add(payment)
    await session.commit()
    return payment
