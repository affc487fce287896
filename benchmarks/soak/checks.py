"""Before the load: the pools the flows draw from. After it: the drain, then the facts the
invariants are judged on (``report.evaluate_invariants``), read from the working copy.

Orders of the soak are the orders created after the load's start time (read from PostgreSQL
just before it); the dataset's order history is older and holds no reservations. The variants
the soak sells get their stock set here, so ``initial`` is known exactly.

The drain: once the load is over and every flow has finished, the workers finish what was
accepted. Facts are read every 2 s until nothing is left to do (no measurement pending or
processing, every payment event processed, every accepted webhook's order paid, every order and
shipment mail written, the outbox empty, no refund waiting for the provider) or ``drain_seconds``
pass; the invariants are then judged on the last reading, so work still undone after the drain
fails them.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import numpy as np

from benchmarks.measurement_flow import PhotoPair
from benchmarks.search_quality.load import Request
from benchmarks.soak import driver as drv
from benchmarks.soak import report as rp
from benchmarks.soak.report import PIPELINE_REFUSALS
from benchmarks.suite import people
from benchmarks.suite import scenarios as sc
from db.services.ledger.checks import CHECKS

# Per variant sold: its stock and reserved units; units of the soak's orders that were paid (sold),
# how many of those their stores cancelled, and units of received returns put back on sale.
STOCK = """
SELECT v.id::text AS variant, v.stock, v.reserved, COALESCE(s.sold, 0) AS sold,
       COALESCE(s.cancelled, 0) AS cancelled, COALESCE(r.restocked, 0) AS restocked
FROM variants v
LEFT JOIN (
    SELECT ol.variant_id, sum(ol.quantity) AS sold, sum(ol.cancelled_quantity) AS cancelled
    FROM order_lines ol JOIN orders o ON o.id = ol.order_id
    WHERE o.created_at >= $2 AND o.paid_at IS NOT NULL GROUP BY ol.variant_id
) s ON s.variant_id = v.id
LEFT JOIN (
    SELECT ol.variant_id, sum(rl.quantity) AS restocked
    FROM return_lines rl JOIN returns r ON r.id = rl.return_id
    JOIN order_lines ol ON ol.id = rl.order_line_id JOIN orders o ON o.id = ol.order_id
    WHERE o.created_at >= $2 AND r.restocked AND r.status IN ('received', 'refunded') GROUP BY ol.variant_id
) r ON r.variant_id = v.id
WHERE v.id = ANY($1::uuid[]) ORDER BY v.id
"""
PAYMENTS = """
SELECT p.reference, p.status, p.amount, p.refunded_amount, COALESCE(sum(r.amount), 0) AS refunds,
       count(r.id) AS refund_rows, count(r.id) FILTER (WHERE r.status = 'pending') AS pending
FROM payments p JOIN orders o ON o.id = p.order_id LEFT JOIN refunds r ON r.payment_id = p.id
WHERE o.created_at >= $1 GROUP BY p.id
"""
ORDER_PARTS = """
SELECT o.id::text AS order, o.status, array_agg(f.status ORDER BY f.id) AS parts,
       count(f.id) FILTER (
           WHERE f.status IN ('shipped', 'delivered') AND COALESCE(btrim(f.tracking_number), '') = ''
       ) AS untracked
FROM orders o JOIN fulfilments f ON f.order_id = o.id
WHERE o.created_at >= $1 GROUP BY o.id
"""
RETURN_LINES = """
SELECT r.id::text AS return_id, r.status, r.restocked, r.refund_amount,
       (SELECT COALESCE(sum(x.amount), 0) FROM refunds x WHERE x.return_id = r.id) AS refunds,
       rl.quantity AS units, ol.unit_price_amount AS unit_price, ol.quantity AS line_quantity,
       ol.discount_amount AS line_discount
