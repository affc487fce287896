"""The soak's marketplace flows: shoppers check out across stores with a shipping method per store
and pay; stores pack, ship (carrier and tracking), deliver and cancel their parts; shoppers return
delivered items and stores approve and receive them (restocked or not) or reject them.

Set up before the load (``prepare``): the ``STORES`` stores with the most listed products get a
shipping profile through ``PUT /vendor/shipping-profile`` (standard delivery nationwide with a
price per extra unit and free above ``FREE_ABOVE``, express and pickup in Lagos only; a 14-day
return window) and an access token of their owner's (a vendor), signed as a login would sign it;
``VARIANTS_PER_STORE`` listed variants of each, none of the other flows' variants, get ``STOCK``
units.

Flows, each open loop like the others (request kinds in brackets):

* **checkout**: a shopper's cart gets a variant of one or two of those stores [checkout_cart_add],
  ``GET /cart/shipping-options`` for a Lagos address [shipping_options] (every store must offer
  a method), a method drawn per store and ``POST /orders`` with ``shipping`` [checkout_order]:
  the order's shipping must be what the options quoted for the methods chosen (else
  ``check: shipping differs from the quote``); then it is paid at once as the pay flow pays
  [checkout_payment, checkout_webhook]. An order refused (409 out of stock) takes its lines back
  out of the cart [checkout_cart_remove].
* **fulfil** (a store, one flow per store at a time): ``GET /vendor/fulfilments?status=pending``
  [fulfilments_list], one of the soak's own parts drawn: ``CANCEL_SHARE`` of them are cancelled,
  one unit of one line or the whole part [fulfilment_cancel]; the others are packed
  (``PACK_SHARE``) [fulfilment_pack] and shipped with a carrier and tracking number
  [fulfilment_ship], and ``DELIVER_NOW_SHARE`` of those delivered a moment later
  [fulfilment_deliver]. ``DELIVER_SHARE`` of fulfil flows deliver a part shipped earlier instead
  (``status=shipped``).
* **returns**: units of a line the soak delivered are asked back by their shopper
  (``POST /orders/{id}/returns``) [return_request]; the store rejects ``REJECT_SHARE`` of
  returns with a note [return_reject] (the units can be asked again), approves the others
  [return_approve] and receives them [return_receive], restocked (``RESTOCK_SHARE``) or not: the
  refund must be the units' paid amount.

A fulfil or returns flow that finds nothing to do counts as skipped (``Market.skipped``). The
kinds take their share of the flows from browse (``soak_mix``), so every other kind's rate is
unchanged; ``--no-marketplace`` runs the soak without them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import numpy as np

from benchmarks.soak import checks
from benchmarks.soak.driver import Driver, Placed, Shopper
from benchmarks.suite.scenarios import ADDRESS as CITY_ADDRESS
from benchmarks.suite.scenarios import API
from core.adapters.tokens import TokenSigner
from core.settings import Settings

MIX = {"checkout": 0.015, "fulfil": 0.02, "returns": 0.008}
STORES = 4
VARIANTS_PER_STORE = 8
STOCK = 30
FREE_ABOVE = 6_000_000  # minor units: ₦60,000
RETURN_WINDOW_DAYS = 14
COUNTRY, STATE = "NG", "Lagos"
ADDRESS = {**CITY_ADDRESS, "state": STATE}
TWO_STORES_SHARE = 0.7
TWO_UNITS_SHARE = 0.25
DELIVER_SHARE = 0.25
CANCEL_SHARE = 0.2
PARTIAL_CANCEL_SHARE = 0.6
PACK_SHARE = 0.6
DELIVER_NOW_SHARE = 0.5
REJECT_SHARE = 0.15
RESTOCK_SHARE = 0.7
CARRIERS = ("GIG Logistics", "DHL", "Kwik Delivery", "Sendbox")
REASONS = ("too small", "too long", "not as pictured", "changed my mind")
PAY_KINDS = ("checkout_payment", "checkout_webhook")
FLOW_NOTE = (
    f"checkout = one or two of {STORES} stores' variants in the cart, shipping options for a Lagos "
    "address, a method drawn per store, POST /orders with shipping (checked against the quote), paid at "
    f"once; fulfil = a store lists its pending parts and cancels {CANCEL_SHARE:.0%} (a unit or the whole "
    f"part), packs ({PACK_SHARE:.0%}) and ships the rest with tracking, delivering {DELIVER_NOW_SHARE:.0%} "
    f"of them at once ({DELIVER_SHARE:.0%} of fulfil flows deliver a part shipped earlier instead); "
    f"returns = a shopper returns delivered units, the store rejects {REJECT_SHARE:.0%}, else approves and "
    f"receives them ({RESTOCK_SHARE:.0%} restocked); the marketplace's share comes from browse"
)


def soak_mix(mix: dict[str, float]) -> dict[str, float]:
    """``mix`` with the marketplace's kinds added, their share taken from browse."""
    return {**mix, "browse": round(mix["browse"] - sum(MIX.values()), 6), **MIX}


