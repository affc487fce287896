"""The shopper's own orders on the raw read path: one statement per request.

GET /orders and GET /orders/{id} run on the driver's connection straight from the pool, like the
product page (``Database.fetch``/``fetch_row``): each order comes back as one jsonb document in
the shape of the response (its lines, fulfilments with their lines, and payments gathered by
``jsonb_agg`` subqueries), so a page of orders is one statement and one order is one statement.
These are the caller's own data, always read on the primary (never the replica: an order just
placed or paid must show at once), and ownership is in the SQL (``o.user_id``): someone else's
order is not found, exactly like a missing one.

Timestamps inside the documents are written as UTC RFC 3339 text (``_ts``) whatever the server's
TimeZone, so they decode to the same instants the ORM path returns.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from db.engine import Database
from db.pagination import Page, cursor_id, encode_cursor
from db.services.orders.errors import OrderNotFound


def _ts(column: str) -> str:
    return f"""to_char(({column}) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""


def _money(amount: str, currency: str) -> str:
    return f"jsonb_build_object('amount', {amount}, 'currency', {currency})"


_LINE_FIELDS = """
    'variant_id', l.variant_id, 'product_id', l.product_id, 'title', l.title, 'sku', l.sku,
    'size', l.size, 'color', l.color, 'quantity', l.quantity,
    'cancelled_quantity', l.cancelled_quantity, 'returned_quantity', l.returned_quantity,
    'final_sale', l.final_sale"""

_ORDER_LINES = f"""(SELECT coalesce(jsonb_agg(jsonb_build_object(
    'id', l.id, 'fulfilment_id', l.fulfilment_id,
    'vendor', jsonb_build_object('id', l.vendor_id, 'name', l.vendor_name),
    'unit_price', {_money("l.unit_price_amount", "o.currency")},
    'line_total', {_money("l.line_total_amount", "o.currency")},
    'discount', {_money("l.discount_amount", "o.currency")}, {_LINE_FIELDS}
) ORDER BY l.id), '[]'::jsonb) FROM order_lines l WHERE l.order_id = o.id)"""  # noqa: S608  # constant fragments, no input

_FULFILMENT_LINES = f"""(SELECT coalesce(jsonb_agg(jsonb_build_object(
    'order_line_id', l.id,
    'unit_price', {_money("l.unit_price_amount", "f.currency")},
    'line_total', {_money("l.line_total_amount", "f.currency")}, {_LINE_FIELDS}
) ORDER BY l.id), '[]'::jsonb) FROM order_lines l WHERE l.fulfilment_id = f.id)"""  # noqa: S608  # constant fragments, no input

# The vendor's name as the order's lines recorded it (its first line), as fulfilment_out names it.
_VENDOR_NAME = """coalesce((SELECT l.vendor_name FROM order_lines l
    WHERE l.order_id = f.order_id AND l.vendor_id = f.vendor_id ORDER BY l.id LIMIT 1), '')"""

_FULFILMENTS = f"""(SELECT coalesce(jsonb_agg(jsonb_build_object(
    'id', f.id, 'order_id', f.order_id, 'status', f.status,
    'vendor', jsonb_build_object('id', f.vendor_id, 'name', {_VENDOR_NAME}),
    'lines', {_FULFILMENT_LINES},
    'shipping_method', jsonb_build_object(
        'id', f.shipping_method -> 'id',
        'name', coalesce(f.shipping_method ->> 'name', ''),
        'kind', coalesce(f.shipping_method ->> 'kind', 'standard'),
        'days', jsonb_build_array(coalesce((f.shipping_method ->> 'min_days')::int, 0),
                                  coalesce((f.shipping_method ->> 'max_days')::int, 0))),
    'shipping', {_money("f.shipping_amount", "f.currency")},
    'carrier', f.carrier, 'tracking_number', f.tracking_number, 'tracking_url', f.tracking_url,
    'return_window_days', f.return_window_days,
    'packed_at', {_ts("f.packed_at")}, 'shipped_at', {_ts("f.shipped_at")},
    'delivered_at', {_ts("f.delivered_at")}, 'cancelled_at', {_ts("f.cancelled_at")},
    'cancel_reason', f.cancel_reason,
    'return_until', {_ts("f.delivered_at + f.return_window_days * interval '24 hours'")}
) ORDER BY f.id), '[]'::jsonb) FROM fulfilments f WHERE f.order_id = o.id)"""  # noqa: S608  # constant fragments, no input

_PAYMENTS = f"""(SELECT coalesce(jsonb_agg(jsonb_build_object(
    'provider', p.provider, 'reference', p.reference, 'status', p.status,
    'amount', {_money("p.amount", "p.currency")}, 'created_at', {_ts("p.created_at")}
) ORDER BY p.id), '[]'::jsonb) FROM payments p WHERE p.order_id = o.id)"""  # noqa: S608  # constant fragments, no input


def _order_document(payments: bool) -> str:
    return f"""jsonb_build_object(
    'id', o.id, 'status', o.status, 'lines', {_ORDER_LINES}, 'item_count', o.item_count,
    'subtotal', {_money("o.subtotal_amount", "o.currency")},
    'shipping', {_money("o.shipping_amount", "o.currency")},
    'shipping_total', {_money("o.shipping_amount", "o.currency")},
    'discount_total', {_money("o.discount_amount", "o.currency")},
    'total', {_money("o.total_amount", "o.currency")},
    'fulfilments', {_FULFILMENTS}, 'shipping_address', o.shipping_address,
    'expires_at', {_ts("o.expires_at")}, 'paid_at', {_ts("o.paid_at")},
    'created_at', {_ts("o.created_at")}, 'payments', {_PAYMENTS if payments else "NULL::jsonb"})"""


# $1 the caller, $2 the order: one row, or none for a missing order or someone else's.
ORDER_SQL = (
    f"SELECT {_order_document(payments=True)} AS body "  # noqa: S608  # constant fragments, no input
    "FROM orders o WHERE o.id = $2 AND o.user_id = $1"
)


def _page_sql(status: bool, cursor: bool) -> str:
    where = ["o.user_id = $1"]
    if status:
        where.append(f"o.status = ${len(where) + 1}")
    if cursor:
        where.append(f"o.id < ${len(where) + 1}")
    return (
        f"SELECT o.id, {_order_document(payments=False)} AS body FROM orders o "  # noqa: S608  # constants
        f"WHERE {' AND '.join(where)} ORDER BY o.id DESC LIMIT ${len(where) + 1}"
    )


# One text per shape (with or without the status filter, first page or after a cursor): the
# caller's orders newest first (UUIDv7 ids are time-ordered), one more than asked for.
PAGE_SQL = {
    (status, cursor): _page_sql(status, cursor) for status in (False, True) for cursor in (False, True)
}


async def own_order(database: Database, user_id: UUID, order_id: UUID) -> dict[str, Any]:
    """The caller's order as the response's document. Raises OrderNotFound for a missing order or
    someone else's (indistinguishably)."""
    row = await database.fetch_row(ORDER_SQL, user_id, order_id)
    if row is None:
        raise OrderNotFound()
    body: dict[str, Any] = row["body"]
    return body


async def own_orders(
    database: Database, user_id: UUID, *, limit: int, cursor: str | None, status: str | None = None
) -> Page[dict[str, Any]]:
    """A page of the caller's orders (without payments), newest first. Raises InvalidInput (422)
    for a cursor this API did not make."""
    args: list[Any] = [user_id]
    if status is not None:
        args.append(status)
    if cursor is not None:
        args.append(cursor_id(cursor))
    rows = await database.fetch(PAGE_SQL[(status is not None, cursor is not None)], *args, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor([str(rows[-1]["id"])]) if more and rows else None
    return Page(items=[row["body"] for row in rows], next_cursor=next_cursor)
