"""Payouts: a vendor's payout account, balance and payouts; staff's payout console and holds."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, get, post, put
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath, FromQuery, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Principal, current_principal, requires_role
from api.catalog.schemas import VendorRef
from api.common import Cursor, Limit, SignedMoney, money
from api.payouts import schemas
from api.resources import AppResources
from api.seller.controllers import provide_store
from db.models import Payout, PayoutAccount, Vendor
from db.services.identity.audit import AuditLog, ClientInfo
from db.services.payouts import accounts, holds, queries, requests
from db.services.payouts.errors import PayoutAccountNotFound

# Each registration asks the provider who holds an account: a vendor could otherwise use the route
# to look up the names behind any account numbers.
ACCOUNT_CHANGES_PER_HOUR = 10


async def within_account_change_rate(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Count a payout-account registration against its vendor (429 past the hourly limit)."""
    resources: AppResources = connection.app.state.resources
    who = str(current_principal(connection).user_id)
    await resources.limiter.hit("payout_account", who, limit=ACCOUNT_CHANGES_PER_HOUR, window=3600)


def account_out(account: PayoutAccount) -> schemas.PayoutAccount:
    return schemas.PayoutAccount(
        bank_code=account.bank_code,
        account_number=f"******{account.account_last4}",
        account_last4=account.account_last4,
        account_name=account.account_name,
        currency=account.currency,
        updated_at=account.updated_at,
    )


def payout_out(payout: Payout) -> schemas.Payout:
    return schemas.Payout(
        id=payout.id,
        amount=money(payout.amount, payout.currency),
        status=payout.status,  # type: ignore[arg-type]  # constrained by a CHECK constraint
        reference=payout.reference,
        requested_by=payout.requested_by,  # type: ignore[arg-type]  # likewise
        bank_code=payout.bank_code,
        account_last4=payout.account_last4,
        transfer_code=payout.transfer_code,
        failure_reason=payout.failure_reason,
        created_at=payout.created_at,
        sent_at=payout.sent_at,
        completed_at=payout.completed_at,
    )


def hold_out(vendor: Vendor) -> schemas.PayoutHold:
    return schemas.PayoutHold(
        vendor_id=vendor.id,
        payouts_on_hold=vendor.payouts_on_hold,
        reason=vendor.payouts_hold_reason,
        held_at=vendor.payouts_held_at,
    )


