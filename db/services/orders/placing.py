"""Placing an order: price the lines from the catalog, reserve their stock, snapshot them.

Everything happens in the request's transaction: either the order, its lines, its reservations,
its audit row, its idempotency key and its ``OrderPlaced`` jobs all commit, or nothing does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import InvalidInput
from core.events import get_event_bus
from core.settings import Settings
from db.models import Order, OrderLine, Product, Variant, Vendor
from db.services.orders import cart, idempotency, stock
from db.services.orders.errors import EmptyOrder, NotForSale, OutOfStock
from db.services.orders.events import OrderPlaced
from db.services.orders.transitions import record


@dataclass(frozen=True, slots=True)
class PlacedOrder:
    order: Order
    lines: list[OrderLine]
    # Set by place_order_once: the Idempotency-Key this order holds until commit.
    claim: KeyClaim | None = None


@dataclass(frozen=True, slots=True)
class KeyClaim:
    """The ``Idempotency-Key`` an order was placed under, for storing the answer given."""

    user_id: UUID
    key: str
    body_hash: str
    ttl: timedelta


@dataclass(frozen=True, slots=True)
class Replayed:
    """The stored answer of an earlier request with the same ``Idempotency-Key``."""

    status_code: int
    body: dict[str, Any]


async def _wanted_lines(
    session: AsyncSession, user_id: UUID, items: list[tuple[UUID, int]] | None
) -> tuple[list[tuple[UUID, int]], bool]:
    """(variant id, quantity) pairs to order, and whether they came from the cart."""
    if items is not None:
        return items, False
    lines = await cart.cart_lines(session, user_id)
    if not lines:
        raise EmptyOrder("Your cart is empty.", errors=[{"field": "items", "message": "the cart is empty"}])
    return [(line.variant_id, line.quantity) for line in lines], True


def snapshot_line(variant: Variant, product: Product, vendor: Vendor, quantity: int) -> OrderLine:
    """An order line frozen from the catalog as it is now (title, SKU, size, colour, vendor,
    unit price: the variant's own price, else the product's)."""
    unit = variant.price_amount or product.price_amount
    return OrderLine(
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


def _check_limits(settings: Settings, wanted: list[tuple[UUID, int]], from_cart: bool) -> None:
    """Raises InvalidInput (422) for too many lines, a line over the cap or a variant twice."""
    cap = settings.order_line_max_quantity
    if len(wanted) > settings.order_max_lines:
        raise InvalidInput(
            f"An order holds at most {settings.order_max_lines} different items.",
            errors=[{"field": "items", "message": f"at most {settings.order_max_lines} items"}],
        )
    seen: set[UUID] = set()
    errors = []
    for index, (variant_id, quantity) in enumerate(wanted):
        field = "items" if from_cart else f"items[{index}]"
        if quantity > cap:
            errors.append({"field": f"{field}.quantity", "message": f"at most {cap} per item"})
        if variant_id in seen:
            errors.append({"field": f"{field}.variant_id", "message": "listed twice"})
        seen.add(variant_id)
    if errors:
        raise InvalidInput("Some items are not acceptable.", errors=errors)


async def _priced_lines(
    session: AsyncSession, settings: Settings, wanted: list[tuple[UUID, int]], from_cart: bool
) -> list[OrderLine]:
    """Order lines snapshotted from the catalog, in the order asked.

    Raises:
        NotForSale: an item does not exist, is not listed or is priced in another currency (422).
    """
    ids = [variant_id for variant_id, _ in wanted]
    rows = await session.execute(
        select(Variant, Product, Vendor)
        .join(Product, Product.id == Variant.product_id)
        .join(Vendor, Vendor.id == Product.vendor_id)
        .where(Variant.id.in_(ids))
    )
    found = {variant.id: (variant, product, vendor) for variant, product, vendor in rows}
    problems = [
        {"field": f"items[{index}].variant_id" if not from_cart else "items", "message": "not for sale"}
        for index, variant_id in enumerate(ids)
        if variant_id not in found
        or not found[variant_id][1].is_listed
        or found[variant_id][1].currency != settings.currency
    ]
    if problems:
        raise NotForSale("Some items are not for sale.", errors=problems)
    return [snapshot_line(*found[variant_id], quantity) for variant_id, quantity in wanted]


async def place_order(
    session: AsyncSession,
    settings: Settings,
    user_id: UUID,
    *,
    items: list[tuple[UUID, int]] | None,
    shipping_address: dict[str, Any],
) -> PlacedOrder:
    """Create an order of ``items`` (or of the cart when None) with its stock reserved.

    Raises:
        EmptyOrder: no items and an empty cart (422).
        NotForSale: an item does not exist, is not listed or is priced in another currency (422,
            naming ``items[i].variant_id``).
        OutOfStock: some item has less stock than asked (409; nothing is reserved).
    """
    wanted, from_cart = await _wanted_lines(session, user_id, items)
    _check_limits(settings, wanted, from_cart)
    ids = [variant_id for variant_id, _ in wanted]
    snapshots = await _priced_lines(session, settings, wanted, from_cart)
    short = await stock.reserve(session, dict(wanted))
    if short is not None:
        raise OutOfStock(short)

    now = datetime.now(UTC)
    subtotal = sum(line.line_total_amount for line in snapshots)
    order = Order(
        user_id=user_id,
        status="pending_payment",
        currency=settings.currency,
        subtotal_amount=subtotal,
        shipping_amount=0,
        total_amount=subtotal,
        item_count=sum(line.quantity for line in snapshots),
        shipping_address=shipping_address,
        expires_at=now + timedelta(minutes=settings.order_reservation_minutes),
    )
    session.add(order)
    await session.flush()
    for line in snapshots:
        line.order_id = order.id
    session.add_all(snapshots)
    record(session, order, None, "buyer", actor_id=user_id)
    if from_cart:
        await cart.clear(session, user_id, ids)
    await session.flush()
    get_event_bus().publish(OrderPlaced(order_id=order.id, user_id=user_id))
    return PlacedOrder(order=order, lines=snapshots)


async def place_order_once(
    session: AsyncSession,
    settings: Settings,
    user_id: UUID,
    *,
    key: str,
    body: Any,
    items: list[tuple[UUID, int]] | None,
    shipping_address: dict[str, Any],
) -> PlacedOrder | Replayed:
    """:func:`place_order` guarded by an ``Idempotency-Key``.

    A new order comes back with its key claimed for this transaction; the caller stores the answer
    it gives with :func:`remember_response` (the key row commits with the order).

    Raises:
        IdempotencyKeyInUse (409), IdempotencyKeyReused (422), and what :func:`place_order` raises.
    """
    body_hash = idempotency.request_hash(body)
    stored = await idempotency.claim(session, user_id, key, body_hash)
    if stored is not None:
        return Replayed(status_code=stored.status_code, body=stored.body)
    placed = await place_order(session, settings, user_id, items=items, shipping_address=shipping_address)
    return PlacedOrder(
        order=placed.order,
        lines=placed.lines,
        claim=KeyClaim(
            user_id=user_id,
            key=key,
            body_hash=body_hash,
            ttl=timedelta(hours=settings.idempotency_key_ttl_hours),
        ),
    )


def remember_response(session: AsyncSession, placed: PlacedOrder, body: dict[str, Any]) -> None:
    """Store ``body`` as the answer to replay for the key ``placed`` was made under (status 201).

    Raises:
        ValueError: ``placed`` was not made by :func:`place_order_once`.
    """
    if placed.claim is None:
        raise ValueError("this order was not placed under an Idempotency-Key")
    claim = placed.claim
    idempotency.remember(
        session,
        claim.user_id,
        claim.key,
        claim.body_hash,
        placed.order.id,
        status_code=201,
        body=body,
        ttl=claim.ttl,
    )
