"""One order in full, as staff need it to answer "what happened to this order?".

Its lines, its fulfilments, its payments and what was refunded of them, its returns, the
provider's webhook events about its payments, and the timeline of every move of the order and of
its fulfilments (``order_events``, oldest first). One query per table, each through an index on
the order (webhook events through their unique (provider, reference, type) key).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar
from uuid import UUID

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from db.models import (
    Fulfilment,
    Order,
    OrderEvent,
    OrderLine,
    Payment,
    PaymentEvent,
    Refund,
    Return,
    ReturnLine,
    User,
)
from db.services.staff_console.errors import ConsoleOrderNotFound

Row = TypeVar("Row", Fulfilment, OrderEvent, OrderLine, Payment, Refund, Return)


@dataclass(frozen=True, slots=True)
class ReturnInFull:
    request: Return
    lines: list[ReturnLine]


@dataclass(frozen=True, slots=True)
class OrderInFull:
    """Every row that tells an order's story, each list oldest first."""

    order: Order
    buyer: User
    lines: list[OrderLine]
    fulfilments: list[Fulfilment]
    payments: list[Payment]
    refunds: list[Refund]
    returns: list[ReturnInFull]
    webhook_events: list[PaymentEvent]
    timeline: list[OrderEvent]

    def vendor_name(self, vendor_id: UUID) -> str:
        """The store's name as the order recorded it (on its lines)."""
        return next((line.vendor_name for line in self.lines if line.vendor_id == vendor_id), "")


async def order_in_full(session: AsyncSession, order_id: UUID) -> OrderInFull:
    """Everything about one order.

    Raises:
        ConsoleOrderNotFound: no order has this id (404).
    """
    order = await session.get(Order, order_id)
    if order is None:
        raise ConsoleOrderNotFound()
    buyer = await session.get(User, order.user_id)
    assert buyer is not None  # orders.user_id is a RESTRICT foreign key
    payments = await _of_order(session, Payment, Payment.order_id, order_id)
    return OrderInFull(
        order=order,
        buyer=buyer,
        lines=await _of_order(session, OrderLine, OrderLine.order_id, order_id),
        fulfilments=await _of_order(session, Fulfilment, Fulfilment.order_id, order_id),
        payments=payments,
        refunds=await _of_order(session, Refund, Refund.order_id, order_id),
        returns=await _returns(session, order_id),
        webhook_events=await _webhook_events(session, payments),
        timeline=await _of_order(session, OrderEvent, OrderEvent.order_id, order_id),
    )


async def _of_order(
    session: AsyncSession, model: type[Row], order_column: InstrumentedAttribute[UUID], order_id: UUID
) -> list[Row]:
    """The order's rows of ``model``, oldest first (UUIDv7 ids are time-ordered)."""
    rows = await session.scalars(select(model).where(order_column == order_id).order_by(model.id))
    return list(rows.all())


async def _returns(session: AsyncSession, order_id: UUID) -> list[ReturnInFull]:
    requests = await _of_order(session, Return, Return.order_id, order_id)
    if not requests:
        return []
    lines: dict[UUID, list[ReturnLine]] = {}
    for line in await session.scalars(
        select(ReturnLine)
        .where(ReturnLine.return_id.in_([r.id for r in requests]))
        .order_by(ReturnLine.return_id, ReturnLine.id)
    ):
        lines.setdefault(line.return_id, []).append(line)
    return [ReturnInFull(request, lines.get(request.id, [])) for request in requests]


async def _webhook_events(session: AsyncSession, payments: Sequence[Payment]) -> list[PaymentEvent]:
    """The provider's events about the order's payments, in the order they were received.

    Matched on (provider, reference), as processing matches an event to its payment; references
    are unique per payment, so no other order's event can appear.
    """
    if not payments:
        return []
    keys = [(payment.provider, payment.reference) for payment in payments]
    events = await session.scalars(
        select(PaymentEvent)
        .where(tuple_(PaymentEvent.provider, PaymentEvent.reference).in_(keys))
        .order_by(PaymentEvent.id)
    )
    return list(events.all())
