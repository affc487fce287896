"""Delivered, paid orders for the returns tests (tests/test_returns*.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.adapters.tokens import TokenSigner
from core.settings import Settings
from db.models import Order, OrderLine, Payment, User, Variant, Vendor
from tests.support.catalog import make_product, make_store
from tests.support.identity import make_user
from tests.support.orders import captured_payment, make_order, variants_of

API = "/api/v1"


def auth(settings: Settings, user: User) -> dict[str, str]:
    return {"Authorization": f"Bearer {TokenSigner(settings).issue(user.id, user.role)}"}


@dataclass
class Store:
    vendor: Vendor
    auth: dict[str, str]
    tee: Variant  # 15 000 NGN, 10 in stock
    scarf: Variant  # 5 000 NGN, 5 in stock


async def a_store(session: AsyncSession, settings: Settings, name: str) -> Store:
    owner = await make_user(session, role="vendor")
    vendor = await make_store(session, owner, name=name)
    tee = await make_product(
        session, vendor, title="Linen tee", price=1_500_000, variants=[("M", "white", 10)]
    )
    scarf = await make_product(
        session, vendor, title="Silk scarf", price=500_000, variants=[("OS", "red", 5)]
    )
    return Store(
        vendor,
        auth(settings, owner),
        (await variants_of(session, tee))[0],
        (await variants_of(session, scarf))[0],
    )


async def paid_for(session: AsyncSession, order: Order) -> Payment:
    """The captured payment of ``order``, as the payment webhook leaves it."""
    return await captured_payment(session, order)


@dataclass
class Bought:
    order: Order
    payment: Payment
    # variant id -> order line id
    lines: dict[uuid.UUID, str]

    def line(self, variant: Variant) -> str:
        return self.lines[variant.id]


async def bought(
    session: AsyncSession, buyer: User, lines: list[tuple[Variant, int]], status: str = "delivered"
) -> Bought:
    order = await make_order(session, buyer, lines, status=status)
    payment = await paid_for(session, order)
    rows = await session.scalars(select(OrderLine).where(OrderLine.order_id == order.id))
    return Bought(order, payment, {row.variant_id: str(row.id) for row in rows})


async def ask(
    client: httpx.AsyncClient,
    buyer: dict[str, str],
    order: Order | uuid.UUID,
    lines: list[tuple[str, int]],
    note: str | None = None,
) -> httpx.Response:
    """``POST /orders/{id}/returns`` of (order line id, units), each for the same reason."""
    body: dict[str, object] = {
        "lines": [{"order_line_id": line, "quantity": units, "reason": "Too small"} for line, units in lines]
    }
    if note is not None:
        body["note"] = note
    order_id = order.id if isinstance(order, Order) else order
    return await client.post(f"{API}/orders/{order_id}/returns", json=body, headers=buyer)
