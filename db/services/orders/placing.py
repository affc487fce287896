"""Placing an order: price the lines from the catalog, reserve their stock, snapshot them.

Everything happens in the request's transaction: either the order, its fulfilments (one per
vendor, with the shipping chosen), its lines, its reservations, its audit row, its idempotency
key and its ``OrderPlaced`` jobs all commit, or nothing does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import InvalidInput
from core.events import get_event_bus
from core.settings import Settings
from db.models import Fulfilment, Order, OrderLine, Product, Variant, Vendor
from db.services.ledger import commission
from db.services.orders import cart, idempotency, stock
from db.services.orders.errors import EmptyOrder, NotForSale, OutOfStock
from db.services.orders.events import OrderPlaced
from db.services.orders.transitions import record
from db.services.shipping import quotes
from db.services.vouchers import redeeming


@dataclass(frozen=True, slots=True)
class PlacedOrder:
    order: Order
    lines: list[OrderLine]
    fulfilments: list[Fulfilment]
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
        discount_amount=0,
        final_sale=product.final_sale,
        cancelled_quantity=0,
        returned_quantity=0,
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


class Priced(NamedTuple):
    """The order's lines as the catalog prices them now, and each vendor's return window."""

    lines: list[OrderLine]
    return_windows: dict[UUID, int]


def return_windows(settings: Settings, vendors: list[Vendor]) -> dict[UUID, int]:
    """Each store's own return window, 0 (no returns) included; the platform's when it has none."""
    return {
        vendor.id: settings.return_window_days
        if vendor.return_window_days is None
        else vendor.return_window_days
        for vendor in vendors
    }


async def _priced_lines(
    session: AsyncSession, settings: Settings, wanted: list[tuple[UUID, int]], from_cart: bool
) -> Priced:
    """Order lines snapshotted from the catalog, in the order asked, with their commission rates
    (one read for variants, products and vendors; one for the commission rules).

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
    lines = [snapshot_line(*found[variant_id], quantity) for variant_id, quantity in wanted]
    products = [product for _, product, _ in found.values()]
    await set_commission(session, settings, lines, {p.id: p.category_id for p in products})
    vendors = {vendor.id: vendor for _, _, vendor in found.values()}
    return Priced(lines=lines, return_windows=return_windows(settings, list(vendors.values())))


async def set_commission(
    session: AsyncSession, settings: Settings, lines: list[OrderLine], categories: dict[UUID, UUID]
) -> None:
    """Fix each line's commission rate as the rules stand now (later changes never touch it);
    ``categories`` maps each line's product to its category."""
    keys = [(line.vendor_id, categories[line.product_id]) for line in lines]
    rates = await commission.rates(session, settings, keys, datetime.now(UTC))
    for line, key in zip(lines, keys, strict=True):
        line.commission_bps = rates[key]


def vendor_parts(lines: list[OrderLine]) -> list[quotes.VendorPart]:
    """The order's lines grouped by vendor, in the order their first line appears."""
    parts: dict[UUID, quotes.VendorPart] = {}
    for line in lines:
        part = parts.get(line.vendor_id)
        parts[line.vendor_id] = quotes.VendorPart(
            vendor_id=line.vendor_id,
            vendor_name=line.vendor_name,
            units=(part.units if part else 0) + line.quantity,
            subtotal=(part.subtotal if part else 0) + line.line_total_amount,
        )
    return list(parts.values())


async def add_fulfilments(
    session: AsyncSession,
    order: Order,
    lines: list[OrderLine],
    chosen: dict[UUID, quotes.Chosen],
    windows: dict[UUID, int],
) -> list[Fulfilment]:
    """One fulfilment per vendor of ``order`` (already flushed), its lines attached to it;
    ``windows`` is each vendor's return window (:func:`return_windows`)."""
    fulfilments = {
        vendor_id: Fulfilment(
            order_id=order.id,
            vendor_id=vendor_id,
            status="pending",
            currency=order.currency,
            shipping_method=choice.snapshot(),
            shipping_amount=choice.amount,
            return_window_days=windows[vendor_id],
        )
        for vendor_id, choice in chosen.items()
    }
    session.add_all(fulfilments.values())
    await session.flush()
    for line in lines:
        line.order_id = order.id
        line.fulfilment_id = fulfilments[line.vendor_id].id
    session.add_all(lines)
    return list(fulfilments.values())


