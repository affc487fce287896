"""Money arithmetic in integer minor units: commission, and splitting an amount over parts.

Nothing here rounds in the platform's favour: commission is rounded down, and a split hands
the units left over by rounding to the parts that lost the most (largest remainder), so the
parts always add up to the whole.
"""

from __future__ import annotations

from collections.abc import Sequence


def commission(amount: int, rate_bps: int) -> int:
    """The platform's share of ``amount`` at ``rate_bps`` basis points, rounded down."""
    if amount <= 0 or rate_bps <= 0:
        return 0
    return amount * rate_bps // 10_000


def split(total: int, weights: Sequence[int]) -> list[int]:
    """``total`` shared in proportion to ``weights`` (non-negative), adding up to ``total``
    exactly; all to the first part when every weight is zero."""
    if not weights:
        return []
    whole = sum(weights)
    if whole <= 0:
        return [total, *([0] * (len(weights) - 1))]
    shares = [total * w // whole for w in weights]
    left = total - sum(shares)
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % whole), i))
    for i in by_remainder[:left]:
        shares[i] += 1
    return shares
