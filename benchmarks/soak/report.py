"""The soak's figures and verdicts, from what the driver recorded and what the database holds.

Pure functions (no stack, no I/O except ``write_results``), so ``tests/test_soak_report.py``
checks the maths in CI:

* **Latency per kind per window**: nearest-rank p50/p95/p99 over the successful calls whose due
  time falls in each window (``window_table``); **p95 drift** is the last window's p95 over the
  first window's, both with at least ``MIN_WINDOW_CALLS`` successes (``drift``).
* **Errors**: counted per kind as ``"<status> <problem code>"`` or the transport error's name;
  ``expected_error`` says which are answers a correct system gives under this load (409
  ``out_of_stock``, any 429). Any other error fails the soak.
* **Memory growth**: an ordinary least-squares slope of RSS (MB) against time (minutes) after a
  warm-up, fitted to the *low-water marks*: the lowest RSS of each 20 s window. Leaked memory is
  never given back, so it lifts the low-water mark; memory that work in flight uses and frees
  (the inference worker's photo batches swing its RSS by ~100 MB) moves the peaks; samples taken
  while the driver had a photo pair in flight are left out of the inference worker's marks, so a
  backlog of pairs (the worker never idle) does not read as growth. A process
  restarted during the run has one series per incarnation, each with its own warm-up; the slope
  judged is the *pooled within-incarnation* slope (one line per incarnation, common slope:
  ``sum((t - mean_t_i)(y - mean_y_i)) / sum((t - mean_t_i)^2)`` over the incarnations i), so a
  restart's drop in RSS is not read as shrinkage nor its reload as growth (``pooled_slope``).
  The verdict (``judge_slope``): a slope over the bound by more than two standard errors fails
  and one under it by more than that passes, however noisy; between the two, the slope decides
  where the run resolves the bound (two standard errors within it), else the series was too
  noisy to judge.
* **Invariants** (``evaluate_invariants``): stock conserved per variant, reserved stock equal to
  the units of unpaid orders, one order per accepted request, one successful payment per paid
  order and none on others, every accepted webhook's order paid and every event processed, no
  measurement unfinished or failed for a reason other than the photos, every order mail
  written, every durable job dispatched.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.measurement_flow import percentile
from core.rules.fulfilment import CANCELLABLE, derive_order_status, share
from core.rules.orders import FINAL, SOLD

RESULTS_DIR = Path(__file__).resolve().parents[1] / "results"
MIN_WINDOW_CALLS = 20
# RSS growth above this after warm-up fails the soak (the package docstring says why this bound).
RSS_SLOPE_BOUND_MB_PER_MIN = 2.0
# A series shorter than this after its warm-up is reported, not judged: over a few minutes the
# caches still filling (connection pools, statement caches, allocator arenas) look like growth.
MIN_JUDGED_SPAN_SECONDS = 300.0
# The slope is fitted to the lowest RSS of each window this long (see the module docstring).
LOW_WATER_WINDOW_SECONDS = 20.0
MIN_IDLE_SAMPLES = 3
# Orders paid and not closed, whose status follows their fulfilments; closed orders.
SOLD_STATUSES: frozenset[str] = frozenset(SOLD)
CLOSED_STATUSES: frozenset[str] = frozenset(FINAL)
# Failure codes of measurements the body pipeline gives for photos it cannot measure.
PIPELINE_REFUSALS = frozenset(
    {"no_person_detected", "person_cut_off", "multiple_people", "low_quality", "bad_pose"}
)


@dataclass(frozen=True)
class Call:
    """One request (or one awaited job, e.g. ``measure_ready``) as the driver saw it."""

    kind: str
    at: float  # seconds after the load started at which it was due
    ms: float  # due time -> answer
    status: int = 0  # HTTP status; 0 when none came
    error: str | None = None  # None: a success


@dataclass(frozen=True)
class RssSample:
    at: float  # seconds after the load started
    role: str  # "api", "worker-inference", "worker-other"
    process: str  # the incarnation (a restarted worker is a new one)
    started_at: float  # when that incarnation started, on the same clock
    rss_mb: float
    busy: bool = False  # work the driver knows of was in flight (a photo pair, for the inference worker)


@dataclass(frozen=True)
class CpuSample:
    at: float  # seconds after the load started, at the end of the interval
    seconds: float  # the interval's length
    used: dict[str, float]  # CPU seconds in the interval: api, workers, postgres, driver, others


def expected_error(error: str) -> bool:
    """Answers a correct system gives under this load: a sold-out variant, a rate limit."""
    return error == "409 out_of_stock" or error.startswith("429 ")


# --- latency ---------------------------------------------------------------------------------------
def _dist(values: list[float]) -> dict[str, float | None]:
    return {f"p{p}": percentile(values, p) for p in (50, 95, 99)}


def window_table(calls: Iterable[Call], window_s: float, load_s: float) -> dict[str, list[dict[str, Any]]]:
    """Per kind, one row per window of the load: calls, errors and percentiles of the successes.
    Calls due after the load (a flow's later steps) count in the last window."""
    count = max(1, math.ceil(load_s / window_s - 1e-9))
    grouped: dict[str, list[list[Call]]] = defaultdict(lambda: [[] for _ in range(count)])
    for call in calls:
        index = min(count - 1, max(0, int(call.at // window_s)))
        grouped[call.kind][index].append(call)
    table: dict[str, list[dict[str, Any]]] = {}
    for kind in sorted(grouped):
        rows = []
        for index, in_window in enumerate(grouped[kind]):
            ok = [c.ms for c in in_window if c.error is None]
            rows.append(
                {
                    "window": index,
                    "start_s": round(index * window_s, 1),
                    "calls": len(in_window),
                    "errors": len(in_window) - len(ok),
                    **_dist(ok),
                }
            )
        table[kind] = rows
    return table


def drift(rows: list[dict[str, Any]], min_calls: int = MIN_WINDOW_CALLS) -> dict[str, Any]:
    """p95 of the last window against the first, each with at least ``min_calls`` successes."""
    usable = [r for r in rows if r["calls"] - r["errors"] >= min_calls and r["p95"] is not None]
    if len(usable) < 2:
        return {"first_p95": None, "last_p95": None, "ratio": None, "delta_ms": None}
    first, last = usable[0], usable[-1]
    return {
        "first_window": first["window"],
        "last_window": last["window"],
        "first_p95": first["p95"],
        "last_p95": last["p95"],
        "ratio": round(last["p95"] / first["p95"], 2) if first["p95"] else None,
        "delta_ms": round(last["p95"] - first["p95"], 1),
    }


def per_kind(calls: list[Call]) -> dict[str, dict[str, Any]]:
    """Totals per kind: calls, successes, percentiles of the whole run, errors by type."""
    out: dict[str, dict[str, Any]] = {}
    for kind in sorted({c.kind for c in calls}):
        mine = [c for c in calls if c.kind == kind]
        errors = Counter(c.error for c in mine if c.error is not None)
        out[kind] = {
            "calls": len(mine),
            "ok": len(mine) - sum(errors.values()),
            **_dist([c.ms for c in mine if c.error is None]),
            "errors": dict(errors.most_common()),
            "unexpected_errors": sum(n for e, n in errors.items() if not expected_error(e)),
        }
    return out


def errors_by_type(calls: Iterable[Call]) -> dict[str, dict[str, Any]]:
    """Every error type across kinds: how many, of which kinds, expected or not."""
    counts: Counter[str] = Counter()
    kinds: dict[str, set[str]] = defaultdict(set)
    for call in calls:
        if call.error is not None:
            counts[call.error] += 1
            kinds[call.error].add(call.kind)
    return {
        error: {"count": n, "kinds": sorted(kinds[error]), "expected": expected_error(error)}
        for error, n in counts.most_common()
    }


def cpu_windows(samples: Iterable[CpuSample], window_s: float, load_s: float) -> list[dict[str, Any]]:
    """CPUs used on average in each window by each group (``others``: every other program on the
    machine), from intervals counted in the window their end falls in."""
    count = max(1, math.ceil(load_s / window_s - 1e-9))
    seconds = [0.0] * count
    used: list[Counter[str]] = [Counter() for _ in range(count)]
    for sample in samples:
        index = min(count - 1, max(0, int(sample.at // window_s)))
        seconds[index] += sample.seconds
        used[index].update(sample.used)
    return [
        {"window": i, **{group: round(cpu / seconds[i], 2) for group, cpu in sorted(used[i].items())}}
        for i in range(count)
        if seconds[i] > 0
    ]


# --- memory ----------------------------------------------------------------------------------------
def least_squares(points: list[tuple[float, float]]) -> tuple[float, float] | None:
    """(slope, intercept) of the ordinary least-squares line; None without two distinct x."""
    if len(points) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    if sxx <= 0:
        return None
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / sxx
    return slope, mean_y - slope * mean_x


def pooled_slope(segments: list[list[tuple[float, float]]]) -> dict[str, Any]:
    """The common slope of parallel lines fitted to the segments (an intercept each) and its
    standard error; points are (minutes, MB). Segments of fewer than two points are left out."""
    used = [sorted(points) for points in segments if len(points) >= 2]
    samples = sum(len(p) for p in used)
    span = sum(p[-1][0] - p[0][0] for p in used)
    sxx = sxy = 0.0
    centred = []
    for points in used:
        mean_x = sum(x for x, _ in points) / len(points)
        mean_y = sum(y for _, y in points) / len(points)
        centred += [(x - mean_x, y - mean_y) for x, y in points]
    sxx = sum(x * x for x, _ in centred)
    sxy = sum(x * y for x, y in centred)
    result: dict[str, Any] = {"slope_mb_per_min": None, "stderr": None, "samples": samples}
    result |= {"segments": len(used), "minutes": round(span, 2)}
    if sxx <= 0:
        return result
    slope = sxy / sxx
    dof = samples - len(used) - 1
    residuals = sum((y - slope * x) ** 2 for x, y in centred)
    result["slope_mb_per_min"] = round(slope, 3)
    result["stderr"] = round(math.sqrt(residuals / dof / sxx), 3) if dof > 0 else None
    return result


def low_water(series: list[RssSample], warmup_s: float, window_s: float) -> list[tuple[float, float]]:
    """(minutes, MB): the lowest RSS of each ``window_s`` window after the warm-up among the
    samples taken while the process was not busy, at the window's middle. A window with less than
    half of the fullest window's samples (the ends of a series), or with fewer than
    ``MIN_IDLE_SAMPLES`` samples not busy, is left out."""
    windows: dict[int, list[RssSample]] = defaultdict(list)
    for sample in series:
        after = sample.at - (sample.started_at + warmup_s)
        if after >= 0:
            windows[int(after // window_s)].append(sample)
    fullest = max((len(w) for w in windows.values()), default=0)
    marks = []
    for index, window in sorted(windows.items()):
        idle = [s.rss_mb for s in window if not s.busy]
        if len(window) * 2 >= fullest and len(idle) >= MIN_IDLE_SAMPLES:
            middle = window[0].started_at + warmup_s + (index + 0.5) * window_s
            marks.append((round(middle / 60, 4), min(idle)))
    return marks


def judge_slope(slope: float | None, stderr: float | None, bound: float) -> tuple[bool | None, str]:
    """FAIL where the slope is over ``bound`` by more than two standard errors, PASS where it is
    under by more than that, whatever the noise; between the two, the slope decides where the
    run resolves the bound (two standard errors within it), else it is not judged (None)."""
    if slope is None or stderr is None:
        return None, "too few samples after warm-up"
    if slope - 2 * stderr > bound:
        return False, f"over the bound beyond noise ({slope} - 2 x {stderr} > {bound})"
    if slope + 2 * stderr <= bound:
        return True, f"under the bound beyond noise ({slope} + 2 x {stderr} <= {bound})"
    if 2 * stderr <= bound:
        return slope <= bound, f"resolved to +-{2 * stderr:.2f} MB/min"
    return None, f"too noisy to judge against {bound}: +-{2 * stderr:.2f} MB/min (two standard errors)"


def memory_growth(
    samples: list[RssSample],
    warmup_s: float,
    bound: float = RSS_SLOPE_BOUND_MB_PER_MIN,
    window_s: float = LOW_WATER_WINDOW_SECONDS,
    min_span_s: float = MIN_JUDGED_SPAN_SECONDS,
    role_warmups: Mapping[str, float] | None = None,
) -> dict[str, dict[str, Any]]:
    """Per role: RSS first/last/peak; per incarnation, the slope of all samples after its warm-up
    (``warmup_s``, or the role's own in ``role_warmups``) and of its low-water marks; the
    low-water slope pooled over the incarnations with its standard error, and the verdict
    (``judge_slope``; ``pass`` None: not judged)."""
    out: dict[str, dict[str, Any]] = {}
    for role in sorted({s.role for s in samples}):
        warmup = (role_warmups or {}).get(role, warmup_s)
        mine = sorted((s for s in samples if s.role == role), key=lambda s: s.at)
        incarnations: dict[str, list[RssSample]] = defaultdict(list)
        for sample in mine:
            incarnations[sample.process].append(sample)
        segments, rows = [], []
        for process, series in incarnations.items():
            kept = [(s.at / 60, s.rss_mb) for s in series if s.at >= s.started_at + warmup]
            marks = low_water(series, warmup, window_s)
            fit, floor_fit = least_squares(kept), least_squares(marks)
            rows.append(
                {
                    "process": process,
                    "samples": len(series),
                    "after_warmup": len(kept),
                    "first_mb": series[0].rss_mb,
                    "last_mb": series[-1].rss_mb,
                    "peak_mb": max(s.rss_mb for s in series),
                    "slope_mb_per_min": None if fit is None else round(fit[0], 3),
                    "low_water_slope_mb_per_min": None if floor_fit is None else round(floor_fit[0], 3),
                }
            )
            segments.append(marks)
        pooled = pooled_slope(segments)
        raw = pooled_slope([[(s.at / 60, s.rss_mb) for s in series if s.at >= s.started_at + warmup]
                            for series in incarnations.values()])  # fmt: skip
        passed, why = judge_slope(pooled["slope_mb_per_min"], pooled["stderr"], bound)
        if pooled["minutes"] * 60 < min_span_s:
            passed, why = None, f"{pooled['minutes'] * 60:.0f} s after warm-up, under {min_span_s:g} s"
        out[role] = {
            "first_mb": mine[0].rss_mb,
            "last_mb": mine[-1].rss_mb,
            "peak_mb": max(s.rss_mb for s in mine),
            "incarnations": rows,
            **pooled,
            "all_samples_slope_mb_per_min": raw["slope_mb_per_min"],
            "all_samples_stderr": raw["stderr"],
            "warmup_s": warmup,
            "bound_mb_per_min": bound,
            "pass": passed,
            "judgement": why,
        }
    return out


# --- invariants ------------------------------------------------------------------------------------
def _inv(name: str, holds: bool, detail: str) -> dict[str, Any]:
    return {"invariant": name, "holds": bool(holds), "detail": detail}


def refund_summary(payments: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """What the soak's payments gave back, and which disagree with their refunds.

    ``payments``: one row per payment of the soak's orders: {reference, status, amount,
    refunded_amount, refunds (sum of its refund rows), refund_rows, pending (refund rows still
    pending)}. A payment's refunds must add up to its ``refunded_amount``, which must not exceed
    its ``amount``; after the drain no refund is pending and no payment is left
    ``refund_pending`` (refunded in full, the provider's confirmation not recorded).
    """
    rows = list(payments)
    differing = [p for p in rows if p["refunds"] != p["refunded_amount"]]
    over = [p for p in rows if max(p["refunds"], p["refunded_amount"]) > p["amount"]]
    wrong = [p for p in rows if any(p is q for q in [*over, *differing])]
    return {
        "payments": len(rows),
        "with_refunds": sum(1 for p in rows if p["refund_rows"]),
        "refunds": sum(p["refund_rows"] for p in rows),
        "refunded_total": sum(p["refunds"] for p in rows),
        "sum_differs": len(differing),
        "over_captured": len(over),
        "pending": sum(p["pending"] for p in rows),
        "payments_refund_pending": sum(1 for p in rows if p["status"] == "refund_pending"),
        "examples": [
            f"{p['reference']}: refunds {p['refunds']}, refunded_amount {p['refunded_amount']}, "
            f"amount {p['amount']}"
            for p in wrong[:3]
        ],
    }


def fulfilment_summary(orders: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Whether each of the soak's orders has the status its fulfilments add up to.

    ``orders``: one row per order: {order, status, parts (its fulfilments' statuses), untracked
    (its shipped or delivered fulfilments without a tracking number)}. A paid order that has not
    closed (``paid``, ``partially_shipped``, ``shipped``, ``delivered``) must have exactly the
    status ``core.rules.fulfilment.derive_order_status`` gives its fulfilments; a closed one
    (cancelled, expired, refunded) must have no part still pending or packed.
    """
    rows = list(orders)
    live = [o for o in rows if o["status"] in SOLD_STATUSES]
    differing = [o for o in live if derive_order_status(o["parts"]) != o["status"]]
    left_open = [o for o in rows if o["status"] in CLOSED_STATUSES and set(o["parts"]) & CANCELLABLE]
    parts = Counter(s for o in rows for s in o["parts"])
    return {
        "orders": len(rows),
        "orders_checked": len(live),
        "status_differs": len(differing),
        "closed_with_an_open_part": len(left_open),
        "by_order_status": dict(sorted(Counter(o["status"] for o in rows).items())),
        "by_status": dict(sorted(parts.items())),
        "shipped_or_delivered": parts["shipped"] + parts["delivered"],
        "untracked": sum(o["untracked"] for o in rows),
        "examples": [
            f"{o['order']}: {o['status']}, parts {'/'.join(o['parts'])}" for o in [*differing, *left_open][:3]
        ],
    }


def return_summary(lines: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The soak's returns, and which received ones were not refunded their lines' paid amount.

    ``lines``: one row per line of a return: {return_id, status, restocked, refund_amount,
    refunds (sum of the return's refund rows), units, unit_price, line_quantity, line_discount}.
    A line's paid amount is its units' price less their share of the line's discount
    (``core.rules.fulfilment.share``); a received (or refunded) return's ``refund_amount`` must be
    the sum over its lines, and its refund rows must add up to it.
    """
    returns: dict[str, dict[str, Any]] = {}
    for line in lines:
        found = returns.setdefault(line["return_id"], {**line, "paid": 0, "units_total": 0})
        found["paid"] += line["unit_price"] * line["units"] - share(
            line["line_discount"], line["units"], line["line_quantity"]
        )
        found["units_total"] += line["units"]
    received = [r for r in returns.values() if r["status"] in ("received", "refunded")]
    differing = [r for r in received if not r["refund_amount"] == r["refunds"] == r["paid"]]
    return {
        "returns": len(returns),
        "by_status": dict(sorted(Counter(r["status"] for r in returns.values()).items())),
        "received": len(received),
        "restocked": sum(1 for r in received if r["restocked"]),
        "units_received": sum(r["units_total"] for r in received),
        "refunded_total": sum(r["refunds"] for r in received),
        "refund_differs": len(differing),
        "awaiting_refund": sum(1 for r in returns.values() if r["status"] == "received"),
        "examples": [
            f"{r['return_id']}: refund {r['refund_amount']}, refund rows {r['refunds']}, paid {r['paid']}"
            for r in differing[:3]
        ],
    }


def evaluate_invariants(facts: dict[str, Any]) -> list[dict[str, Any]]:
    """Each data invariant, held or not, with the figures behind it.

    ``facts`` (gathered by ``checks.gather_facts`` after the drain):
    ``stock``: [{variant, initial, stock, reserved, sold, cancelled, restocked}] for the variants
    the soak sells (sold: units of the soak's orders that were paid; cancelled: of those, units
    their stores cancelled; restocked: units of received returns put back on sale);
    ``negative_stock_or_reserved``; ``reserved``: {variants_differing, reserved_units, unpaid_units};
    ``orders``: {created, in_database, differing (ids in one of the two only), retries,
    retries_same_order};
    ``payments``: {paid_orders, paid_without_exactly_one_success, unpaid_with_a_success,
    webhooked_not_paid, paid_not_webhooked, events_unprocessed, problem_payments} (a success: a
    payment captured, whether or not refunded since; paid: an order that was paid, whatever it
    became);
    ``refunds``: ``refund_summary``; ``fulfilments``: ``fulfilment_summary``; ``returns``:
    ``return_summary``;
    ``measurements``: {accepted, ready, refused, failed_otherwise, unfinished};
    ``mails``: {expected, written, missing}; ``outbox``: {undispatched}.
    """
    return [
        *_order_invariants(facts),
        *_marketplace_invariants(facts),
        *_work_invariants(facts),
    ]


def _order_invariants(facts: dict[str, Any]) -> list[dict[str, Any]]:
    stock = facts["stock"]
    broken = [
        v
        for v in stock
        if v["stock"] + v["reserved"] + v["sold"] - v["cancelled"] - v["restocked"] != v["initial"]
    ]
    sample = ", ".join(
        f"{v['variant']}: {v['stock']}+{v['reserved']}+{v['sold']}-{v['cancelled']}-{v['restocked']} "
        f"!= {v['initial']}"
        for v in broken[:3]
    )
    reserved = facts["reserved"]
    orders = facts["orders"]
    pay = facts["payments"]
    return [
        _inv(
            "stock conserved: stock + reserved = initial - sold + cancelled + restocked returns, for every "
            "variant sold in the soak",
            not broken and facts["negative_stock_or_reserved"] == 0,
            f"{len(stock)} variants ({sum(v['sold'] for v in stock)} units sold, "
            f"{sum(v['cancelled'] for v in stock)} cancelled, {sum(v['restocked'] for v in stock)} "
            f"returned and restocked), {len(broken)} broken{': ' + sample if sample else ''}; "
            f"{facts['negative_stock_or_reserved']} variants with negative stock or reserved",
        ),
        _inv(
            "reserved = units of unpaid orders (every variant)",
            reserved["variants_differing"] == 0 and reserved["reserved_units"] == reserved["unpaid_units"],
            f"reserved {reserved['reserved_units']}, unpaid units {reserved['unpaid_units']}, "
            f"{reserved['variants_differing']} variants differ",
        ),
        _inv(
            "one order per accepted POST /orders; a retried Idempotency-Key answers the same order",
            orders["in_database"] == orders["created"]
            and orders.get("differing", 0) == 0
            and orders["retries_same_order"] == orders["retries"],
            f"{orders['created']} created (201), {orders['in_database']} in the database "
            f"({orders.get('differing', 0)} not in both); "
            f"{orders['retries_same_order']} of {orders['retries']} retries answered the same order",
        ),
        _inv(
            "one successful payment per paid order (refunded since or not), none on any other, none flagged",
            pay["paid_without_exactly_one_success"] == 0
            and pay["unpaid_with_a_success"] == 0
            and pay["problem_payments"] == 0,
            f"{pay['paid_orders']} paid orders; {pay['paid_without_exactly_one_success']} without exactly "
            f"one successful payment, {pay['unpaid_with_a_success']} never paid with one, "
            f"{pay['problem_payments']} payments flagged",
        ),
        _inv(
            "every accepted webhook paid its order, and only those orders are paid",
            pay["webhooked_not_paid"] == 0
            and pay["paid_not_webhooked"] == 0
            and pay["events_unprocessed"] == 0,
            f"{pay['webhooked_not_paid']} webhooked but not paid, {pay['paid_not_webhooked']} paid without a "
            f"webhook, {pay['events_unprocessed']} events unprocessed",
        ),
    ]


def _marketplace_invariants(facts: dict[str, Any]) -> list[dict[str, Any]]:
    refunds, parts, returns = facts["refunds"], facts["fulfilments"], facts["returns"]

    def examples(found: dict[str, Any]) -> str:
        return f"; e.g. {'; '.join(found['examples'])}" if found["examples"] else ""

    return [
        _inv(
            "refunds never exceed what was captured: per payment, refunds add up to refunded_amount, "
            "at most its amount",
            refunds["sum_differs"] == 0 and refunds["over_captured"] == 0,
            f"{refunds['refunds']} refunds ({refunds['refunded_total']} minor units) of "
            f"{refunds['with_refunds']} of {refunds['payments']} payments; {refunds['sum_differs']} payments "
            f"whose refunds differ from refunded_amount, {refunds['over_captured']} over the amount"
            + examples(refunds),
        ),
        _inv(
            "every refund job finished: no refund pending, no payment left refund_pending, every received "
            "return refunded",
            refunds["pending"] == 0
            and refunds["payments_refund_pending"] == 0
            and returns["awaiting_refund"] == 0,
            f"{refunds['pending']} refunds pending, {refunds['payments_refund_pending']} payments "
            f"refund_pending, {returns['awaiting_refund']} returns received but not refunded",
        ),
        _inv(
            "every paid order's status is what its fulfilments add up to; no closed order has a part open",
            parts["status_differs"] == 0 and parts["closed_with_an_open_part"] == 0,
            f"{parts['orders_checked']} paid orders checked (the soak's orders by status: "
            f"{parts['by_order_status']}); "
            f"{parts['status_differs']} differ, {parts['closed_with_an_open_part']} closed with a part "
            f"pending or packed; parts {parts['by_status']}" + examples(parts),
        ),
        _inv(
            "every shipped or delivered fulfilment has a tracking number",
            parts["untracked"] == 0,
            f"{parts['shipped_or_delivered']} shipped or delivered, {parts['untracked']} without tracking",
        ),
        _inv(
            "every received return refunded its lines' paid amount",
            returns["refund_differs"] == 0,
            f"{returns['returns']} returns {returns['by_status']}: {returns['received']} received "
            f"({returns['units_received']} units, {returns['restocked']} restocked, "
            f"{returns['refunded_total']} minor units refunded), {returns['refund_differs']} refunded "
            "otherwise" + examples(returns),
        ),
    ]


def _work_invariants(facts: dict[str, Any]) -> list[dict[str, Any]]:
    measure = facts["measurements"]
    mails = facts["mails"]
    outbox = facts["outbox"]
    return [
        _inv(
            "no measurement stuck: every accepted upload finished (ready, or refused by the pipeline)",
            measure["unfinished"] == 0 and measure["ready"] + measure["refused"] == measure["accepted"],
            f"{measure['accepted']} accepted: {measure['ready']} ready, {measure['refused']} refused, "
            f"{measure['failed_otherwise']} failed otherwise; {measure['unfinished']} pending or processing",
        ),
        _inv(
            "every order mail written (a confirmation per order, a payment mail per paid order, a shipment "
            "mail per shipped part)",
            mails["written"] == mails["expected"] and not mails["missing"],
            f"{mails['written']} of {mails['expected']} written"
            + (f"; missing e.g. {', '.join(mails['missing'][:3])}" if mails["missing"] else ""),
        ),
        _inv(
            "every durable job dispatched (outbox drained)",
            outbox["undispatched"] == 0,
            f"{outbox['undispatched']} outbox rows not dispatched",
        ),
        _ledger_invariant(facts),
    ]


def _ledger_invariant(facts: dict[str, Any]) -> dict[str, Any]:
    """``facts["ledger"]``: {breaches: ["<invariant>: <row>", ...]} from just ledger-check's checks."""
    breaches = facts.get("ledger", {}).get("breaches", [])
    return _inv(
        "the ledger holds (just ledger-check: balanced, no negative available balance, paid less refunds = "
        "earnings + commission - promotions, refunds and payouts posted once)",
        not breaches,
        "; ".join(breaches[:5]) if breaches else "every invariant holds",
    )


def jobs_table(facts: dict[str, Any]) -> list[dict[str, Any]]:
    """Background work: accepted by the API vs completed by the workers."""
    pay, measure, mails = facts["payments"], facts["measurements"], facts["mails"]
    return [
        {
            "job": "body measurement (upload 202 -> ready/refused)",
            "accepted": measure["accepted"],
            "completed": measure["ready"] + measure["refused"],
        },
        {
            "job": "payment (webhook queued -> order paid)",
            "accepted": pay["webhooks_queued"],
            "completed": pay["paid_orders"],
        },
        {
            "job": "refund (asked -> sent to the provider)",
            "accepted": facts["refunds"]["refunds"],
            "completed": facts["refunds"]["refunds"] - facts["refunds"]["pending"],
        },
        {
            "job": "order mails (confirmation + payment + shipment)",
            "accepted": mails["expected"],
            "completed": mails["written"],
        },
    ]


# --- the verdict and the outputs ---------------------------------------------------------------------
def verdict(report: dict[str, Any]) -> dict[str, Any]:
    """Pass when every invariant holds, no unexpected error appeared and no judged RSS slope is
    over the bound; the reasons otherwise."""
    reasons = []
    failed = [i["invariant"] for i in report.get("invariants", []) if not i["holds"]]
    reasons += [f"invariant failed: {name}" for name in failed]
    unexpected = {e: v["count"] for e, v in report.get("errors_by_type", {}).items() if not v["expected"]}
    if unexpected:
        reasons.append("unexpected errors: " + ", ".join(f"{e} x{n}" for e, n in unexpected.items()))
    for role, growth in report.get("memory", {}).items():
        if growth["pass"] is False:
            reasons.append(
                f"{role} RSS grows {growth['slope_mb_per_min']} MB/min (bound {growth['bound_mb_per_min']})"
            )
    if report.get("failure"):
        reasons.append(f"the soak could not finish: {report['failure']}")
    notes = [
        f"{role} memory not judged: {growth.get('judgement')}"
        for role, growth in report.get("memory", {}).items()
        if growth["pass"] is None
    ]
    return {"pass": not reasons, "reasons": reasons, "notes": notes}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The printed summary (the Markdown report's first section is the same table)."""
    lines = []
    load = report.get("load", {})
    lines.append(
        f"Soak: {load.get('minutes')} min of mixed load at {load.get('rate')} flows/s offered "
        f"({load.get('flows_started')} flows, {load.get('achieved_rate')} flows/s started), "
        f"{report.get('requests_total', 0)} requests"
    )
    for fault in report.get("faults", []):
        lines.append(
            f"  fault at {fault['at_s']:>6.1f} s: {fault['signal']} {fault['role']} "
            f"(exit {fault.get('exit_code')}, back in {fault.get('back_in_s')} s)"
        )
    lines.append("")
    lines.append(f"  {'kind':<16}{'calls':>8}{'ok':>8}{'p50':>8}{'p95':>8}{'p99':>8}  drift p95    errors")
    for kind, row in report.get("kinds", {}).items():
        d = report.get("drift", {}).get(kind, {})
        drift_text = f"{_ms(d.get('first_p95'))}->{_ms(d.get('last_p95'))}" if d.get("ratio") else "-"
        errors = ", ".join(f"{e} x{n}" for e, n in row["errors"].items()) or "-"
        lines.append(
            f"  {kind:<16}{row['calls']:>8}{row['ok']:>8}{_ms(row['p50']):>8}{_ms(row['p95']):>8}"
            f"{_ms(row['p99']):>8}  {drift_text:<12} {errors}"
        )
    cpu = report.get("cpu_windows", [])
    if cpu:
        lines.append("")
        lines.append(f"  CPUs used per {report.get('window_seconds')} s window (others: other programs)")
        lines.append(f"    {'':<10}" + "".join(f"{'w' + str(w['window']):>6}" for w in cpu))
        for group in ("api", "workers", "postgres", "driver", "others"):
            lines.append(f"    {group:<10}" + "".join(f"{w.get(group, 0):>6.2f}" for w in cpu))
    lines.append("")
    lines.append("  jobs: accepted -> completed")
    for job in report.get("jobs", []):
        lines.append(f"    {job['job']:<48}{job['accepted']:>7} -> {job['completed']}")
    market = report.get("marketplace")
    if market:
        parts = report.get("facts", {}).get("fulfilments", {}).get("by_status")
        returns = report.get("facts", {}).get("returns", {}).get("by_status")
        lines.append(
            f"  marketplace: {len(market['stores'])} stores; parts {parts}; returns {returns}; "
            f"flows with nothing to do {market['skipped']}"
        )
    lines.append("  invariants")
    for inv in report.get("invariants", []):
        lines.append(f"    {'HOLDS' if inv['holds'] else 'FAILS':<6}{inv['invariant']}")
        lines.append(f"          {inv['detail']}")
    lines.append(
        "  memory (RSS MB: first -> last, peak; slope of the low-water marks after warm-up, pooled over "
        "restarts)"
    )
    for role, m in report.get("memory", {}).items():
        verdict_text = {True: "PASS", False: "FAIL", None: "not judged"}[m["pass"]]
        stderr = f" +- {m['stderr']}" if m.get("stderr") is not None else ""
        lines.append(
            f"    {role:<18} {m['first_mb']:>6} -> {m['last_mb']:<6} peak {m['peak_mb']:<6} "
            f"slope {m['slope_mb_per_min']}{stderr} MB/min over {m['minutes']} min "
            f"(bound {m['bound_mb_per_min']}): {verdict_text}, {m.get('judgement')}"
        )
    result = report.get("verdict", {})
    lines.append(f"  verdict: {'PASS' if result.get('pass') else 'FAIL'}")
    lines += [f"    - {reason}" for reason in result.get("reasons", [])]
    lines += [f"    note: {note}" for note in result.get("notes", [])]
    return lines


def render_markdown(report: dict[str, Any]) -> str:
    load = report.get("load", {})
    out = [
        f"# Soak: {report.get('finished_at')}",
        "",
        f"Produced by `just soak{' --quick' if report.get('quick') else ''}`. Machine: "
        f"{report.get('machine', {}).get('cpu_count')} CPUs, {report.get('machine', {}).get('cpu_model')}, "
        "shared with other programs (absolute latencies are noisy; the soak is about errors, "
        "invariants and leaks).",
        "",
        "```",
        *summary_lines(report),
        "```",
        "",
        "## Setup",
        "",
        f"- **Stack**: {report.get('stack_note')}",
        f"- **Dataset**: {report.get('dataset_note')}",
        "- **Mix** (share of flows): "
        + ", ".join(f"{k} {v:g}" for k, v in load.get("mix", {}).items())
        + f"; {load.get('flow_note', '')}",
        f"- **Latency**: {report.get('latency_note')}",
        f"- **Memory**: {report.get('memory_note')}",
        "",
        f"## p95 per window ({report.get('window_seconds')} s windows, ms)",
        "",
    ]
    windows = report.get("windows", {})
    if windows:
        count = max(len(rows) for rows in windows.values())
        out.append("| kind | " + " | ".join(f"w{i}" for i in range(count)) + " | drift |")
        out.append("|---|" + "---|" * (count + 1))
        for kind, rows in windows.items():
            cells = [_ms(r["p95"]) + (f" ({r['errors']} err)" if r["errors"] else "") for r in rows]
            ratio = report.get("drift", {}).get(kind, {}).get("ratio")
            out.append(f"| {kind} | " + " | ".join(cells) + f" | {ratio if ratio is not None else '-'} |")
    cpu = report.get("cpu_windows", [])
    if cpu:
        groups = ("api", "workers", "postgres", "driver", "others")
        out += ["", "CPUs used in each window (others: every other program on the shared machine):", ""]
        out.append("| group | " + " | ".join(f"w{w['window']}" for w in cpu) + " |")
        out.append("|---|" + "---|" * len(cpu))
        out += [f"| {g} | " + " | ".join(f"{w.get(g, 0):.2f}" for w in cpu) + " |" for g in groups]
    out += ["", "## Errors by type", "", "| error | count | kinds | expected |", "|---|---|---|---|"]
    for error, e in report.get("errors_by_type", {}).items():
        out.append(
            f"| {error} | {e['count']} | {', '.join(e['kinds'])} | {'yes' if e['expected'] else 'NO'} |"
        )
    out += ["", "## Memory per process incarnation", ""]
    out.append(
        "| role | process | samples | after warm-up | first | last | peak | slope MB/min "
        "| low-water slope MB/min |"
    )
    out.append("|---|---|---|---|---|---|---|---|---|")
    for role, m in report.get("memory", {}).items():
        for row in m["incarnations"]:
            out.append(
                f"| {role} | {row['process']} | {row['samples']} | {row['after_warmup']} | "
                f"{row['first_mb']} | {row['last_mb']} | {row['peak_mb']} | {row['slope_mb_per_min']} | "
                f"{row['low_water_slope_mb_per_min']} |"
            )
    return "\n".join(out) + "\n"


def write_results(report: dict[str, Any], results_dir: Path = RESULTS_DIR) -> list[Path]:
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n"
    paths = [
        results_dir / f"soak-{stamp}.json",
        results_dir / "soak-latest.json",
        results_dir / "soak-latest.md",
    ]
    paths[0].write_text(text)
    paths[1].write_text(text)
    paths[2].write_text(render_markdown(report))
    return paths