@dataclass(frozen=True)
class Store:
    vendor_id: str
    name: str
    headers: dict[str, str]
    variants: list[str]


@dataclass(frozen=True)
class Setup:
    stores: list[Store]
    initial: dict[str, int]  # variant -> stock set before the load


@dataclass
class Delivered:
    """Units of a delivered line its shopper may still ask back."""

    order_id: str
    shopper: Shopper
    store: Store
    line_id: str
    units: int
    unit_price: int


@dataclass
class Market:
    """What the marketplace flows did, beyond their requests."""

    returnable: list[Delivered] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    tracking: int = 0


def profile(currency: str, index: int) -> dict[str, Any]:
    """Store ``index``'s shipping profile (prices differ a little between stores)."""

    def money(amount: int) -> dict[str, Any]:
        return {"amount": amount, "currency": currency}

    lagos = [{"country": COUNTRY, "states": [STATE]}]
    return {
        "methods": [
            {
                "name": "Standard delivery",
                "kind": "standard",
                "zones": [{"country": COUNTRY}],
                "price": money(150_000 + 25_000 * index),
                "per_extra_item": money(50_000),
                "free_above": money(FREE_ABOVE),
                "days": [3, 6],
            },
            {
                "name": "Express (Lagos)",
                "kind": "express",
                "zones": lagos,
                "price": money(400_000),
                "per_extra_item": money(100_000),
                "days": [1, 2],
            },
            {"name": "Pick up in store", "kind": "pickup", "zones": lagos, "price": money(0), "days": [0, 1]},
        ],
        "return_window_days": RETURN_WINDOW_DAYS,
    }


async def prepare(
    conn: asyncpg.Connection,
    client: httpx.AsyncClient,
    settings: Settings,
    seed: int,
    taken: set[str],
) -> Setup:
    """The stores, their shipping profiles, tokens and variants (stock set here).

    Raises:
        RuntimeError: a shipping profile was refused, or too few variants to sell.
    """
    rows = await conn.fetch(
        """
        SELECT ve.id::text AS vendor_id, ve.name, ve.owner_id, count(DISTINCT p.id) AS products
        FROM vendors ve JOIN products p ON p.vendor_id = ve.id JOIN variants v ON v.product_id = p.id
        WHERE p.is_listed AND ve.status = 'active' GROUP BY ve.id ORDER BY products DESC, ve.id LIMIT $1
        """,
        STORES,
    )
    signer = TokenSigner(settings)
    rng = np.random.default_rng([seed, 31])
    stores: list[Store] = []
    initial: dict[str, int] = {}
    for index, row in enumerate(rows):
        headers = {"Authorization": f"Bearer {signer.issue(row['owner_id'], 'vendor')}"}
        saved = await client.put(
            f"{API}/vendor/shipping-profile", json=profile(settings.currency, index), headers=headers
        )
        if saved.status_code != 200:
            raise RuntimeError(f"shipping profile of {row['name']}: {saved.status_code} {saved.text[:300]}")
        ids = [
            str(r[0])
            for r in await conn.fetch(
                "SELECT v.id FROM variants v JOIN products p ON p.id = v.product_id"
                " WHERE p.vendor_id = $1::uuid AND p.is_listed AND v.reserved = 0 ORDER BY v.id",
                row["vendor_id"],
            )
            if str(r[0]) not in taken
        ]
        chosen = [ids[i] for i in rng.permutation(len(ids))[:VARIANTS_PER_STORE]]
        if not chosen:
            raise RuntimeError(f"{row['name']} has no listed variant left to sell")
        stores.append(Store(row["vendor_id"], row["name"], headers, chosen))
        initial |= dict.fromkeys(chosen, STOCK)
    if len(stores) < 2:
        raise RuntimeError("the marketplace flows need two stores")
    await checks.set_stock(conn, initial)
    return Setup(stores, initial)


