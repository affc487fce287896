"""Vouchers: a shopper's code on their cart, a store's own codes, and the platform's codes.

A store sees and stops only its own codes (another store's is 404); staff issue the platform's
codes and may stop any code.
"""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from litestar import Controller, Response, delete, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Principal, requires_role, requires_user
from api.common import Cursor, Limit
from api.orders.controllers import cart_view
from api.orders.schemas import Cart
from api.resources import AppResources
from api.seller.controllers import provide_store
from api.vouchers import schemas
from api.vouchers.present import voucher_in, voucher_out
from db.models import Vendor
from db.services.vouchers import cart, issuing


class CartVoucherController(Controller):
    path = "/cart/voucher"
    tags = ["cart", "vouchers"]
    guards = [requires_user]

    @post(
        "/",
        status_code=200,
        summary="Apply a voucher code to your cart (replacing any other)",
        description="200 with the cart, its `discount` and `total`; 422 naming why the code cannot be "
        "used (unknown, not valid yet, expired, fully used, used as often as it allows by you, covering "
        "nothing in the cart, below its minimum spend), field `code`.",
    )
    async def apply(
        self,
        data: JSONBody[schemas.CodeIn],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        resources: NamedDependency[AppResources],
    ) -> Cart:
        await cart.apply(db_session, resources.settings, principal.user_id, data.code)
        return await cart_view(db_session, principal.user_id, resources)

    @delete("/", status_code=204, summary="Take the voucher code off your cart")
    async def remove(
        self, db_session: NamedDependency[AsyncSession], principal: NamedDependency[Principal]
    ) -> None:
        await cart.remove(db_session, principal.user_id)


class VendorVouchersController(Controller):
    path = "/vendor/vouchers"
    tags = ["vendor", "vouchers"]
    guards = [requires_role("vendor")]
    dependencies = {"store": Provide(provide_store)}

    @get("/", summary="Your store's voucher codes, newest first")
    async def list_vouchers(
        self,
        db_session: NamedDependency[AsyncSession],
        store: NamedDependency[Vendor],
        limit: Limit = 20,
        cursor: Cursor = None,
    ) -> schemas.VoucherList:
        page = await issuing.list_vouchers(db_session, store=store, limit=limit, cursor=cursor)
        return schemas.VoucherList(items=[voucher_out(v) for v in page.items], next_cursor=page.next_cursor)

    @post(
        "/",
        status_code=201,
        summary="Issue a code your store pays for (it covers only your items)",
        description="422 naming each unacceptable field: a percentage outside 1-100 %, a window that "
        "ends before it starts or has passed, scope ids that are not yours, a code already in use.",
    )
    async def issue(
        self,
        data: JSONBody[schemas.VoucherCreate],
        db_session: NamedDependency[AsyncSession],
        store: NamedDependency[Vendor],
        principal: NamedDependency[Principal],
        resources: NamedDependency[AppResources],
    ) -> Response[schemas.Voucher]:
        settings = resources.settings
        voucher = await issuing.issue(
            db_session,
            settings,
            voucher_in(data, settings.currency),
            store=store,
            issued_by=principal.user_id,
        )
        return Response(voucher_out(voucher), status_code=201)

    @patch("/{voucher_id:uuid}", summary="Stop or restart one of your codes")
    async def update(
        self,
        voucher_id: FromPath[UUID],
        data: JSONBody[schemas.VoucherUpdate],
        db_session: NamedDependency[AsyncSession],
        store: NamedDependency[Vendor],
    ) -> schemas.Voucher:
        return voucher_out(await issuing.set_active(db_session, voucher_id, data.active, store=store))


class StaffVouchersController(Controller):
    path = "/staff/vouchers"
    tags = ["staff", "vouchers"]
    guards = [requires_role("staff")]

    @get("/", summary="The platform's voucher codes (or, with funded_by=vendor, the stores'), newest first")
    async def list_vouchers(
        self,
        db_session: NamedDependency[AsyncSession],
        funded_by: FromQuery[Literal["platform", "vendor"]] = "platform",
        limit: Limit = 20,
        cursor: Cursor = None,
    ) -> schemas.VoucherList:
        page = await issuing.list_vouchers(
            db_session, store=None, funded_by=funded_by, limit=limit, cursor=cursor
        )
        return schemas.VoucherList(items=[voucher_out(v) for v in page.items], next_cursor=page.next_cursor)

    @post(
        "/",
        status_code=201,
        summary="Issue a code the platform pays for (any scope)",
        description="422 naming each unacceptable field: a percentage outside 1-100 %, a window that "
        "ends before it starts or has passed, unknown scope ids, a code already in use.",
    )
    async def issue(
        self,
        data: JSONBody[schemas.VoucherCreate],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        resources: NamedDependency[AppResources],
    ) -> Response[schemas.Voucher]:
        settings = resources.settings
        voucher = await issuing.issue(
            db_session, settings, voucher_in(data, settings.currency), store=None, issued_by=principal.user_id
        )
        return Response(voucher_out(voucher), status_code=201)

    @patch("/{voucher_id:uuid}", summary="Stop or restart any code (the platform's or a store's)")
    async def update(
        self,
        voucher_id: FromPath[UUID],
        data: JSONBody[schemas.VoucherUpdate],
        db_session: NamedDependency[AsyncSession],
    ) -> schemas.Voucher:
        return voucher_out(await issuing.set_active(db_session, voucher_id, data.active, store=None))
