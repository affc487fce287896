"""The browsing mix (issue #19's headline scenario): the suite's own requests, interleaved by weight.

Pure: which request goes where, no stack and no load (``mix_run.py`` runs it).

* **Weights** (``WEIGHTS``): 45 % product page, 30 % listing, 10 % similar items, 8 % size advice
  (``product_fit``), 5 % cart and orders (2 % ``GET /cart``, 2 % ``GET /orders`` as logged-in
  shoppers, 1 % ``POST /orders`` from the orders scenario's requests, each with its own
  ``Idempotency-Key``), 2 % full-text search. A mix of ``total`` requests holds exactly each
  kind's share (largest remainder), interleaved in an order drawn from the seed; each kind takes
  its scenario's requests in turn, so the spread over products and shoppers is the scenario's.
* **Revalidation** (``REVALIDATE_SHARE``): browsers and apps send ``If-None-Match`` for pages they
  have seen. The load is fixed before it starts, so half of the mix's public requests (product
  page, listing, similar, search; chosen from the seed) are marked to revalidate; the ETags of
  their URLs are fetched just before the run and attached as ``If-None-Match``. Such a request
  is answered 304 while its page has not changed since, 200 after (an order moved its stock);
  both count as success. Personal answers (size advice, cart, orders) are never revalidated.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlencode

import numpy as np

from benchmarks.search_quality.load import Request

WEIGHTS: dict[str, float] = {
    "product_detail": 0.45,
    "listing": 0.30,
    "similar": 0.10,
    "product_fit": 0.08,
    "cart": 0.02,
    "order_list": 0.02,
    "order_create": 0.01,
    "search": 0.02,
}
PUBLIC = ("product_detail", "listing", "similar", "search")
ONE_OFF = ("order_create",)  # requests never sent twice (a fresh Idempotency-Key each)
REVALIDATE_SHARE = 0.5
OK_STATUSES = (200, 201, 304)


@dataclass(frozen=True)
class Slot:
    kind: str
    request: Request
    revalidate: bool


def counts(total: int, weights: dict[str, float] = WEIGHTS) -> dict[str, int]:
    """Requests per kind in a mix of ``total``: each kind's exact share, rounded so that they add
    up to ``total`` (the largest remainders get the leftover requests)."""
    whole = sum(weights.values())
    exact = {kind: total * w / whole for kind, w in weights.items()}
    out = {kind: int(value) for kind, value in exact.items()}
    by_remainder = sorted(weights, key=lambda kind: (out[kind] - exact[kind], kind))
    for kind in by_remainder[: total - sum(out.values())]:
        out[kind] += 1
    return out


def url_key(request: Request) -> str:
    """The request's path and query, as a page is told apart (the ETag belongs to it)."""
    return f"{request.path}?{urlencode(request.params)}" if request.params else request.path


def plan_mix(
    sources: dict[str, list[Request]], total: int, seed: int, share: float = REVALIDATE_SHARE
) -> list[Slot]:
    """``total`` slots: each kind's share of ``sources[kind]``, interleaved from ``seed``; a
    ``share`` of the public ones (rounded) marked to revalidate.

    Raises:
        ValueError: a kind has no requests, or a one-off kind fewer than its share needs.
    """
    per_kind = counts(total)
    for kind, needed in per_kind.items():
        have = len(sources.get(kind) or [])
        if have == 0 or (kind in ONE_OFF and have < needed):
            raise ValueError(f"the mix needs {needed} {kind} requests, the scenario has {have}")
    rng = np.random.default_rng([seed, 19])
    kinds = [kind for kind, n in per_kind.items() for _ in range(n)]
    taken: Counter[str] = Counter()
    slots = []
    for index in rng.permutation(len(kinds)):
        kind = kinds[index]
        source = sources[kind]
        slots.append(Slot(kind, source[taken[kind] % len(source)], False))
        taken[kind] += 1
    public = [i for i, slot in enumerate(slots) if slot.kind in PUBLIC]
    for i in rng.choice(len(public), size=round(share * len(public)), replace=False):
        slot = slots[public[int(i)]]
        slots[public[int(i)]] = Slot(slot.kind, slot.request, True)
    return slots


def to_revalidate(slots: list[Slot]) -> list[Request]:
    """The distinct requests whose current ETag the run needs (one per URL)."""
    found: dict[str, Request] = {}
    for slot in slots:
        if slot.revalidate:
            found.setdefault(url_key(slot.request), slot.request)
    return list(found.values())


def attach(slots: list[Slot], etags: dict[str, str]) -> list[Request]:
    """The mix's requests, ``If-None-Match`` added to the ones marked to revalidate.

    Raises:
        KeyError: no ETag for a URL marked to revalidate.
    """
    out = []
    for slot in slots:
        request = slot.request
        if slot.revalidate:
            headers = {**(request.headers or {}), "If-None-Match": etags[url_key(request)]}
            request = Request(request.path, request.params, headers, request.method, request.body)
        out.append(request)
    return out


def composition(slots: list[Slot]) -> dict[str, object]:
    """What the mix holds: requests per kind and the share of public requests that revalidate."""
    public = [slot for slot in slots if slot.kind in PUBLIC]
    return {
        "requests": len(slots),
        "by_kind": dict(Counter(slot.kind for slot in slots)),
        "public_revalidating_share": round(sum(s.revalidate for s in public) / len(public), 3)
        if public
        else None,
    }