def _has_options(response: httpx.Response) -> str | None:
    bare = [g["vendor"]["name"] for g in response.json()["groups"] if not g["options"]]
    return f"no shipping option from {', '.join(bare)}" if bare else None


def _live_units(line: dict[str, Any]) -> int:
    return int(line["quantity"]) - int(line["cancelled_quantity"]) - int(line["returned_quantity"])


class Flows:
    """The marketplace's flows, sent through ``driver`` (its client, recording, generator, ledger)."""

    def __init__(self, driver: Driver, setup: Setup) -> None:
        self.d, self.setup = driver, setup
        self.market = Market()
        self.stores = {s.vendor_id: s for s in setup.stores}

    def handlers(self) -> dict[str, Callable[[float], Awaitable[None]]]:
        return {"checkout": self.checkout, "fulfil": self.fulfil, "returns": self.returns}

    def report(self) -> dict[str, Any]:
        return {
            "stores": [
                {"vendor_id": s.vendor_id, "name": s.name, "variants": len(s.variants)}
                for s in self.setup.stores
            ],
            "stock_per_variant": STOCK,
            "skipped": dict(sorted(self.market.skipped.items())),
            "units_still_returnable": sum(d.units for d in self.market.returnable),
        }

    # --- checkout ----------------------------------------------------------------------------------
    async def checkout(self, due: float) -> None:
        d = self.d
        shopper = d.rng.choice(d.pools.order_shoppers)
        stores = d.rng.sample(self.setup.stores, 2 if d.rng.random() < TWO_STORES_SHARE else 1)
        wanted = [(d.rng.choice(s.variants), 2 if d.rng.random() < TWO_UNITS_SHARE else 1) for s in stores]
        async with d.lock(shopper.email):  # one flow at a time uses a shopper's cart
            placed = await self._place(due, shopper, wanted)
        if placed is not None:
            await d.settle(placed, None, PAY_KINDS)

    async def _place(self, due: float, shopper: Shopper, wanted: list[tuple[str, int]]) -> Placed | None:
        d = self.d
        lines: list[str] = []
        for index, (variant, quantity) in enumerate(wanted):
            added = await d.call(
                "checkout_cart_add",
                "POST",
                f"{API}/cart/items",
                due=due if index == 0 else None,
                ok=(201,),
                headers=shopper.headers,
                json={"variant_id": variant, "quantity": quantity},
            )
            if added is None:
                await self._take_back(shopper, lines)
                return None
            lines += [i["id"] for i in added.json()["items"] if i["variant_id"] == variant]
        quote = await d.call(
            "shipping_options",
            "GET",
            f"{API}/cart/shipping-options",
            check=_has_options,
            params={"country": COUNTRY, "state": STATE},
            headers=shopper.headers,
        )
        if quote is None:
            await self._take_back(shopper, lines)
            return None
        choices, expected = self._choose(quote.json()["groups"])
        orders: list[dict[str, Any]] = []

        def as_quoted(response: httpx.Response) -> str | None:
            orders.append(response.json())
            charged = orders[-1]["shipping_total"]["amount"]
            return None if charged == expected else f"shipping {charged} differs from the quote {expected}"

        await d.call(
            "checkout_order",
            "POST",
            f"{API}/orders",
            ok=(201,),
            check=as_quoted,
            headers={**shopper.headers, "Idempotency-Key": str(uuid.uuid4())},
            json={"shipping_address": ADDRESS, "shipping": choices},
        )
        if not orders:  # refused (409 out of stock): the lines leave the cart
            await self._take_back(shopper, lines)
            return None
        found = Placed(str(orders[-1]["id"]), shopper)
        d.ledger.created[found.id] = found
        return found

    def _choose(self, groups: list[dict[str, Any]]) -> tuple[list[dict[str, str]], int]:
        """A method drawn per store of ours (others ship with their cheapest); what they cost."""
        choices, expected = [], 0
        for group in groups:
            vendor = str(group["vendor"]["id"])
            option = self.d.rng.choice(group["options"]) if vendor in self.stores else group["options"][0]
            if vendor in self.stores:
                choices.append({"vendor_id": vendor, "method_id": str(option["method_id"])})
            expected += int(option["price"]["amount"])
        return choices, expected

    async def _take_back(self, shopper: Shopper, lines: list[str]) -> None:
        for line in lines:
            await self.d.call(
                "checkout_cart_remove",
                "DELETE",
                f"{API}/cart/items/{line}",
                ok=(204,),
                headers=shopper.headers,
            )

    # --- fulfil ------------------------------------------------------------------------------------
    async def fulfil(self, due: float) -> None:
        store = self.d.rng.choice(self.setup.stores)
        async with self.d.lock(f"store:{store.vendor_id}"):  # one flow at a time moves a store's parts
            if self.d.rng.random() < DELIVER_SHARE:
                part = await self._pick(due, store, "shipped")
                if part is not None:
                    await self._deliver(store, part)
                return
            part = await self._pick(due, store, "pending")
            if part is None:
                return
            if self.d.rng.random() < CANCEL_SHARE:
                await self._cancel(store, part)
            else:
                await self._ship(store, part)

    async def _pick(self, due: float, store: Store, status: str) -> dict[str, Any] | None:
        """One of the soak's own parts of ``store`` in ``status`` (the dataset's past orders are
        left alone: their stock is not counted)."""
        listed = await self.d.call(
            "fulfilments_list",
            "GET",
            f"{API}/vendor/fulfilments",
            due=due,
            params={"status": status, "limit": 20},
            headers=store.headers,
        )
        if listed is None:
            return None
        ours = [f for f in listed.json()["items"] if str(f["order_id"]) in self.d.ledger.created]
        if not ours:
            self.market.skipped[f"fulfil ({status})"] += 1
            return None
        return dict(self.d.rng.choice(ours))

    async def _move(
        self,
        kind: str,
        store: Store,
        part: dict[str, Any],
        move: str,
        status: str,
        tracking: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any] | None:
        """``POST /vendor/fulfilments/{id}/<move>``; the part must come back ``status`` (and with
        the ``tracking`` number sent)."""

        def moved(response: httpx.Response) -> str | None:
            got = response.json()
            if got["status"] != status:
                return f"{move} left it {got['status']}"
            return None if tracking in (None, got["tracking_number"]) else "tracking number not kept"

        answer = await self.d.call(
            kind,
            "POST",
            f"{API}/vendor/fulfilments/{part['id']}/{move}",
            check=moved,
            headers=store.headers,
            **kwargs,
        )
        return None if answer is None else dict(answer.json())

    async def _ship(self, store: Store, part: dict[str, Any]) -> None:
        rng = self.d.rng
        if (
            rng.random() < PACK_SHARE
            and await self._move("fulfilment_pack", store, part, "pack", "packed") is None
        ):
            return
        self.market.tracking += 1
        carrier = rng.choice(CARRIERS)
        number = f"{carrier.split()[0].upper()}-SOAK-{self.market.tracking:06d}"
        shipped = await self._move(
            "fulfilment_ship",
            store,
            part,
            "ship",
            "shipped",
            json={"carrier": carrier, "tracking_number": number},
            tracking=number,
        )
        if shipped is None:
            return
        if rng.random() < DELIVER_NOW_SHARE:
            await asyncio.sleep(rng.uniform(0.2, 1.0))
            await self._deliver(store, shipped)

    async def _deliver(self, store: Store, part: dict[str, Any]) -> None:
        delivered = await self._move("fulfilment_deliver", store, part, "deliver", "delivered")
        placed = self.d.ledger.created.get(str(part["order_id"]))
        if delivered is None or placed is None:
            return
        for line in delivered["lines"]:
            if _live_units(line) > 0:
                self.market.returnable.append(
                    Delivered(
                        str(part["order_id"]),
                        placed.shopper,
                        store,
                        str(line["order_line_id"]),
                        _live_units(line),
                        int(line["unit_price"]["amount"]),
                    )
                )

    async def _cancel(self, store: Store, part: dict[str, Any]) -> None:
        live = [line for line in part["lines"] if _live_units(line) > 0]
        body: dict[str, Any] = {"reason": "cannot be sent: damaged in the store"}
        whole = sum(_live_units(line) for line in live) <= 1 or self.d.rng.random() >= PARTIAL_CANCEL_SHARE
        if not whole:
            line = self.d.rng.choice(live)
            body = {
                "lines": [{"order_line_id": str(line["order_line_id"]), "quantity": 1}],
                "reason": "one unit sold out in the store",
            }
        await self._move(
            "fulfilment_cancel",
            store,
            part,
            "cancel",
            "cancelled" if whole else str(part["status"]),
            json=body,
        )

    # --- returns -----------------------------------------------------------------------------------
    async def returns(self, due: float) -> None:
        d, market = self.d, self.market
        if not market.returnable:
            market.skipped["returns"] += 1
            return
        item = market.returnable.pop(d.rng.randrange(len(market.returnable)))
        units = 2 if item.units > 1 and d.rng.random() < TWO_UNITS_SHARE else 1
        if item.units > units:
            market.returnable.append(_with_units(item, item.units - units))
        asked = await d.call(
            "return_request",
            "POST",
            f"{API}/orders/{item.order_id}/returns",
            due=due,
            ok=(201,),
            headers=item.shopper.headers,
            json={
                "lines": [{"order_line_id": item.line_id, "quantity": units, "reason": d.rng.choice(REASONS)}]
            },
        )
        if asked is None:
            return
        path = f"{API}/vendor/returns/{asked.json()['id']}"
        headers = item.store.headers
        if d.rng.random() < REJECT_SHARE:
            note = {"note": "the items came back worn"}
            if (
                await d.call("return_reject", "POST", f"{path}/reject", json=note, headers=headers)
                is not None
            ):
                market.returnable.append(_with_units(item, units))  # they may be asked again
            return
        if await d.call("return_approve", "POST", f"{path}/approve", headers=headers) is None:
            return
        paid = units * item.unit_price

        def refunded(response: httpx.Response) -> str | None:
            refund = (response.json().get("refund") or {}).get("amount")
            return None if refund == paid else f"refund {refund}, paid {paid}"

        restock = d.rng.random() < RESTOCK_SHARE
        await d.call(
            "return_receive",
            "POST",
            f"{path}/receive",
            check=refunded,
            json={"restock": restock},
            headers=headers,
        )


def _with_units(item: Delivered, units: int) -> Delivered:
    return Delivered(item.order_id, item.shopper, item.store, item.line_id, units, item.unit_price)
