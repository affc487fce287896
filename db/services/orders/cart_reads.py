"""The shopper's cart on the raw read path: GET /cart in one statement.

Like the product page (``Database.fetch_row``): the cart's lines priced from the catalog now, the
code applied to the cart with how often this shopper used it, and (for a category code) each
product's category chain, in one statement on the primary (the caller's own cart, just written to
by PATCH/POST: never the replica). The code is then priced by the same rules as
db.services.vouchers.cart.discount_of.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import msgspec

from core.rules.vouchers import Terms
from db.engine import Database
from db.services.orders.cart import CartLine
from db.services.vouchers.cart import CartDiscount, cart_discount

# $1 the caller, $2 the shop's currency. One row always: NULL voucher columns without a code.
CART_SQL = """
WITH RECURSIVE lines AS (
    SELECT ci.id, ci.variant_id, p.id AS product_id, p.title, v.sku, v.size, v.color, p.thumbnail_key,
           ve.id AS vendor_id, ve.name AS vendor_name, ci.quantity,
           coalesce(v.price_amount, p.price_amount) AS unit_price, p.currency, v.stock,
           p.is_listed AS listed
    FROM cart_items ci
    JOIN variants v ON v.id = ci.variant_id
    JOIN products p ON p.id = v.product_id
    JOIN vendors ve ON ve.id = p.vendor_id
    WHERE ci.user_id = $1
),
code AS (
    SELECT vo.* FROM cart_vouchers cv JOIN vouchers vo ON vo.id = cv.voucher_id WHERE cv.user_id = $1
),
up(product_id, id, parent_id) AS (
    SELECT p.id, c.id, c.parent_id
    FROM products p JOIN categories c ON c.id = p.category_id
    WHERE p.id IN (SELECT product_id FROM lines)
      AND EXISTS (SELECT 1 FROM code WHERE code.scope = 'category' AND code.active AND code.currency = $2)
    UNION ALL
    SELECT up.product_id, c.id, c.parent_id FROM categories c JOIN up ON c.id = up.parent_id
)
SELECT (SELECT coalesce(jsonb_agg(to_jsonb(lines) ORDER BY lines.id), '[]'::jsonb) FROM lines) AS lines,
       code.code, code.active AND code.currency = $2 AS usable, code.kind, code.value, code.scope,
       code.scope_ids, code.vendor_id, code.min_subtotal, code.max_discount, code.starts_at,
       code.ends_at, code.per_customer_limit, code.total_cap, code.redeemed_count,
       (SELECT count(*) FROM voucher_redemptions r WHERE r.voucher_id = code.id AND r.user_id = $1) AS used,
       (SELECT coalesce(jsonb_agg(jsonb_build_array(up.product_id, up.id)), '[]'::jsonb) FROM up) AS chains
FROM (SELECT 1) one LEFT JOIN code ON true
"""

_TERMS = (
    "kind",
    "value",
    "scope",
    "vendor_id",
    "min_subtotal",
    "max_discount",
    "starts_at",
    "ends_at",
    "per_customer_limit",
    "total_cap",
)


@dataclass(frozen=True, slots=True)
class CartRead:
    lines: list[CartLine]
    voucher: CartDiscount | None


async def own_cart(database: Database, user_id: UUID, currency: str) -> CartRead:
    """The caller's cart, oldest line first, priced from the catalog, with what its code takes off
    (None when the cart has no code)."""
    row = await database.fetch_row(CART_SQL, user_id, currency)
    lines = msgspec.convert(row["lines"], list[CartLine]) if row is not None else []
    if row is None or row["code"] is None:  # the statement always answers one row
        return CartRead(lines=lines, voucher=None)
    chains: dict[UUID, set[UUID]] = {}
    for product_id, category_id in row["chains"]:
        chains.setdefault(UUID(product_id), set()).add(UUID(category_id))
    terms = Terms(scope_ids=frozenset(row["scope_ids"]), **{name: row[name] for name in _TERMS})
    voucher = cart_discount(
        terms,
        code=row["code"],
        usable=row["usable"],
        redeemed=row["redeemed_count"],
        used=row["used"],
        lines=lines,
        chains={key: frozenset(value) for key, value in chains.items()},
    )
    return CartRead(lines=lines, voucher=voucher)
