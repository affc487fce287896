"""The floor of order creation (``POST /orders`` with an ``Idempotency-Key``): the API's
statements, in its order, in one transaction on a raw asyncpg connection.

Captured once from a statement log of one request (``before_cursor_execute`` on the API's
engine) and written here as that text: the key's advisory lock and lookup, the variants with
their products and stores (whose categories and return windows serve later steps), the
categories' ancestors and the commission rules in force, the stores' shipping methods, the
conditional stock decrement per variant (the oversell guard: ``stock >= quantity``, in variant-id
order) and the listing's in-stock refresh, then the order, its fulfilment per store, its audit
row, its lines, the key with the answer given, and the outbox row of ``OrderPlaced`` (its fan-out
job). After the commit, the API sends that job to the broker and marks the row sent; the floor
runs the same marking UPDATE but sends nothing (its orders get no confirmation mail, and the
workers run nothing for them), so the outbox sweep does not send it during the run either.

Served: ``items`` with ``shipping_address`` (the benchmark's body). Not served: a cart order,
vouchers, chosen shipping methods. Prices, shipping and commission are computed by the same
rules (``core.rules.shipping``, the platform's default method) as the API's.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from litestar import Request, Response, post
from litestar.datastructures import State
from uuid_utils.compat import uuid7

from benchmarks.suite.floor_base import DECODE, ENCODE, Conn, caller, pool_of, problem
from benchmarks.suite.floor_orders_read import Refused, choose_shipping, order_json, priced_lines
from benchmarks.suite.floor_orders_sql import (
    INSERT_EVENT_SQL,
    INSERT_FULFILMENT_SQL,
    INSERT_KEY_SQL,
    INSERT_LINE_SQL,
    INSERT_ORDER_SQL,
    INSERT_OUTBOX_SQL,
    KEY_SQL,
    MARK_SENT_SQL,
    REFRESH_IN_STOCK_SQL,
    RESERVE_SQL,
    TRY_LOCK_SQL,
)
from core.settings import Settings
from core.task_names import FAN_OUT_ORDER_PLACED

ADDRESS_FIELDS = ("full_name", "line1", "city", "country", "line2", "state", "postal_code", "phone")


async def _place(
    conn: Conn, settings: Settings, user_id: UUID, key: str, body: dict[str, Any]
) -> tuple[int, Any, list[UUID]]:
    """(status, answer, outbox job ids) for one request; raises Refused for a 409 or 422."""
    request_hash = hashlib.sha256(ENCODE.encode(body)).hexdigest()
    if not await conn.fetchval(TRY_LOCK_SQL, f"orders:{user_id}:{key}"):
        raise Refused(409, "A request with this Idempotency-Key is in progress; retry shortly.")
    stored = await conn.fetchrow(KEY_SQL, user_id, key)
    if stored is not None and stored["expires_at"] > datetime.now(UTC):
        return 200, stored["response_body"], []
    wanted = [(UUID(i["variant_id"]), int(i["quantity"])) for i in body["items"]]
    address = dict.fromkeys(ADDRESS_FIELDS) | body["shipping_address"]
    lines = await priced_lines(conn, settings, wanted)
    chosen = await choose_shipping(conn, settings, lines, address)
    await _reserve(conn, wanted)
    now = datetime.now(UTC)
    order = {
        "id": uuid7(),
        "currency": settings.currency,
        "subtotal": sum(line["total"] for line in lines),
        "shipping": sum(amount for _, amount in chosen.values()),
        "item_count": sum(line["quantity"] for line in lines),
        "address": address,
        "expires_at": now + timedelta(minutes=settings.order_reservation_minutes),
        "created_at": now,
    }
    fulfilments = await _write_order(conn, user_id, order, chosen, lines)
    request_id = uuid.uuid4().hex
    event = (uuid7(), order["id"], None, None, "pending_payment", "buyer", user_id, None, request_id)
    await conn.execute(INSERT_EVENT_SQL, *event, now, now)
    by_vendor = {f["vendor_id"]: f["id"] for f in fulfilments}
    for line in lines:
        line["fulfilment_id"] = by_vendor[line["vendor_id"]]
        await conn.execute(INSERT_LINE_SQL, *_line_values(order["id"], line), now, now)
    answer = order_json(order, lines, fulfilments)
    expires = now + timedelta(hours=settings.idempotency_key_ttl_hours)
    stored_answer = (201, ENCODE.encode(answer).decode(), expires)
    await conn.execute(
        INSERT_KEY_SQL, uuid7(), user_id, key, request_hash, order["id"], *stored_answer, now, now
    )
    return 201, answer, await _write_outbox(conn, order["id"], request_id, now)


async def _reserve(conn: Conn, wanted: list[tuple[UUID, int]]) -> None:
    """The oversell guard, variant by variant in id order, then the listing's in-stock flags."""
    products = set()
    for variant_id, quantity in sorted(wanted, key=lambda w: w[0]):
        product_id = await conn.fetchval(RESERVE_SQL, quantity, variant_id)
        if product_id is None:
            raise Refused(409, "Some items are out of stock.")
        products.add(product_id)
    await conn.execute(REFRESH_IN_STOCK_SQL, sorted(products))


