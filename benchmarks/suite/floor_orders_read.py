"""What order creation reads and answers, for ``floor_orders.py``: the lines priced from the
catalog with their commission rate, each store's shipping (the same rules as the API's), and the
order's JSON as the API shapes it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from uuid_utils.compat import uuid7

from benchmarks.suite.floor_base import Conn, in_clause, money
from benchmarks.suite.floor_orders_sql import (
    ANCESTORS_SQL,
    METHODS_SQL,
    RULES_SQL,
    VARIANTS_SQL,
)
from core.rules.shipping import Rate, parse_zones, price, serves
from core.settings import Settings
from db.services.shipping.methods import Method, default_method


class Refused(Exception):
    def __init__(self, status_code: int, title: str) -> None:
        super().__init__(title)
        self.status_code, self.title = status_code, title


def _method(row: Any) -> Method:
    rate = Rate(
        zones=parse_zones(row["zones"]),
        price=row["price_amount"],
        per_extra_item=row["per_extra_item_amount"],
        free_above=row["free_above_amount"],
        min_days=row["min_days"],
        max_days=row["max_days"],
    )
    return Method(id=row["id"], name=row["name"], kind=row["kind"], rate=rate, position=row["position"])


async def _rates(
    conn: Conn, settings: Settings, keys: list[tuple[UUID, UUID]], at: datetime
) -> dict[Any, int]:
    """``db.services.ledger.commission.rates``: the vendor's rule, else the nearest category's."""
    chains: dict[UUID, list[tuple[int, UUID]]] = {}
    for start, category, depth in await conn.fetch(ANCESTORS_SQL, list({c for _, c in keys})):
        chains.setdefault(start, []).append((depth, category))
    vendors = list({v for v, _ in keys})
    categories = list({c for chain in chains.values() for _, c in chain})
    sql = RULES_SQL.format(
        vendors=in_clause(3, len(vendors)), categories=in_clause(3 + len(vendors), len(categories))
    )
    by_vendor: dict[UUID, int] = {}
    by_category: dict[UUID, int] = {}
    for vendor_id, category_id, rate in await conn.fetch(sql, at, at, *vendors, *categories):
        if vendor_id is not None:
            by_vendor[vendor_id] = rate
        elif category_id is not None:
            by_category[category_id] = rate
    found = {}
    for vendor_id, category_id in keys:
        rate = by_vendor.get(vendor_id)
        if rate is None:
            rate = next(
                (by_category[c] for _, c in sorted(chains.get(category_id, [])) if c in by_category), None
            )
        found[(vendor_id, category_id)] = rate if rate is not None else settings.commission_default_bps
    return found


async def priced_lines(
    conn: Conn, settings: Settings, wanted: list[tuple[UUID, int]]
) -> list[dict[str, Any]]:
    ids = [v for v, _ in wanted]
    found = {r["id"]: r for r in await conn.fetch(VARIANTS_SQL.format(ids=in_clause(1, len(ids))), *ids)}
    if any(
        v not in found or not found[v]["is_listed"] or found[v]["currency"] != settings.currency for v in ids
    ):
        raise Refused(422, "Some items are not for sale.")
    lines = []
    for variant_id, quantity in wanted:
        r = found[variant_id]
        unit = r["price_amount"] or r["price_amount_1"]
        lines.append(
            {
                "id": uuid7(),
                "variant_id": variant_id,
                "product_id": r["product_id"],
                "vendor_id": r["vendor_id"],
                "title": r["title"],
                "vendor_name": r["name"],
                "sku": r["sku"],
                "size": r["size"],
                "color": r["color"],
                "unit": unit,
                "quantity": quantity,
                "total": unit * quantity,
                "final_sale": r["final_sale"],
                "category_id": r["category_id"],
                # The store's own return window, 0 (no returns) included; the platform's when none.
                "return_window_days": settings.return_window_days
                if r["return_window_days"] is None
                else r["return_window_days"],
            }
        )
    keys = [(line["vendor_id"], line["category_id"]) for line in lines]
    rates = await _rates(conn, settings, keys, datetime.now(UTC))
    for line, key in zip(lines, keys, strict=True):
        line["commission_bps"] = rates[key]
    return lines


async def choose_shipping(
    conn: Conn, settings: Settings, lines: list[dict[str, Any]], address: dict[str, Any]
) -> dict[UUID, tuple[Method, int]]:
    """Each store's cheapest method serving the address (``quotes.choose`` without choices)."""
    parts: dict[UUID, list[int]] = {}
    for line in lines:
        part = parts.setdefault(line["vendor_id"], [0, 0])
        part[0] += line["quantity"]
        part[1] += line["total"]
    vendors = list(parts)
    rows = await conn.fetch(METHODS_SQL.format(ids=in_clause(1, len(vendors))), *vendors)
    fallback = default_method(settings)
    chosen = {}
    for vendor_id, (units, subtotal) in parts.items():
        methods = [_method(r) for r in rows if r["vendor_id"] == vendor_id] or [fallback]
        options = sorted(
            (
                (price(m.rate, units=units, subtotal=subtotal), m.rate.max_days, m.position, m)
                for m in methods
                if serves(m.rate, str(address["country"]), address.get("state"))
            ),
            key=lambda o: o[:3],
        )
        if not options:
            raise Refused(422, "A store cannot ship to this address.")
        chosen[vendor_id] = (options[0][3], options[0][0])
    return chosen