class VendorPayoutsController(Controller):
    path = "/vendor"
    tags = ["vendor", "payouts"]
    guards = [requires_role("vendor")]
    dependencies = {"store": Provide(provide_store)}

    @get("/balance", summary="Your money: pending, available to pay out, and in transit")
    async def balance(
        self,
        db_session: NamedDependency[AsyncSession],
        store: NamedDependency[Vendor],
        resources: NamedDependency[AppResources],
    ) -> schemas.Balance:
        found = await queries.balance_of(db_session, store.id, resources.settings.currency)
        return schemas.Balance(
            pending=SignedMoney(amount=found.pending, currency=found.currency),
            available=SignedMoney(amount=found.available, currency=found.currency),
            in_transit=money(found.in_transit, found.currency),
        )

    @get("/payout-account", summary="The bank account your payouts go to (masked); 404 before one is set")
    async def read_account(
        self, db_session: NamedDependency[AsyncSession], store: NamedDependency[Vendor]
    ) -> schemas.PayoutAccount:
        account = await accounts.account_of(db_session, store.id)
        if account is None:
            raise PayoutAccountNotFound("No payout account yet (PUT /api/v1/vendor/payout-account).")
        return account_out(account)

    @put(
        "/payout-account",
        guards=[within_account_change_rate],
        summary="Set or replace the bank account your payouts go to",
        description="The payment provider resolves the account (its name is returned for you to check) "
        "and makes it a transfer recipient; 422 when it does not resolve. Payouts already made keep "
        "the account they were made to. At most 10 an hour (429 with `Retry-After` after).",
    )
    async def set_account(
        self,
        data: JSONBody[schemas.PayoutAccountIn],
        db_session: NamedDependency[AsyncSession],
        store: NamedDependency[Vendor],
        resources: NamedDependency[AppResources],
    ) -> schemas.PayoutAccount:
        account = await accounts.register_account(
            db_session,
            resources.payments,
            store.id,
            bank_code=data.bank_code,
            account_number=data.account_number,
            secret=resources.settings.secret_key.reveal(),
            currency=resources.settings.currency,
        )
        return account_out(account)

    @post(
        "/payouts",
        status_code=201,
        summary="Pay out your available balance now",
        description="All that is available, or `amount` of it. 422 below the minimum payout, above "
        "what is available, or without a payout account; 409 while staff hold your payouts.",
    )
    async def request_payout(
        self,
        db_session: NamedDependency[AsyncSession],
        store: NamedDependency[Vendor],
        resources: NamedDependency[AppResources],
        data: JSONBody[schemas.PayoutIn | None] = None,
    ) -> schemas.Payout:
        terms = requests.Terms.of(resources.settings, resources.payments.name)
        amount = data.amount if data is not None else None
        payout = await requests.request_payout(
            db_session, terms, store.id, amount=amount, requested_by="vendor"
        )
        return payout_out(payout)

    @get("/payouts", summary="Your payouts, newest first")
    async def list_payouts(
        self,
        db_session: NamedDependency[AsyncSession],
        store: NamedDependency[Vendor],
        status: FromQuery[schemas.PayoutStatus | None] = None,
        limit: Limit = 20,
        cursor: Cursor = None,
    ) -> schemas.PayoutList:
        page = await queries.payouts_of_vendor(
            db_session, store.id, status=status, limit=limit, cursor=cursor
        )
        return schemas.PayoutList(items=[payout_out(p) for p in page.items], next_cursor=page.next_cursor)


class StaffPayoutsController(Controller):
    path = "/staff"
    tags = ["staff", "payouts"]
    guards = [requires_role("staff")]

    @get("/payouts", summary="Every vendor's payouts, newest first; filters `status`, `vendor`")
    async def list_payouts(
        self,
        db_session: NamedDependency[AsyncSession],
        status: FromQuery[schemas.PayoutStatus | None] = None,
        vendor: FromQuery[UUID | None] = None,
        limit: Limit = 20,
        cursor: Cursor = None,
    ) -> schemas.StaffPayoutList:
        page = await queries.all_payouts(
            db_session, status=status, vendor_id=vendor, limit=limit, cursor=cursor
        )
        return schemas.StaffPayoutList(
            items=[
                schemas.StaffPayout(
                    payout=payout_out(found.payout),
                    vendor=VendorRef(id=found.payout.vendor_id, name=found.vendor_name),
                    vendor_payouts_on_hold=found.vendor_on_hold,
                )
                for found in page.items
            ],
            next_cursor=page.next_cursor,
        )

    @post(
        "/vendors/{vendor_id:uuid}/payouts/hold",
        status_code=200,
        summary="Hold a vendor's payouts",
        description="No payout is made or sent until released (payouts made and not yet sent wait); "
        "audit-logged with the reason.",
    )
    async def hold(
        self,
        vendor_id: FromPath[UUID],
        data: JSONBody[schemas.HoldIn],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        client: NamedDependency[ClientInfo],
    ) -> schemas.PayoutHold:
        audit = AuditLog(db_session, client)
        vendor = await holds.hold(audit, vendor_id, reason=data.reason.strip(), staff_id=principal.user_id)
        return hold_out(vendor)

    @post(
        "/vendors/{vendor_id:uuid}/payouts/release",
        status_code=200,
        summary="Release a vendor's payouts",
        description="Payouts waiting while held are sent; audit-logged.",
    )
    async def release(
        self,
        vendor_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        client: NamedDependency[ClientInfo],
    ) -> schemas.PayoutHold:
        vendor = await holds.release(AuditLog(db_session, client), vendor_id, staff_id=principal.user_id)
        return hold_out(vendor)
