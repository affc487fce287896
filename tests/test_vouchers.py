"""Vouchers over HTTP on the real database: issuing (stores' own, the platform's), applying to the
cart, ordering with a code (line shares, totals, payment), the ledger of a platform-funded
discount, refunds of discounted lines, and use limits under concurrency.

The pure rules are in tests/test_voucher_rules.py.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.adapters.payments.sandbox import SandboxProvider
from core.jobs import job_buffer
from core.rules.fulfilment import share
from core.settings import Settings
from db.engine import Database
from db.models import (
    CartVoucher,
    Fulfilment,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Order,
    OrderLine,
    Product,
    Refund,
    User,
    Variant,
    Vendor,
    Voucher,
    VoucherRedemption,
)
from db.services.payments.processing import process_event
from tests.support.catalog import category, make_product, make_store
from tests.support.http import problem
from tests.support.identity import make_user
from tests.support.orders import variants_of
from tests.test_cart_orders import ADDRESS, auth, key
from tests.test_payments import deliver, start, the_event

pytestmark = pytest.mark.anyio

API = "/api/v1"
TEE, DRESS, BAG = 10_000, 40_000, 20_000


@dataclass
class Shop:
    store: Vendor
    rival: Vendor
    vendor: dict[str, str]  # the store's owner
    rival_vendor: dict[str, str]
    staff: dict[str, str]
    buyer: User
    shopper: dict[str, str]
    tee: Variant
    dress: Variant
    bag: Variant  # the rival store's
    tee_product: Product


@pytest.fixture
async def shop(session: AsyncSession, settings: Settings) -> Shop:
    owner, rival_owner = await make_user(session, role="vendor"), await make_user(session, role="vendor")
    store, rival = await make_store(session, owner), await make_store(session, rival_owner)
    tee = await make_product(session, store, title="Linen tee", price=TEE, variants=[("M", "white", 20)])
    dress = await make_product(
        session, store, title="Maxi dress", price=DRESS, category_slug="women-dresses-maxi-dresses"
    )
    bag = await make_product(
        session, rival, title="Tote", price=BAG, category_slug="women-bags-and-accessories"
    )
    buyer = await make_user(session)
    return Shop(
        store=store,
        rival=rival,
        vendor=auth(settings, owner),
        rival_vendor=auth(settings, rival_owner),
        staff=auth(settings, await make_user(session, role="staff")),
        buyer=buyer,
        shopper=auth(settings, buyer),
        tee=(await variants_of(session, tee))[0],
        dress=(await variants_of(session, dress))[0],
        bag=(await variants_of(session, bag))[0],
        tee_product=tee,
    )


def code() -> str:
    return f"c{uuid.uuid4().hex[:10]}"


async def issue(client: httpx.AsyncClient, headers: dict[str, str], who: str = "staff", **terms: Any) -> Any:
    body = {"code": code(), "kind": "percent", "value": 1_000, **terms}
    made = await client.post(f"{API}/{who}/vouchers", json=body, headers=headers)
    assert made.status_code == 201, made.text
    return made.json()


async def fill_cart(client: httpx.AsyncClient, shop: Shop, *lines: tuple[Variant, int]) -> None:
    for variant, quantity in lines:
        added = await client.post(
            f"{API}/cart/items",
            json={"variant_id": str(variant.id), "quantity": quantity},
            headers=shop.shopper,
        )
        assert added.status_code == 201, added.text


async def apply(client: httpx.AsyncClient, shop: Shop, voucher_code: str) -> httpx.Response:
    return await client.post(f"{API}/cart/voucher", json={"code": voucher_code}, headers=shop.shopper)


def refused(response: httpx.Response, reason: str, field: str = "code") -> str:
    body = problem(response, 422)
    assert body["type"].endswith(f"/voucher_{reason}"), body
    assert [e["field"] for e in body["errors"]] == [field], body
    message: str = body["errors"][0]["message"]
    return message


# --- issuing --------------------------------------------------------------------------------


async def test_staff_issue_platform_codes_and_list_them(client: httpx.AsyncClient, shop: Shop) -> None:
    made = await issue(client, shop.staff, code="Summer-25", kind="fixed", value=5_000, total_cap=100)
    assert (made["code"], made["funded_by"], made["vendor_id"]) == ("SUMMER-25", "platform", None)
    assert (made["redeemed_count"], made["active"], made["min_subtotal"]["amount"]) == (0, True, 0)
    own = await issue(client, shop.vendor, who="vendor")
    platform = (await client.get(f"{API}/staff/vouchers", headers=shop.staff)).json()
    assert [v["id"] for v in platform["items"]] == [made["id"]]
    stores = (await client.get(f"{API}/staff/vouchers?funded_by=vendor", headers=shop.staff)).json()
    assert [v["id"] for v in stores["items"]] == [own["id"]]
    stopped = await client.patch(
        f"{API}/staff/vouchers/{own['id']}", json={"active": False}, headers=shop.staff
    )
    assert stopped.json()["active"] is False
    missing = await client.patch(
        f"{API}/staff/vouchers/{uuid.uuid4()}", json={"active": False}, headers=shop.staff
    )
    assert problem(missing, 404)["type"].endswith("/voucher_not_found")
    for method in ("GET", "POST"):
        assert (
            await client.request(method, f"{API}/staff/vouchers", headers=shop.shopper)
        ).status_code == 403
        assert (await client.request(method, f"{API}/staff/vouchers", headers=shop.vendor)).status_code == 403
        assert (await client.request(method, f"{API}/staff/vouchers")).status_code == 401


async def test_a_store_sees_and_stops_only_its_own_codes(client: httpx.AsyncClient, shop: Shop) -> None:
    own = await issue(
        client, shop.vendor, who="vendor", scope="products", scope_ids=[str(shop.tee_product.id)]
    )
    assert (own["funded_by"], own["vendor_id"]) == ("vendor", str(shop.store.id))
    await issue(client, shop.staff)
    mine = (await client.get(f"{API}/vendor/vouchers", headers=shop.vendor)).json()
    assert [v["id"] for v in mine["items"]] == [own["id"]]
    assert (await client.get(f"{API}/vendor/vouchers", headers=shop.rival_vendor)).json()["items"] == []
    theirs = await client.patch(
        f"{API}/vendor/vouchers/{own['id']}", json={"active": False}, headers=shop.rival_vendor
    )
    assert problem(theirs, 404)["type"].endswith("/voucher_not_found")
    stopped = await client.patch(
        f"{API}/vendor/vouchers/{own['id']}", json={"active": False}, headers=shop.vendor
    )
    assert stopped.json()["active"] is False
    # A store's code covers only its own items: another store, or another store's product, is refused.
    for scope, ids, message in (
        ("vendor", [str(shop.rival.id)], "a store's code covers only its own store"),
        ("products", [str(shop.bag.product_id)], "no such product"),
    ):
        body = {"code": code(), "kind": "percent", "value": 1_000, "scope": scope, "scope_ids": ids}
        bad = problem(await client.post(f"{API}/vendor/vouchers", json=body, headers=shop.vendor), 422)
        assert [e["message"] for e in bad["errors"]] == [message]
    for method in ("GET", "POST"):
        assert (
            await client.request(method, f"{API}/vendor/vouchers", headers=shop.shopper)
        ).status_code == 403
        assert (await client.request(method, f"{API}/vendor/vouchers", headers=shop.staff)).status_code == 403
        assert (await client.request(method, f"{API}/vendor/vouchers")).status_code == 401


@pytest.mark.parametrize(
    ("terms", "field"),
    [
        ({"value": 99}, "value"),  # under 1 %
        ({"value": 10_001}, "value"),  # over 100 %
        ({"starts_at": "2030-01-02T00:00:00Z", "ends_at": "2030-01-01T00:00:00Z"}, "ends_at"),
        ({"ends_at": "2020-01-01T00:00:00Z"}, "ends_at"),
        ({"scope": "cart", "scope_ids": [str(uuid.uuid4())]}, "scope_ids"),
        ({"scope": "category"}, "scope_ids"),
        ({"scope": "category", "scope_ids": [str(uuid.uuid4())]}, "scope_ids[0]"),
        ({"scope": "vendor", "scope_ids": [str(uuid.uuid4())]}, "scope_ids[0]"),
        ({"min_subtotal": {"amount": 100, "currency": "USD"}}, "min_subtotal.currency"),
        ({"max_discount": {"amount": 0, "currency": "NGN"}}, "max_discount.amount"),
        ({"total_cap": 0}, "total_cap"),
        ({"per_customer_limit": -1}, "per_customer_limit"),
        ({"code": "no spaces"}, "code"),
        ({"kind": "bogo"}, "kind"),
    ],
)
async def test_unacceptable_terms_are_422_naming_the_field(
    client: httpx.AsyncClient, shop: Shop, terms: dict[str, Any], field: str
) -> None:
    body = {"code": code(), "kind": "percent", "value": 1_000, **terms}
    refused_terms = problem(await client.post(f"{API}/staff/vouchers", json=body, headers=shop.staff), 422)
    assert field in [e["field"] for e in refused_terms["errors"]], refused_terms


async def test_a_code_is_unique_without_regard_to_case(client: httpx.AsyncClient, shop: Shop) -> None:
    await issue(client, shop.staff, code="WELCOME10")
    again = {"code": "welcome10", "kind": "fixed", "value": 100}
    taken = problem(await client.post(f"{API}/vendor/vouchers", json=again, headers=shop.vendor), 422)
    assert taken["errors"] == [{"field": "code", "message": "already in use"}]


async def test_a_category_code_covers_sub_categories(
    client: httpx.AsyncClient, session: AsyncSession, shop: Shop
) -> None:
    women_dresses = await category(session, "women-dresses")
    made = await issue(client, shop.staff, scope="category", scope_ids=[str(women_dresses.id)])
    await fill_cart(client, shop, (shop.tee, 1), (shop.dress, 1))
    cart = (await apply(client, shop, made["code"])).json()
    assert cart["discount"]["amount"] == DRESS // 10


# --- the cart -------------------------------------------------------------------------------


async def test_a_code_on_the_cart_shows_in_its_totals(client: httpx.AsyncClient, shop: Shop) -> None:
    tops = await issue(client, shop.staff, value=1_500, scope="vendor", scope_ids=[str(shop.store.id)])
    await fill_cart(client, shop, (shop.tee, 3), (shop.bag, 1))
    applied = await apply(client, shop, tops["code"].lower())
    assert applied.status_code == 200, applied.text
    cart = applied.json()
    subtotal = 3 * TEE + BAG
    off = 3 * TEE * 1_500 // 10_000
    assert (cart["subtotal"]["amount"], cart["discount"]["amount"], cart["total"]["amount"]) == (
        subtotal,
        off,
        subtotal - off,
    )
    assert cart["voucher"] == {
        "code": tops["code"],
        "discount": {"amount": off, "currency": "NGN"},
        "problem": None,
    }
    assert (await client.get(f"{API}/cart", headers=shop.shopper)).json() == cart
    # Changing the cart prices the code again.
    item = next(i for i in cart["items"] if i["variant_id"] == str(shop.tee.id))
    changed = await client.patch(f"{API}/cart/items/{item['id']}", json={"quantity": 1}, headers=shop.shopper)
    assert changed.json()["discount"]["amount"] == TEE * 1_500 // 10_000
    assert (await client.delete(f"{API}/cart/voucher", headers=shop.shopper)).status_code == 204
    assert (await client.delete(f"{API}/cart/voucher", headers=shop.shopper)).status_code == 204
    bare = (await client.get(f"{API}/cart", headers=shop.shopper)).json()
    assert (bare["voucher"], bare["discount"]["amount"], bare["total"]) == (None, 0, bare["subtotal"])
    assert (await client.post(f"{API}/cart/voucher", json={"code": tops["code"]})).status_code == 401
    assert (await client.delete(f"{API}/cart/voucher")).status_code == 401


async def test_codes_that_cannot_be_used_are_422_naming_why(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings, shop: Shop
) -> None:
    await fill_cart(client, shop, (shop.tee, 2))
    assert "no such voucher code" in refused(await apply(client, shop, "NOPE-404"), "unknown")
    stopped = await issue(client, shop.staff, active=False)
    refused(await apply(client, shop, stopped["code"]), "unknown")
    later = await issue(client, shop.staff, starts_at=(datetime.now(UTC) + timedelta(days=1)).isoformat())
    refused(await apply(client, shop, later["code"]), "not_yet_valid")
    over = await issue(client, shop.staff)
    await session.execute(
        update(Voucher)
        .where(Voucher.id == uuid.UUID(over["id"]))
        .values(
            starts_at=datetime.now(UTC) - timedelta(days=2), ends_at=datetime.now(UTC) - timedelta(days=1)
        )
    )
    assert "expired" in refused(await apply(client, shop, over["code"]), "expired")
    used_up = await issue(client, shop.staff, total_cap=1)
    await session.execute(
        update(Voucher).where(Voucher.id == uuid.UUID(used_up["id"])).values(redeemed_count=1)
    )
    refused(await apply(client, shop, used_up["code"]), "exhausted")
    rivals = await issue(client, shop.rival_vendor, who="vendor")
    refused(await apply(client, shop, rivals["code"]), "not_applicable")
    minimum = await issue(client, shop.staff, min_subtotal={"amount": 2 * TEE + 1, "currency": "NGN"})
    refused(await apply(client, shop, minimum["code"]), "below_minimum")
    once = await issue(client, shop.staff, per_customer_limit=1)
    ordered = await client.post(
        f"{API}/orders",
        json={
            "shipping_address": ADDRESS,
            "items": [{"variant_id": str(shop.tee.id), "quantity": 1}],
            "voucher_code": once["code"],
        },
        headers={**shop.shopper, **key()},
    )
    assert ordered.status_code == 201, ordered.text
    refused(await apply(client, shop, once["code"]), "limit_reached")
    # Another shopper may still use it.
    other = auth(settings, await make_user(session))
    await client.post(
        f"{API}/cart/items", json={"variant_id": str(shop.tee.id), "quantity": 1}, headers=other
    )
    assert (
        await client.post(f"{API}/cart/voucher", json={"code": once["code"]}, headers=other)
    ).status_code == 200


async def test_a_cart_code_that_stops_applying_shows_why_and_blocks_ordering_the_cart(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    minimum = await issue(client, shop.staff, min_subtotal={"amount": 2 * TEE, "currency": "NGN"})
    await fill_cart(client, shop, (shop.tee, 2))
    cart = (await apply(client, shop, minimum["code"])).json()
    changed = await client.patch(
        f"{API}/cart/items/{cart['items'][0]['id']}", json={"quantity": 1}, headers=shop.shopper
    )
    shown = changed.json()
    assert shown["discount"]["amount"] == 0
    assert shown["voucher"]["problem"] == "the items this code covers do not reach its minimum spend"
    blocked = await client.post(
        f"{API}/orders", json={"shipping_address": ADDRESS}, headers={**shop.shopper, **key()}
    )
    refused(blocked, "below_minimum", field="voucher_code")
    assert (
        len((await client.get(f"{API}/cart", headers=shop.shopper)).json()["items"]) == 1
    )  # nothing ordered


# --- orders ---------------------------------------------------------------------------------


async def lines_of(session: AsyncSession, order_id: str) -> dict[uuid.UUID, OrderLine]:
    found = await session.scalars(select(OrderLine).where(OrderLine.order_id == uuid.UUID(order_id)))
    return {line.variant_id: line for line in found}


def assert_totals_add_up(order: dict[str, Any], lines: dict[uuid.UUID, OrderLine]) -> None:
    assert sum(line.discount_amount for line in lines.values()) == order["discount_total"]["amount"]
    assert all(0 <= line.discount_amount <= line.line_total_amount for line in lines.values())
    assert order["total"]["amount"] == (
        order["subtotal"]["amount"] + order["shipping_total"]["amount"] - order["discount_total"]["amount"]
    )
    for line in order["lines"]:
        assert line["discount"]["amount"] == lines[uuid.UUID(line["variant_id"])].discount_amount


async def test_ordering_the_cart_uses_its_code_and_shares_the_discount_over_the_lines(
    client: httpx.AsyncClient, session: AsyncSession, shop: Shop
) -> None:
    made = await issue(client, shop.staff, value=1_500, max_discount={"amount": 9_001, "currency": "NGN"})
    await fill_cart(client, shop, (shop.tee, 3), (shop.dress, 1), (shop.bag, 1))
    assert (await apply(client, shop, made["code"])).json()["discount"]["amount"] == 9_001
    placed = await client.post(
        f"{API}/orders", json={"shipping_address": ADDRESS}, headers={**shop.shopper, **key()}
    )
    assert placed.status_code == 201, placed.text
    order = placed.json()
    assert order["discount_total"]["amount"] == 9_001
    lines = await lines_of(session, order["id"])
    assert_totals_add_up(order, lines)
    # Shared by amount: 30,000 : 40,000 : 20,000 of 90,000.
    assert [lines[v.id].discount_amount for v in (shop.tee, shop.dress, shop.bag)] == [3_000, 4_001, 2_000]
    use = (
        await session.scalars(
            select(VoucherRedemption).where(VoucherRedemption.order_id == uuid.UUID(order["id"]))
        )
    ).one()
    assert (use.amount, use.user_id, str(use.voucher_id)) == (9_001, shop.buyer.id, made["id"])
    assert await session.scalar(select(Voucher.redeemed_count).where(Voucher.id == use.voucher_id)) == 1
    assert await session.scalar(select(func.count()).select_from(CartVoucher)) == 0  # used, so off the cart
    paying = await client.post(f"{API}/orders/{order['id']}/payments", headers=shop.shopper)
    assert paying.json()["amount"]["amount"] == order["total"]["amount"]


async def test_a_stores_code_sent_with_the_order_discounts_only_its_items(
    client: httpx.AsyncClient, session: AsyncSession, shop: Shop
) -> None:
    own = await issue(client, shop.vendor, who="vendor", kind="fixed", value=7_000)
    body = {
        "shipping_address": ADDRESS,
        "items": [{"variant_id": str(v.id), "quantity": 1} for v in (shop.tee, shop.bag)],
        "voucher_code": own["code"].lower(),
    }
    placed = await client.post(f"{API}/orders", json=body, headers={**shop.shopper, **key()})
    assert placed.status_code == 201, placed.text
    lines = await lines_of(session, placed.json()["id"])
    assert_totals_add_up(placed.json(), lines)
    assert (lines[shop.tee.id].discount_amount, lines[shop.bag.id].discount_amount) == (7_000, 0)
    # The same request again replays the same order (the code is used once).
    again = await client.post(
        f"{API}/orders",
        json=body,
        headers={**shop.shopper, "Idempotency-Key": placed.request.headers["Idempotency-Key"]},
    )
    assert (again.status_code, again.json()["id"]) == (200, placed.json()["id"])
    assert await session.scalar(select(Voucher.redeemed_count).where(Voucher.id == uuid.UUID(own["id"]))) == 1
    # A code that covers nothing of the order is refused, and nothing is reserved.
    stock_before = (await session.scalars(select(Variant.reserved).where(Variant.id == shop.bag.id))).one()
    only_bag = {**body, "items": [{"variant_id": str(shop.bag.id), "quantity": 1}]}
    refused(
        await client.post(f"{API}/orders", json=only_bag, headers={**shop.shopper, **key()}),
        "not_applicable",
        "voucher_code",
    )
    refused(
        await client.post(
            f"{API}/orders", json={**body, "voucher_code": "NOPE"}, headers={**shop.shopper, **key()}
        ),
        "unknown",
        "voucher_code",
    )
    assert (
        await session.scalars(select(Variant.reserved).where(Variant.id == shop.bag.id))
    ).one() == stock_before


# --- the ledger and refunds -----------------------------------------------------------------


async def balances(session: AsyncSession, order_id: uuid.UUID, shop: Shop) -> dict[str, int]:
    rows = await session.execute(
        select(LedgerAccount.code, func.sum(LedgerEntry.amount))
        .join(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id)
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .where(LedgerTransaction.order_id == order_id)
        .group_by(LedgerAccount.code)
    )
    names = {str(shop.store.id): "store", str(shop.rival.id): "rival"}
    found = {}
    for account, amount in rows.tuples():
        kind, _, vendor = account.partition(":")
        found[f"{kind}:{names[vendor]}" if vendor else kind] = int(amount)
    return found


async def shipping_of(session: AsyncSession, order: Order) -> dict[uuid.UUID, int]:
    rows = await session.execute(
        select(Fulfilment.vendor_id, Fulfilment.shipping_amount).where(Fulfilment.order_id == order.id)
    )
    return dict(rows.tuples().all())


async def paid_order(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings, shop: Shop, voucher_code: str
) -> Order:
    body = {
        "shipping_address": ADDRESS,
        "items": [
            {"variant_id": str(shop.tee.id), "quantity": 2},
            {"variant_id": str(shop.bag.id), "quantity": 1},
        ],
        "voucher_code": voucher_code,
    }
    placed = await client.post(f"{API}/orders", json=body, headers={**shop.shopper, **key()})
    assert placed.status_code == 201, placed.text
    order = await session.get(Order, uuid.UUID(placed.json()["id"]))
    assert order is not None
    started = await start(client, settings, shop.buyer, order)
    await deliver(client, settings, started["reference"], order.total_amount)
    with job_buffer():
        assert (
            await process_event(
                session, SandboxProvider(), (await the_event(session, started["reference"])).id
            )
            == "paid"
        )
    return order


async def test_a_platform_discount_is_the_platforms_expense_and_comes_back_with_a_refund(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings, shop: Shop
) -> None:
    made = await issue(client, shop.staff, kind="fixed", value=3_001)
    order = await paid_order(client, session, settings, shop, made["code"])
    lines = await lines_of(session, str(order.id))
    tee = lines[shop.tee.id]
    assert (tee.discount_amount, lines[shop.bag.id].discount_amount) == (1_501, 1_500)
    captured = await balances(session, order.id, shop)
    assert captured["platform_promotions"] == 3_001
    # Vendors earn their full prices (commission on what the shopper paid); the platform pays the rest.
    rate = tee.commission_bps
    shipping = await shipping_of(session, order)
    assert captured["vendor_pending:store"] == -(
        2 * TEE + shipping[shop.store.id] - (2 * TEE - 1_501) * rate // 10_000
    )
    assert captured["vendor_pending:rival"] == -(
        BAG + shipping[shop.rival.id] - (BAG - 1_500) * rate // 10_000
    )
    assert sum(captured.values()) == 0
    # The store cancels one tee: the shopper gets back what they paid for it, less its share of the discount.
    fulfilment_id = tee.fulfilment_id
    cancelled = await client.post(
        f"{API}/vendor/fulfilments/{fulfilment_id}/cancel",
        json={"lines": [{"order_line_id": str(tee.id), "quantity": 1}], "reason": "Stained"},
        headers=shop.vendor,
    )
    assert cancelled.status_code == 200, cancelled.text
    refund = (await session.scalars(select(Refund).where(Refund.order_id == order.id))).one()
    assert refund.amount == TEE - share(1_501, 1, 2) == TEE - 750
    after = await balances(session, order.id, shop)
    assert sum(after.values()) == 0
    assert after["refunds_payable"] == -refund.amount
    # The platform's promotion is reversed in proportion to the refunded part of the store's share.
    store_paid = 2 * TEE - 1_501 + shipping[shop.store.id]
    assert after["platform_promotions"] == 3_001 - 1_501 * refund.amount // store_paid


async def test_a_stores_own_discount_only_reduces_what_it_is_paid(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings, shop: Shop
) -> None:
    own = await issue(client, shop.vendor, who="vendor", kind="fixed", value=2_000)
    order = await paid_order(client, session, settings, shop, own["code"])
    captured = await balances(session, order.id, shop)
    assert "platform_promotions" not in captured
    rate = (await lines_of(session, str(order.id)))[shop.tee.id].commission_bps
    shipping = (await shipping_of(session, order))[shop.store.id]
    assert captured["vendor_pending:store"] == -(
        2 * TEE - 2_000 + shipping - (2 * TEE - 2_000) * rate // 10_000
    )
    assert sum(captured.values()) == 0


# --- use limits under concurrency (the committing database, as production runs) --------------


async def committed_shop(
    committed_db: Database, *, variants: int, **terms: Any
) -> tuple[list[Variant], Voucher]:
    """A product in ``variants`` sizes (2 units each) and a platform code of 20 % on the whole cart.

    Each racing order buys its own size, so the orders share no stock row: only the voucher's lock
    stands between them."""
    async with committed_db.session_maker() as session:
        store = await make_store(session)
        sizes = [(f"S{i}", "black", 2) for i in range(variants)]
        product = await make_product(session, store, price=TEE, variants=sizes)
        voucher = Voucher(
            code=code().upper(),
            funded_by="platform",
            kind="percent",
            value=2_000,
            currency="NGN",
            min_subtotal=0,
            starts_at=datetime.now(UTC) - timedelta(minutes=1),
            scope="cart",
            scope_ids=[],
            redeemed_count=0,
            active=True,
            **terms,
        )
        session.add(voucher)
        await session.commit()
        return await variants_of(session, product), voucher


async def test_fifty_simultaneous_orders_against_a_cap_of_five_discount_exactly_five(
    live_client: httpx.AsyncClient, committed_db: Database, settings: Settings
) -> None:
    variants, voucher = await committed_shop(committed_db, variants=50, total_cap=5)
    async with committed_db.session_maker() as session:
        buyers = [auth(settings, await make_user(session)) for _ in range(50)]

    def body(variant: Variant) -> dict[str, Any]:
        items = [{"variant_id": str(variant.id), "quantity": 1}]
        return {"shipping_address": ADDRESS, "items": items, "voucher_code": voucher.code.lower()}

    responses = await asyncio.gather(
        *(
            live_client.post(f"{API}/orders", json=body(variant), headers={**buyer, **key()})
            for buyer, variant in zip(buyers, variants, strict=True)
        )
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 5, 422: 45}, statuses
    assert all(r.json()["type"].endswith("/voucher_exhausted") for r in responses if r.status_code == 422)
    assert all(r.json()["discount_total"]["amount"] == TEE // 5 for r in responses if r.status_code == 201)
    async with committed_db.session_maker() as session:
        assert await session.scalar(select(Voucher.redeemed_count).where(Voucher.id == voucher.id)) == 5
        assert await session.scalar(select(func.count()).select_from(VoucherRedemption)) == 5
        assert await session.scalar(select(func.count()).select_from(Order)) == 5
        assert await session.scalar(select(func.count()).where(Order.discount_amount > 0)) == 5
        # The refused orders reserved nothing.
        reserved = await session.scalar(
            select(func.sum(Variant.reserved)).where(Variant.id.in_([v.id for v in variants]))
        )
        assert reserved == 5


async def test_a_per_customer_limit_holds_under_ten_simultaneous_orders_by_one_shopper(
    live_client: httpx.AsyncClient, committed_db: Database, settings: Settings
) -> None:
    variants, voucher = await committed_shop(committed_db, variants=10, per_customer_limit=1)
    async with committed_db.session_maker() as session:
        buyer = auth(settings, await make_user(session))
    responses = await asyncio.gather(
        *(
            live_client.post(
                f"{API}/orders",
                json={
                    "shipping_address": ADDRESS,
                    "items": [{"variant_id": str(variant.id), "quantity": 1}],
                    "voucher_code": voucher.code,
                },
                headers={**buyer, **key()},
            )
            for variant in variants
        )
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 422: 9}, statuses
    assert all(r.json()["type"].endswith("/voucher_limit_reached") for r in responses if r.status_code == 422)
    async with committed_db.session_maker() as session:
        assert await session.scalar(select(func.count()).select_from(VoucherRedemption)) == 1
        assert await session.scalar(select(Voucher.redeemed_count).where(Voucher.id == voucher.id)) == 1