def order_json(
    order: dict[str, Any], lines: list[dict[str, Any]], fulfilments: list[dict[str, Any]]
) -> dict[str, Any]:
    currency = order["currency"]

    def line_out(line: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": line["id"],
            "fulfilment_id": line["fulfilment_id"],
            "variant_id": line["variant_id"],
            "product_id": line["product_id"],
            "vendor": {"id": line["vendor_id"], "name": line["vendor_name"]},
            "title": line["title"],
            "sku": line["sku"],
            "size": line["size"],
            "color": line["color"],
            "quantity": line["quantity"],
            "unit_price": money(line["unit"], currency),
            "line_total": money(line["total"], currency),
            "cancelled_quantity": 0,
            "returned_quantity": 0,
            "final_sale": line["final_sale"],
            "discount": money(0, currency),
        }

    def fulfilment_out(f: dict[str, Any]) -> dict[str, Any]:
        own = [line for line in lines if line["fulfilment_id"] == f["id"]]
        method = f["method"]
        return {
            "id": f["id"],
            "order_id": order["id"],
            "vendor": {"id": f["vendor_id"], "name": own[0]["vendor_name"] if own else ""},
            "status": "pending",
            "lines": [
                {
                    "order_line_id": line["id"],
                    "variant_id": line["variant_id"],
                    "product_id": line["product_id"],
                    "title": line["title"],
                    "sku": line["sku"],
                    "size": line["size"],
                    "color": line["color"],
                    "quantity": line["quantity"],
                    "cancelled_quantity": 0,
                    "returned_quantity": 0,
                    "unit_price": money(line["unit"], currency),
                    "line_total": money(line["total"], currency),
                    "final_sale": line["final_sale"],
                }
                for line in own
            ],
            "shipping_method": {
                "id": method["id"],
                "name": method["name"],
                "kind": method["kind"],
                "days": [method["min_days"], method["max_days"]],
            },
            "shipping": money(f["amount"], currency),
            "carrier": None,
            "tracking_number": None,
            "tracking_url": None,
            "return_window_days": f["window"],
            "packed_at": None,
            "shipped_at": None,
            "delivered_at": None,
            "cancelled_at": None,
            "cancel_reason": None,
            "return_until": None,
        }

    return {
        "id": order["id"],
        "status": "pending_payment",
        "lines": [line_out(line) for line in lines],
        "item_count": order["item_count"],
        "subtotal": money(order["subtotal"], currency),
        "shipping": money(order["shipping"], currency),
        "shipping_total": money(order["shipping"], currency),
        "discount_total": money(0, currency),
        "total": money(order["subtotal"] + order["shipping"], currency),
        "fulfilments": [fulfilment_out(f) for f in fulfilments],
        "shipping_address": order["address"],
        "expires_at": order["expires_at"],
        "paid_at": None,
        "created_at": order["created_at"],
        "payments": None,
    }