FROM returns r JOIN return_lines rl ON rl.return_id = r.id JOIN order_lines ol ON ol.id = rl.order_line_id
JOIN orders o ON o.id = r.order_id
WHERE o.created_at >= $1
"""


async def build_pools(
    conn: asyncpg.Connection,
    client: httpx.AsyncClient,
    headers: list[dict[str, str]],
    photos: list[PhotoPair],
    seed: int,
) -> tuple[drv.Pools, dict[str, int]]:
    """The request pools, the shoppers (the last sixth measure, the rest shop) and the variants
    sold, whose stock is set here; returns the pools and each sold variant's initial stock."""
    rng = np.random.default_rng([seed, 23])
    shoppers = [drv.Shopper(people.shopper_email(i), h) for i, h in enumerate(headers)]
    measuring = max(1, len(shoppers) // 6)
    detail, _ = await sc.product_detail(conn, rng)
    fit = {s.name: s for s in await sc.fit(conn, rng, [s.headers for s in shoppers[:-measuring]])}
    requests: dict[str, list[Request]] = {
        "detail": detail.requests,
        "listing": (await sc.listing(conn, rng, client)).requests,
        "search": (await sc.search(conn, rng)).requests,
        "similar": (await sc.similar(conn, rng, 10)).requests,
        "fit_products": fit["fit_products"].requests,
        "size_advice": fit["product_fit"].requests,
    }
    ids = [
        str(r[0])
        for r in await conn.fetch(
            "SELECT v.id FROM variants v JOIN products p ON p.id = v.product_id"
            " WHERE p.is_listed AND v.reserved = 0 ORDER BY v.id"
        )
    ]
    chosen = [ids[i] for i in rng.permutation(len(ids))[: drv.ORDER_VARIANTS]]
    hot, cold = chosen[: drv.HOT_VARIANTS], chosen[drv.HOT_VARIANTS :]
    initial = dict.fromkeys(hot, drv.HOT_STOCK) | dict.fromkeys(cold, drv.COLD_STOCK)
    await set_stock(conn, initial)
    pools = drv.Pools(requests, shoppers[:-measuring], shoppers[-measuring:], hot, cold, photos)
    return pools, initial


async def set_stock(conn: asyncpg.Connection, initial: dict[str, int]) -> None:
    """Give each variant of ``initial`` that stock (its product in stock), in one transaction."""
    async with conn.transaction():
        for variant, stock in initial.items():
            await conn.execute("UPDATE variants SET stock = $2 WHERE id = $1::uuid", variant, stock)
        await conn.execute(
            "UPDATE products p SET in_stock = true WHERE p.id IN"
            " (SELECT product_id FROM variants WHERE id = ANY($1::uuid[]))",
            list(initial),
        )


def _mail_files(mail_dir: Path) -> set[str]:
    if not mail_dir.exists():
        return set()
    return {p.name for pattern in ("order-*.eml", "fulfilment-*-shipped.eml") for p in mail_dir.glob(pattern)}


async def gather_facts(
    conn: asyncpg.Connection, ledger: drv.Ledger, initial: dict[str, int], since: datetime, mail_dir: Path
) -> dict[str, Any]:
    """Every figure ``report.evaluate_invariants`` needs (its docstring lists them)."""
    stock = [
        dict(r) | {"initial": initial[r["variant"]]} for r in await conn.fetch(STOCK, list(initial), since)
    ]
    negative = await conn.fetchval("SELECT count(*) FROM variants WHERE stock < 0 OR reserved < 0")
    differing = await conn.fetchval(
        """
        WITH held AS (
            SELECT ol.variant_id, sum(ol.quantity) AS units FROM order_lines ol
            JOIN orders o ON o.id = ol.order_id WHERE o.status = 'pending_payment' GROUP BY ol.variant_id
        )
        SELECT count(*) FROM variants v LEFT JOIN held h ON h.variant_id = v.id
        WHERE v.reserved <> COALESCE(h.units, 0)
        """
    )
    reserved_units = await conn.fetchval("SELECT COALESCE(sum(reserved), 0) FROM variants")
    unpaid_units = await conn.fetchval(
        "SELECT COALESCE(sum(item_count), 0) FROM orders WHERE status = 'pending_payment'"
    )
    orders = await conn.fetch(
        """
        SELECT o.id::text AS id, o.status, o.paid_at IS NOT NULL AS paid,
               count(p.id) FILTER (
                   WHERE p.status IN ('succeeded', 'refund_pending', 'refunded')
               ) AS succeeded,
               count(p.id) FILTER (WHERE p.status = 'flagged') AS problems
        FROM orders o LEFT JOIN payments p ON p.order_id = o.id
        WHERE o.created_at >= $1 GROUP BY o.id, o.status
        """,
        since,
    )
    in_db = {r["id"] for r in orders}
    paid = {r["id"] for r in orders if r["paid"]}
    events_unprocessed = await conn.fetchval("SELECT count(*) FROM payment_events WHERE processed_at IS NULL")
    measured = await conn.fetch(
        "SELECT status, error_code FROM measurements WHERE id = ANY($1::uuid[])", list(ledger.measurements)
    )
    unfinished = await conn.fetchval(
        "SELECT count(*) FROM measurements WHERE status IN ('pending', 'processing')"
    )
    shipped = await conn.fetch(
        "SELECT f.id::text FROM fulfilments f JOIN orders o ON o.id = f.order_id"
        " WHERE o.created_at >= $1 AND f.status IN ('shipped', 'delivered') ORDER BY f.id",
        since,
    )
    expected_mails = [f"order-{o}-confirmation.eml" for o in sorted(in_db)]
    expected_mails += [f"order-{o}-status-paid.eml" for o in sorted(paid)]
    expected_mails += [f"fulfilment-{r[0]}-shipped.eml" for r in shipped]
    written = await asyncio.to_thread(_mail_files, mail_dir)
    missing = [name for name in expected_mails if name not in written]
    undispatched = await conn.fetchval("SELECT count(*) FROM outbox_messages WHERE dispatched_at IS NULL")
    return {
        "stock": stock,
        "negative_stock_or_reserved": negative,
        "reserved": {
            "variants_differing": differing,
            "reserved_units": reserved_units,
            "unpaid_units": unpaid_units,
        },
        "orders": {
            "created": len(ledger.created),
            "in_database": len(in_db),
            "differing": len(in_db ^ set(ledger.created)),
            "retries": ledger.retries,
            "retries_same_order": ledger.retries_same_order,
            "cancelled": len(ledger.cancelled),
            "statuses": {
                s: sum(1 for r in orders if r["status"] == s) for s in sorted({r["status"] for r in orders})
            },
        },
        "payments": {
            "webhooks_queued": len(ledger.webhooks_queued),
            "paid_orders": len(paid),
            "paid_without_exactly_one_success": sum(1 for r in orders if r["paid"] and r["succeeded"] != 1),
            "unpaid_with_a_success": sum(1 for r in orders if not r["paid"] and r["succeeded"] > 0),
            "problem_payments": sum(r["problems"] for r in orders),
            "webhooked_not_paid": len(ledger.webhooks_queued - paid),
            "paid_not_webhooked": len(paid - ledger.webhooks_queued),
            "events_unprocessed": events_unprocessed,
        },
        **await marketplace_facts(conn, since),
        "measurements": {
            "accepted": len(ledger.measurements),
            "ready": sum(1 for r in measured if r["status"] == "ready"),
            "refused": sum(
                1 for r in measured if r["status"] == "failed" and r["error_code"] in PIPELINE_REFUSALS
            ),
            "failed_otherwise": sum(
                1 for r in measured if r["status"] == "failed" and r["error_code"] not in PIPELINE_REFUSALS
            ),
            "failure_codes": sorted({str(r["error_code"]) for r in measured if r["status"] == "failed"}),
            "unfinished": unfinished,
        },
        "mails": {
            "expected": len(expected_mails),
            "written": len(expected_mails) - len(missing),
            "missing": missing,
        },
        "outbox": {"undispatched": undispatched},
        "ledger": {"breaches": await ledger_breaches(conn)},
    }


async def ledger_breaches(conn: asyncpg.Connection) -> list[str]:
    """Every breach of the ledger's invariants (the queries of ``just ledger-check``)."""
    return [
        f"{name}: " + ", ".join(str(v) for v in row)
        for name, sql in CHECKS.items()
        for row in await conn.fetch(sql)
    ]


async def marketplace_facts(conn: asyncpg.Connection, since: datetime) -> dict[str, Any]:
    """Refunds per payment, each order's status against its fulfilments', returns and their
    refunds, for the soak's orders (``report.refund_summary``, ``fulfilment_summary``,
    ``return_summary``)."""
    return {
        "refunds": rp.refund_summary(dict(r) for r in await conn.fetch(PAYMENTS, since)),
        "fulfilments": rp.fulfilment_summary(
            dict(r) | {"parts": list(r["parts"])} for r in await conn.fetch(ORDER_PARTS, since)
        ),
        "returns": rp.return_summary(dict(r) for r in await conn.fetch(RETURN_LINES, since)),
    }


def settled(facts: dict[str, Any]) -> bool:
    """Nothing accepted is still waiting for a worker."""
    return (
        facts["measurements"]["unfinished"] == 0
        and facts["payments"]["events_unprocessed"] == 0
        and facts["payments"]["webhooked_not_paid"] == 0
        and not facts["mails"]["missing"]
        and facts["outbox"]["undispatched"] == 0
        and facts["refunds"]["pending"] == 0
        and facts["refunds"]["payments_refund_pending"] == 0
        and facts["returns"]["awaiting_refund"] == 0
    )


async def drain(
    conn: asyncpg.Connection,
    ledger: drv.Ledger,
    initial: dict[str, int],
    since: datetime,
    mail_dir: Path,
    seconds: float,
) -> tuple[dict[str, Any], float]:
    """Facts once the workers have finished what was accepted (or ``seconds`` passed), and how
    long that took."""
    started = time.monotonic()
    while True:
        facts = await gather_facts(conn, ledger, initial, since, mail_dir)
        if settled(facts) or time.monotonic() - started > seconds:
            return facts, round(time.monotonic() - started, 1)
        await asyncio.sleep(2.0)