async def _write_order(
    conn: Conn, user_id: UUID, order: dict[str, Any], chosen: Any, lines: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The order row, then one fulfilment per store with its return window."""
    now, total = order["created_at"], order["subtotal"] + order["shipping"]
    amounts = (order["subtotal"], order["shipping"], 0, None, total, order["item_count"])
    address = ENCODE.encode(order["address"]).decode()
    head = (order["id"], user_id, "pending_payment", order["currency"])
    await conn.execute(INSERT_ORDER_SQL, *head, *amounts, address, order["expires_at"], None, None, now, now)
    windows = {line["vendor_id"]: line["return_window_days"] for line in lines}
    fulfilments = []
    for vendor_id, (method, amount) in chosen.items():
        window = windows[vendor_id]
        f = {
            "id": uuid7(),
            "vendor_id": vendor_id,
            "method": method.snapshot(),
            "amount": amount,
            "window": window,
        }
        snapshot = ENCODE.encode(f["method"]).decode()
        row = (f["id"], order["id"], vendor_id, "pending", order["currency"], snapshot, amount, window)
        await conn.execute(INSERT_FULFILMENT_SQL, *row, *[None] * 8, now, now)
        fulfilments.append(f)
    return fulfilments


def _line_values(order_id: UUID, line: dict[str, Any]) -> tuple[Any, ...]:
    return (
        *(
            line["id"],
            order_id,
            line["variant_id"],
            line["product_id"],
            line["vendor_id"],
            line["fulfilment_id"],
        ),
        *(line["title"], line["vendor_name"], line["sku"], line["size"], line["color"]),
        *(line["unit"], line["quantity"], line["total"], 0, line["commission_bps"], line["final_sale"], 0, 0),
    )


async def _write_outbox(conn: Conn, order_id: UUID, request_id: str, now: datetime) -> list[UUID]:
    """The one job of ``OrderPlaced``, the fan-out (``db.services.orders.subscribers``)."""
    job_id = uuid7()
    labels = ENCODE.encode({"request_id": request_id}).decode()
    args = ENCODE.encode([str(order_id)]).decode()
    row = (uuid7(), job_id, FAN_OUT_ORDER_PLACED, args, "{}", labels, None, 0, None, now, now)
    await conn.execute(INSERT_OUTBOX_SQL, *row)
    return [job_id]


@post("/api/v1/orders", status_code=201)
async def place_order(request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    user_id = caller(request.headers.get("authorization"))
    if user_id is None:
        return problem(401, "Authentication required.")
    key = request.headers.get("idempotency-key")
    if not key:
        return problem(422, "An Idempotency-Key header is required.")
    body = DECODE.decode(await request.body())
    if not body.get("items") or any(body.get(k) is not None for k in ("shipping", "voucher_code")):
        return problem(422, "The floor serves orders of items without shipping choices or vouchers only.")
    async with pool_of(state).acquire() as conn:
        try:
            async with conn.transaction():
                status_code, answer, job_ids = await _place(conn, state.settings, user_id, key, body)
        except Refused as refused:
            return problem(refused.status_code, refused.title)
        if job_ids:
            sent = datetime.now(UTC)
            await conn.execute(MARK_SENT_SQL, sent, sent, *job_ids)
    encoded = answer if isinstance(answer, bytes) else ENCODE.encode(answer)
    return Response(encoded, status_code=status_code, media_type="application/json")