async def place_order(
    session: AsyncSession,
    settings: Settings,
    user_id: UUID,
    *,
    items: list[tuple[UUID, int]] | None,
    shipping_address: dict[str, Any],
    shipping: list[tuple[UUID, UUID]] | None = None,
    voucher_code: str | None = None,
) -> PlacedOrder:
    """Create an order of ``items`` (or of the cart when None) with its stock reserved, split into
    one fulfilment per vendor shipped with the method chosen in ``shipping`` (``(vendor_id,
    method_id)`` pairs), else that vendor's cheapest for the address. ``voucher_code`` (else the
    cart's code when ordering the cart) takes its discount off the lines it covers.

    Raises:
        EmptyOrder: no items and an empty cart (422).
        NotForSale: an item does not exist, is not listed or is priced in another currency (422,
            naming ``items[i].variant_id``).
        InvalidShippingChoice, ShippingUnavailable: see :func:`quotes.choose` (422).
        OutOfStock: some item has less stock than asked (409; nothing is reserved).
        VoucherRefused: the code cannot be used, with the reason (422, ``voucher_code``).
    """
    wanted, from_cart = await _wanted_lines(session, user_id, items)
    _check_limits(settings, wanted, from_cart)
    snapshots, windows = await _priced_lines(session, settings, wanted, from_cart)
    address = quotes.Address(country=str(shipping_address["country"]), state=shipping_address.get("state"))
    chosen = await quotes.choose(session, settings, vendor_parts(snapshots), address, shipping)
    claim = await redeeming.claim(session, settings, user_id, voucher_code, from_cart, snapshots)
    short = await stock.reserve(session, dict(wanted))
    if short is not None:
        raise OutOfStock(short)
    # After the stock: orders lock variants, then the voucher (never the other way round).
    redeemed = await redeeming.redeem(session, user_id, claim, snapshots) if claim else None
    discount = redeemed.amount if redeemed else 0
    subtotal = sum(line.line_total_amount for line in snapshots)
    shipping_total = sum(choice.amount for choice in chosen.values())
    order = Order(
        user_id=user_id,
        status="pending_payment",
        currency=settings.currency,
        subtotal_amount=subtotal,
        shipping_amount=shipping_total,
        discount_amount=discount,
        voucher_id=redeemed.voucher_id if redeemed else None,
        total_amount=subtotal + shipping_total - discount,
        item_count=sum(line.quantity for line in snapshots),
        shipping_address=shipping_address,
        expires_at=datetime.now(UTC) + timedelta(minutes=settings.order_reservation_minutes),
    )
    session.add(order)
    await session.flush()
    fulfilments = await add_fulfilments(session, order, snapshots, chosen, windows)
    await redeeming.record(session, redeemed, order)
    record(session, order, None, "buyer", actor_id=user_id)
    if from_cart:
        await cart.clear(session, user_id, [variant_id for variant_id, _ in wanted])
    await session.flush()
    get_event_bus().publish(OrderPlaced(order_id=order.id, user_id=user_id))
    return PlacedOrder(order=order, lines=snapshots, fulfilments=fulfilments)


async def place_order_once(
    session: AsyncSession,
    settings: Settings,
    user_id: UUID,
    *,
    key: str,
    body: Any,
    items: list[tuple[UUID, int]] | None,
    shipping_address: dict[str, Any],
    shipping: list[tuple[UUID, UUID]] | None = None,
    voucher_code: str | None = None,
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
    placed = await place_order(
        session,
        settings,
        user_id,
        items=items,
        shipping_address=shipping_address,
        shipping=shipping,
        voucher_code=voucher_code,
    )
    return PlacedOrder(
        order=placed.order,
        lines=placed.lines,
        fulfilments=placed.fulfilments,
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
