"""The shopper's cart, orders and payments."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Principal, requires_user
from api.common import Cursor, Limit, money
from api.orders import schemas
from api.orders.present import cart_out, order_of, order_out
from api.resources import AppResources
from db.services.orders import cart, cart_reads, lifecycle, placing, queries, reads
from db.services.payments.initiate import start_payment
from db.services.vouchers.cart import discount_of

IdempotencyKey = Annotated[
    str,
    HeaderParameter(
        name="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="A unique key per order attempt (a UUID): retries with the same key and body "
        "return the same order; reusing it with another body is refused (422).",
    ),
]


async def cart_view(session: AsyncSession, user_id: UUID, resources: AppResources) -> schemas.Cart:
    """The caller's cart priced from the catalog now, with what its code takes off, read in the
    request's session (after a change to the cart, before it is committed); GET /cart reads the
    same answer in one statement (db.services.orders.cart_reads)."""
    settings = resources.settings
    lines = await cart.cart_lines(session, user_id)
    voucher = await discount_of(session, settings, user_id, lines)
    return cart_out(lines, settings.currency, resources.storage, voucher)


class CartController(Controller):
    path = "/cart"
    tags = ["cart"]
    guards = [requires_user]

    @get("/", summary="Your cart, priced from the catalog now")
    async def read(
        self,
        principal: NamedDependency[Principal],
        resources: NamedDependency[AppResources],
    ) -> schemas.Cart:
        settings = resources.settings
        found = await cart_reads.own_cart(resources.db, principal.user_id, settings.currency)
        return cart_out(found.lines, settings.currency, resources.storage, found.voucher)

    @post("/items", status_code=201, summary="Add an item (adds to the quantity already in the cart)")
    async def add(
        self,
        data: JSONBody[schemas.CartItemIn],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        resources: NamedDependency[AppResources],
    ) -> schemas.Cart:
        await cart.add_item(db_session, resources.settings, principal.user_id, data.variant_id, data.quantity)
        return await cart_view(db_session, principal.user_id, resources)

    @patch("/items/{item_id:uuid}", summary="Change an item's quantity")
    async def update(
        self,
        item_id: FromPath[UUID],
        data: JSONBody[schemas.CartItemUpdate],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        resources: NamedDependency[AppResources],
    ) -> schemas.Cart:
        await cart.set_quantity(db_session, resources.settings, principal.user_id, item_id, data.quantity)
        return await cart_view(db_session, principal.user_id, resources)

    @delete("/items/{item_id:uuid}", status_code=204, summary="Remove an item")
    async def remove(
        self,
        item_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> None:
        await cart.remove_item(db_session, principal.user_id, item_id)


class OrdersController(Controller):
    path = "/orders"
    tags = ["orders"]
    guards = [requires_user]

    @post(
        "/",
        status_code=201,
        summary="Place an order (reserves its stock until paid or expired)",
        description="201 with the new order; 200 with the same order when the same Idempotency-Key and "
        "body are sent again; 409 when an item lacks stock (nothing reserved) or the same key is still "
        "being processed; 422 when the key was used with another body, or when the voucher (`voucher_code`, "
        "else the cart's code when ordering the cart) cannot be used, its type naming why "
        "(`voucher_exhausted` once every use is taken: the order is refused, not placed at full price).",
    )
    async def place(
        self,
        data: JSONBody[schemas.OrderCreate],
        idempotency_key: IdempotencyKey,
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        resources: NamedDependency[AppResources],
    ) -> Response[schemas.Order]:
        settings = resources.settings
        outcome = await placing.place_order_once(
            db_session,
            settings,
            principal.user_id,
            key=idempotency_key,
            body=data,
            items=[(item.variant_id, item.quantity) for item in data.items]
            if data.items is not None
            else None,
            shipping_address=msgspec.to_builtins(data.shipping_address),
            shipping=[(c.vendor_id, c.method_id) for c in data.shipping]
            if data.shipping is not None
            else None,
            voucher_code=data.voucher_code,
        )
        if isinstance(outcome, placing.Replayed):
            return Response(
                msgspec.convert(outcome.body, schemas.Order, strict=False),
                status_code=200,
                headers={"Idempotent-Replayed": "true"},
            )
        order = order_out(outcome.order, outcome.lines, outcome.fulfilments)
        placing.remember_response(db_session, outcome, msgspec.to_builtins(order))
        return Response(order, status_code=201)

    @get("/", summary="Your orders, newest first")
    async def list_orders(
        self,
        principal: NamedDependency[Principal],
        resources: NamedDependency[AppResources],
        status: FromQuery[schemas.OrderStatus | None] = None,
        limit: Limit = 20,
        cursor: Cursor = None,
    ) -> schemas.OrderList:
        page = await reads.own_orders(
            resources.db, principal.user_id, limit=limit, cursor=cursor, status=status
        )
        return schemas.OrderList(items=[order_of(body) for body in page.items], next_cursor=page.next_cursor)

    @get("/{order_id:uuid}", summary="One of your orders, with its payments")
    async def read(
        self,
        order_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        resources: NamedDependency[AppResources],
    ) -> schemas.Order:
        return order_of(await reads.own_order(resources.db, principal.user_id, order_id))

    @post(
        "/{order_id:uuid}/cancel",
        status_code=200,
        summary="Cancel an order before fulfilment (stock released; a paid order is refunded)",
    )
    async def cancel(
        self,
        order_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> schemas.Order:
        await lifecycle.cancel(db_session, order_id, user_id=principal.user_id)
        view = await queries.own_order(db_session, principal.user_id, order_id)
        return order_out(view.order, view.lines, view.fulfilments, view.payments)

    @post("/{order_id:uuid}/payments", status_code=201, summary="Start paying an order")
    async def pay(
        self,
        order_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        resources: NamedDependency[AppResources],
    ) -> schemas.PaymentStarted:
        payment = await start_payment(
            db_session,
            resources.settings,
            resources.payments,
            user_id=principal.user_id,
            order_id=order_id,
        )
        return schemas.PaymentStarted(
            provider=payment.provider,
            reference=payment.reference,
            authorization_url=payment.authorization_url,
            amount=money(payment.amount, payment.currency),
        )
