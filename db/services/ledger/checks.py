"""The ledger's invariants, checked against itself and against the orders, payments and refunds
it records (``just ledger-check``; the chaos and soak runs call it at the end).

1. Every transaction's entries sum to zero (the database refuses otherwise; checked anyway).
2. No vendor's available balance is negative.
3. Every captured payment was posted once, for its amount; every fee as the provider reported it.
4. For every order: what the shopper paid, less refunds asked, equals the vendors' earnings plus
   the platform's commission, less discounts the platform paid for.
5. Every refund was posted once when asked, and once more when the provider confirmed it.
6. Every payout's amount left its vendor's available balance exactly once (and came back once
   if it failed or was reversed); ``payouts_in_transit`` holds exactly the open payouts.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class Breach:
    invariant: str
    detail: str


CHECKS: dict[str, str] = {
    "transactions balance": """
        SELECT transaction_id::text, sum(amount) FROM ledger_entries
        GROUP BY transaction_id HAVING sum(amount) <> 0
    """,
    "no negative available balance": """
        SELECT a.code, -sum(e.amount) FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id
        WHERE a.code LIKE 'vendor_available:%' GROUP BY a.code HAVING -sum(e.amount) < 0
    """,
    "captured payments posted for their amount": """
        SELECT p.reference, p.amount, coalesce(sum(e.amount), 0) FROM payments p
        JOIN ledger_transactions t ON t.payment_id = p.id AND t.kind = 'payment_captured'
        LEFT JOIN ledger_entries e ON e.transaction_id = t.id
            AND e.account_id IN (SELECT id FROM ledger_accounts WHERE code = 'provider_clearing')
        GROUP BY p.reference, p.amount HAVING coalesce(sum(e.amount), 0) <> p.amount
        UNION ALL
        SELECT p.reference, p.amount, 0 FROM payments p JOIN orders o ON o.id = p.order_id
        WHERE p.status IN ('succeeded', 'refund_pending', 'refunded') AND o.paid_at IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM ledger_transactions t
                          WHERE t.payment_id = p.id AND t.kind IN ('payment_captured', 'payment_unapplied'))
    """,
    "fees as the provider reported them": """
        SELECT p.reference, p.fee_amount, coalesce(sum(e.amount), 0) FROM payments p
        LEFT JOIN ledger_transactions t ON t.payment_id = p.id AND t.kind = 'provider_fee'
        LEFT JOIN ledger_entries e ON e.transaction_id = t.id
            AND e.account_id IN (SELECT id FROM ledger_accounts WHERE code = 'provider_fees')
        WHERE p.fee_amount > 0
          AND EXISTS (SELECT 1 FROM ledger_transactions c
                      WHERE c.payment_id = p.id AND c.kind = 'payment_captured')
        GROUP BY p.reference, p.fee_amount HAVING coalesce(sum(e.amount), 0) <> p.fee_amount
    """,
    "paid less refunds = earnings + commission - promotions": """
        WITH captured AS (
            SELECT t.order_id, sum(p.amount) AS paid FROM ledger_transactions t
            JOIN payments p ON p.id = t.payment_id WHERE t.kind = 'payment_captured' GROUP BY t.order_id
        ), refunded AS (
            SELECT r.order_id, sum(r.amount) AS amount FROM refunds r
            JOIN ledger_transactions t ON t.refund_id = r.id AND t.kind = 'refund_asked'
            WHERE EXISTS (SELECT 1 FROM ledger_transactions c
                          WHERE c.kind = 'payment_captured' AND c.payment_id = r.payment_id)
            GROUP BY r.order_id
        ), shares AS (
            SELECT t.order_id,
                   -coalesce(sum(e.amount) FILTER (
                       WHERE a.code LIKE 'vendor_%' OR a.code = 'platform_commission'), 0)
                   - coalesce(sum(e.amount) FILTER (WHERE a.code = 'platform_promotions'), 0) AS net
            FROM ledger_transactions t JOIN ledger_entries e ON e.transaction_id = t.id
            JOIN ledger_accounts a ON a.id = e.account_id
            WHERE t.kind IN ('payment_captured', 'refund_asked') GROUP BY t.order_id
        )
        SELECT c.order_id::text, c.paid - coalesce(r.amount, 0), coalesce(s.net, 0)
        FROM captured c LEFT JOIN refunded r USING (order_id) LEFT JOIN shares s USING (order_id)
        WHERE c.paid - coalesce(r.amount, 0) <> coalesce(s.net, 0)
    """,
    "refunds posted when asked and when sent": """
        SELECT r.id::text, r.status,
               count(*) FILTER (WHERE t.kind = 'refund_asked'), count(*) FILTER (WHERE t.kind = 'refund_sent')
        FROM refunds r LEFT JOIN ledger_transactions t ON t.refund_id = r.id
        WHERE EXISTS (SELECT 1 FROM ledger_transactions c
                      WHERE c.payment_id = r.payment_id
                        AND c.kind IN ('payment_captured', 'payment_unapplied'))
        GROUP BY r.id, r.status
        HAVING count(*) FILTER (WHERE t.kind = 'refund_asked')
                   <> CASE WHEN EXISTS (SELECT 1 FROM ledger_transactions c WHERE c.payment_id = r.payment_id
                                        AND c.kind = 'payment_captured') THEN 1 ELSE 0 END
            OR count(*) FILTER (WHERE t.kind = 'refund_sent')
                   <> CASE r.status WHEN 'succeeded' THEN 1 ELSE 0 END
    """,
    "payouts left available once": """
        WITH moved AS (
            SELECT t.payout_id, t.kind, sum(e.amount) AS amount
            FROM ledger_transactions t JOIN ledger_entries e ON e.transaction_id = t.id
            JOIN ledger_accounts a ON a.id = e.account_id
            WHERE t.payout_id IS NOT NULL AND a.code LIKE 'vendor_available:%'
            GROUP BY t.payout_id, t.kind
        )
        SELECT p.id::text, p.status, p.amount,
               coalesce(sum(m.amount) FILTER (WHERE m.kind = 'payout_sent'), 0),
               coalesce(sum(m.amount), 0)
        FROM payouts p LEFT JOIN moved m ON m.payout_id = p.id
        GROUP BY p.id, p.status, p.amount
        HAVING coalesce(sum(m.amount) FILTER (WHERE m.kind = 'payout_sent'), 0) <> p.amount
            OR coalesce(sum(m.amount), 0)
               <> CASE WHEN p.status IN ('failed', 'reversed') THEN 0 ELSE p.amount END
    """,
    "payouts in transit are the open payouts": """
        SELECT transit.total, open.total FROM
            (SELECT -coalesce(sum(e.amount), 0) AS total FROM ledger_entries e
             JOIN ledger_accounts a ON a.id = e.account_id WHERE a.code = 'payouts_in_transit') transit,
            (SELECT coalesce(sum(amount), 0) AS total FROM payouts
             WHERE status IN ('pending', 'processing')) open
        WHERE transit.total <> open.total
    """,
}


async def check(session: AsyncSession) -> list[Breach]:
    """Every breach of the invariants (empty when the ledger holds)."""
    breaches = []
    for name, sql in CHECKS.items():
        for row in (await session.execute(text(sql))).all():
            breaches.append(Breach(name, ", ".join(str(v) for v in row)))
    return breaches


async def totals(session: AsyncSession) -> dict[str, int]:
    """Each platform account's balance and the vendors' together (for the command's summary)."""
    rows = await session.execute(
        text(
            """
            SELECT CASE WHEN a.code LIKE 'vendor_pending:%' THEN 'vendors_pending'
                        WHEN a.code LIKE 'vendor_available:%' THEN 'vendors_available'
                        ELSE a.code END, sum(e.amount)
            FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id GROUP BY 1 ORDER BY 1
            """
        )
    )
    return {code: int(total) for code, total in rows.all()}
