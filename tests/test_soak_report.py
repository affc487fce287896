"""The soak's pure report maths: windows and drift, error classes, RSS slopes pooled over a
restarted worker's incarnations, the invariants and the verdict (no stack, no load)."""

from __future__ import annotations

import copy
import random
from collections.abc import Sequence
from typing import Any

import pytest

from benchmarks.soak.driver import MIX
from benchmarks.soak.marketplace import MIX as MARKET_MIX
from benchmarks.soak.marketplace import soak_mix
from benchmarks.soak.report import (
    Call,
    CpuSample,
    RssSample,
    cpu_windows,
    drift,
    errors_by_type,
    evaluate_invariants,
    expected_error,
    fulfilment_summary,
    judge_slope,
    least_squares,
    low_water,
    memory_growth,
    per_kind,
    pooled_slope,
    refund_summary,
    render_markdown,
    return_summary,
    summary_lines,
    verdict,
    window_table,
)


def calls(kind: str, start: float, ms: list[float], error: str | None = None) -> list[Call]:
    return [Call(kind, start + i * 0.1, m, 200 if error is None else 500, error) for i, m in enumerate(ms)]


def test_windows_take_calls_by_due_time_and_late_steps_count_in_the_last_window() -> None:
    made = (
        calls("detail", 0.0, [10.0] * 30) + calls("detail", 60.0, [20.0] * 30) + [Call("detail", 130.0, 99.0)]
    )
    made.append(Call("detail", 61.0, 5_000.0, 0, "timeout"))
    rows = window_table(made, window_s=60, load_s=120)["detail"]
    assert [r["calls"] for r in rows] == [30, 32]  # the call due at 130 s (after the load) is in the last
    assert rows[1]["errors"] == 1
    assert rows[0]["p95"] == 10.0
    assert rows[1]["p95"] == 20.0  # the timeout is an error, not a latency
    assert rows[1]["start_s"] == 60.0


def test_drift_is_last_usable_window_over_first_and_needs_enough_calls() -> None:
    rows = [
        {"window": 0, "calls": 40, "errors": 0, "p95": 10.0},
        {"window": 1, "calls": 5, "errors": 0, "p95": 500.0},  # too few to count
        {"window": 2, "calls": 40, "errors": 0, "p95": 25.0},
        {"window": 3, "calls": 25, "errors": 10, "p95": 900.0},  # 15 successes: too few
    ]
    found = drift(rows, min_calls=20)
    assert (found["first_window"], found["last_window"]) == (0, 2)
    assert found["ratio"] == 2.5
    assert found["delta_ms"] == 15.0
    assert drift(rows[:1], min_calls=20)["ratio"] is None


def test_only_sold_out_and_rate_limits_are_expected_errors() -> None:
    assert expected_error("409 out_of_stock")
    assert expected_error("429 too_many_requests")
    for error in ("500 internal_server_error", "503 service_unavailable", "409 order_not_payable", "timeout",
                  "ConnectError", "check: short: 3 of 10 items"):  # fmt: skip
        assert not expected_error(error)
    made = [*calls("order", 0, [5.0] * 3), *calls("order", 1, [6.0] * 2, "409 out_of_stock")]
    made += calls("detail", 0, [1.0], "500 internal_server_error")
    kinds = per_kind(made)
    assert kinds["order"] == {
        "calls": 5,
        "ok": 3,
        "p50": 5.0,
        "p95": 5.0,
        "p99": 5.0,
        "errors": {"409 out_of_stock": 2},
        "unexpected_errors": 0,
    }
    assert kinds["detail"]["unexpected_errors"] == 1
    by_type = errors_by_type(made)
    assert by_type["409 out_of_stock"] == {"count": 2, "kinds": ["order"], "expected": True}
    assert by_type["500 internal_server_error"]["expected"] is False


def test_least_squares_recovers_a_line() -> None:
    fit = least_squares([(x, 3.0 + 0.5 * x) for x in range(10)])
    assert fit is not None
    assert fit[0] == pytest.approx(0.5)
    assert fit[1] == pytest.approx(3.0)
    assert least_squares([(1.0, 2.0), (1.0, 3.0)]) is None  # no spread in time: no slope


def test_pooled_slope_ignores_the_drop_at_a_restart() -> None:
    # Each incarnation grows 1 MB/min from its own level; a naive fit over all the points would
    # see the restarts' drops from ~300 MB to ~200 MB and report shrinkage.
    segments = [
        [(t + 4 * i, base + 1.0 * t) for t in (0.0, 1.0, 2.0, 3.0)] for i, base in enumerate((300, 200, 210))
    ]
    naive = least_squares([p for s in segments for p in s])
    assert naive is not None
    assert naive[0] < 0
    pooled = pooled_slope(segments)
    assert pooled["slope_mb_per_min"] == pytest.approx(1.0)
    assert pooled["stderr"] == pytest.approx(0.0)
    assert pooled["segments"] == 3
    assert pooled["samples"] == 12
    assert pooled["minutes"] == pytest.approx(9.0)


def test_pooled_slope_has_a_standard_error_that_shrinks_with_more_samples() -> None:
    rng = random.Random(3)

    def noisy(n: int) -> list[tuple[float, float]]:
        return [(t / 12, 250 + rng.gauss(0, 2)) for t in range(n)]

    short, long = pooled_slope([noisy(24)]), pooled_slope([noisy(240)])
    assert short["stderr"] is not None
    assert long["stderr"] is not None
    assert long["stderr"] < short["stderr"]
    assert abs(long["slope_mb_per_min"]) < 3 * long["stderr"] + 0.05


def rss(role: str, process: str, started: float, points: Sequence[tuple[float, float]]) -> list[RssSample]:
    return [RssSample(at, role, process, started, mb) for at, mb in points]


def test_memory_growth_skips_each_incarnations_warm_up_and_judges_against_the_bound() -> None:
    # The API: 100 MB of warm-up growth in its first minute, then flat: passes.
    api = rss("api", "api", 0.0, [(t, 150 + min(t, 60) * 100 / 60) for t in range(0, 600, 5)])
    # A worker leaking 3 MB/min in two incarnations, each with a big start-up jump.
    leak = rss(
        "worker-inference",
        "w1",
        0.0,
        [(t, 100 + (200 if t > 10 else 0) + 3 * t / 60) for t in range(0, 300, 5)],
    )
    second = [(t, 120 + (200 if t > 310 else 0) + 3 * (t - 300) / 60) for t in range(300, 600, 5)]
    leak += rss("worker-inference", "w2", 300.0, second)
    # A worker restarted so often that no incarnation lives past its warm-up.
    brief = rss("worker-other", "o1", 0.0, [(t, 80.0) for t in range(0, 60, 5)])
    growth = memory_growth(api + leak + brief, warmup_s=60, bound=2.0, min_span_s=90)
    assert growth["api"]["slope_mb_per_min"] == pytest.approx(0.0, abs=1e-9)
    assert growth["api"]["pass"] is True
    assert growth["api"]["first_mb"] == 150
    assert growth["api"]["peak_mb"] == 250
    assert growth["worker-inference"]["slope_mb_per_min"] == pytest.approx(3.0)
    assert growth["worker-inference"]["pass"] is False
    assert [r["process"] for r in growth["worker-inference"]["incarnations"]] == ["w1", "w2"]
    assert growth["worker-other"]["pass"] is None  # nothing after warm-up: reported, not judged
    # A role's own warm-up: the worker's first 4 minutes left out, 1 minute of each incarnation
    # is too short to judge (but the slope is still the leak's).
    own = memory_growth(leak, warmup_s=60, bound=2.0, min_span_s=90, role_warmups={"worker-inference": 240})
    assert own["worker-inference"]["warmup_s"] == 240
    assert own["worker-inference"]["slope_mb_per_min"] == pytest.approx(3.0)
    assert own["worker-inference"]["pass"] is None
    # The same leak over a span shorter than the shortest judged one: reported, not judged.
    short = memory_growth(leak, warmup_s=60, bound=2.0, min_span_s=600)["worker-inference"]
    assert short["slope_mb_per_min"] == pytest.approx(3.0)
    assert short["pass"] is None


def test_work_in_flight_moves_the_peaks_not_the_low_water_mark() -> None:
    # Flat 250 MB, with 90 MB batches in flight every third second of the second half: the mean
    # of all samples climbs, the memory held between batches does not.
    points = [(float(t), 250.0 + (90.0 if t >= 300 and t % 3 == 0 else 0.0)) for t in range(600)]
    growth = memory_growth(rss("worker-inference", "w1", 0.0, points), warmup_s=60, bound=2.0)[
        "worker-inference"
    ]
    assert growth["all_samples_slope_mb_per_min"] > 4  # twice the bound: a naive fit would fail it
    assert growth["slope_mb_per_min"] == pytest.approx(0.0, abs=1e-9)
    assert growth["pass"] is True
    assert growth["peak_mb"] == 340


def test_low_water_marks_are_window_minima_after_the_warm_up() -> None:
    series = rss("api", "api", 10.0, [(float(t), 100.0 + (t % 7)) for t in range(10, 131)])
    marks = low_water(series, warmup_s=30, window_s=20)
    # Windows from 40 s: [40, 60), [60, 80), ..., [120, 140) holds only 120..130: 11 of 20 samples, kept.
    assert [round(m * 60) for m, _ in marks] == [50, 70, 90, 110, 130]
    assert all(mb == 100.0 for _, mb in marks)
    sparse = rss("api", "api", 0.0, [(float(t), 1.0) for t in [*range(0, 40), 45]])
    assert [round(m * 60) for m, _ in low_water(sparse, warmup_s=0, window_s=20)] == [10, 30]


def test_samples_taken_while_busy_are_left_out_of_the_low_water_marks() -> None:
    # A backlog from 200 s: the worker holds 60 MB more while it is never idle. Only the
    # windows with enough idle samples count, and they show no growth.
    points = [(float(t), 250.0 + (60.0 if 200 <= t < 400 else 0.0)) for t in range(600)]
    samples = [
        RssSample(at, "worker-inference", "w1", 0.0, mb, busy=200 <= at < 400 or at % 4 == 0)
        for at, mb in points
    ]
    marks = low_water(samples, warmup_s=60, window_s=20)
    assert {mb for _, mb in marks} == {250.0}
    assert not any(200 <= m * 60 < 400 for m, _ in marks)
    growth = memory_growth(samples, warmup_s=60, bound=2.0)["worker-inference"]
    assert growth["slope_mb_per_min"] == pytest.approx(0.0, abs=1e-9)
    assert growth["all_samples_slope_mb_per_min"] != pytest.approx(0.0, abs=0.5)
    assert growth["pass"] is True


def test_cpu_per_window_is_each_groups_average_and_others_are_the_rest() -> None:
    samples = [
        CpuSample(at, 5.0, {"api": 2.5, "workers": 1.0, "postgres": 1.5, "driver": 0.5, "others": 4.0})
        for at in (5.0, 10.0, 60.0, 65.0, 130.0)  # the last ends after the load: the last window
    ]
    windows = cpu_windows(samples, window_s=60, load_s=120)
    assert windows == [
        {"window": 0, "api": 0.5, "driver": 0.1, "others": 0.8, "postgres": 0.3, "workers": 0.2},
        {"window": 1, "api": 0.5, "driver": 0.1, "others": 0.8, "postgres": 0.3, "workers": 0.2},
    ]
    assert cpu_windows([], 60, 120) == []


@pytest.mark.parametrize(
    ("slope", "stderr", "verdict"),
    [
        (0.5, 0.05, True),  # resolved, within the bound
        (2.5, 0.1, False),  # resolved, over it
        (1.9, 0.5, True),  # resolved: the slope decides
        (2.1, 0.5, False),
        (1.0, 3.0, None),  # too noisy to say either way
        (20.0, 3.0, False),  # noisy, but over the bound beyond any doubt
        (-0.8, 1.25, True),  # noisy, but under the bound beyond doubt (-0.8 + 2.5 <= 2)
        (None, None, None),
    ],
)
def test_a_slope_is_judged_only_where_the_run_resolves_the_bound(
    slope: float | None, stderr: float | None, verdict: bool | None
) -> None:
    assert judge_slope(slope, stderr, 2.0)[0] is verdict


def payment(reference: str, amount: int, refunds: Sequence[int], **over: Any) -> dict[str, Any]:
    row = {
        "reference": reference,
        "status": "succeeded",
        "amount": amount,
        "refunded_amount": sum(refunds),
        "refunds": sum(refunds),
        "refund_rows": len(refunds),
        "pending": 0,
    }
    return row | over


def test_refunds_add_up_per_payment_and_never_exceed_the_capture() -> None:
    rows = [
        payment("untouched", 10_000, []),
        payment("two-lines-cancelled", 10_000, [2_500, 1_500]),
        payment("all-back", 10_000, [9_000, 1_000], status="refunded"),
    ]
    found = refund_summary(rows)
    assert found | {"examples": []} == {
        "payments": 3,
        "with_refunds": 2,
        "refunds": 4,
        "refunded_total": 14_000,
        "sum_differs": 0,
        "over_captured": 0,
        "pending": 0,
        "payments_refund_pending": 0,
        "examples": [],
    }
    # A refund row the payment's refunded_amount never counted (or counted twice): differs.
    assert refund_summary([payment("lost", 10_000, [2_500], refunded_amount=0)])["sum_differs"] == 1
    # More given back than was captured, in the rows or on the payment: over.
    over = refund_summary([payment("twice", 10_000, [10_000, 10_000], refunded_amount=10_000)])
    assert (over["over_captured"], over["sum_differs"]) == (1, 1)
    assert over["examples"] == ["twice: refunds 20000, refunded_amount 10000, amount 10000"]
    # Refunds still waiting for the provider, a payment refunded in full and not confirmed.
    waiting = refund_summary([payment("slow", 10_000, [10_000], pending=1, status="refund_pending")])
    assert (waiting["pending"], waiting["payments_refund_pending"], waiting["sum_differs"]) == (1, 1, 0)


def order(status: str, *parts: str, untracked: int = 0) -> dict[str, Any]:
    return {
        "order": f"o-{status}-{'-'.join(parts)}",
        "status": status,
        "parts": list(parts),
        "untracked": untracked,
    }


def test_a_paid_orders_status_must_be_what_its_fulfilments_add_up_to() -> None:
    consistent = [
        order("pending_payment", "pending", "pending"),  # not paid: not checked
        order("paid", "pending", "packed"),
        order("paid", "pending", "cancelled"),  # one store cancelled its part
        order("partially_shipped", "shipped", "packed"),
        order("shipped", "shipped", "delivered"),
        order("shipped", "shipped", "cancelled"),
        order("delivered", "delivered", "cancelled"),
        order("cancelled", "cancelled", "cancelled"),  # every part cancelled: the order is
        order("refunded", "delivered"),  # returned in full
        order("expired", "cancelled"),
    ]
    found = fulfilment_summary(consistent)
    assert (found["orders"], found["orders_checked"]) == (10, 6)
    assert (found["status_differs"], found["closed_with_an_open_part"], found["untracked"]) == (0, 0, 0)
    assert found["by_status"] == {"cancelled": 6, "delivered": 3, "packed": 2, "pending": 4, "shipped": 3}
    assert found["shipped_or_delivered"] == 6
    assert found["examples"] == []
    for wrong in (
        order("paid", "shipped", "pending"),  # should be partially shipped
        order("partially_shipped", "shipped", "cancelled"),  # every live part left: shipped
        order("shipped", "delivered", "delivered"),  # should be delivered
        order("delivered", "delivered", "shipped"),
        order("paid", "cancelled", "cancelled"),  # every part cancelled, the order still paid
    ):
        broken = fulfilment_summary([*consistent, wrong])
        assert broken["status_differs"] == 1, wrong
        assert broken["examples"] == [
            f"{wrong['order']}: {wrong['status']}, parts {'/'.join(wrong['parts'])}"
        ]
    left_open = fulfilment_summary([order("cancelled", "cancelled", "packed")])
    assert (left_open["closed_with_an_open_part"], left_open["orders_checked"]) == (1, 0)
    assert fulfilment_summary([order("shipped", "shipped", untracked=1)])["untracked"] == 1


def return_line(return_id: str, status: str, units: int, **over: Any) -> dict[str, Any]:
    row = {
        "return_id": return_id,
        "status": status,
        "restocked": True,
        "refund_amount": None,
        "refunds": 0,
        "units": units,
        "unit_price": 5_000,
        "line_quantity": 2,
        "line_discount": 0,
    }
    return row | over


def test_a_received_return_refunds_its_lines_paid_amount() -> None:
    rows = [
        return_line("asked", "requested", 1),
        return_line("turned-down", "rejected", 1),
        # Two lines: 1 x 5,000 and 2 x 3,000 less their share (2/3) of a 900 discount on a 3-unit line.
        return_line("two-lines", "refunded", 1, refund_amount=10_400, refunds=10_400),
        return_line(
            "two-lines",
            "refunded",
            2,
            refund_amount=10_400,
            refunds=10_400,
            unit_price=3_000,
            line_quantity=3,
            line_discount=900,
        ),
        return_line("kept", "received", 2, restocked=False, refund_amount=10_000, refunds=10_000),
    ]
    found = return_summary(rows)
    assert found | {"examples": []} == {
        "returns": 4,
        "by_status": {"received": 1, "refunded": 1, "rejected": 1, "requested": 1},
        "received": 2,
        "restocked": 1,
        "units_received": 5,
        "refunded_total": 20_400,
        "refund_differs": 0,
        "awaiting_refund": 1,  # received, the provider not asked yet
        "examples": [],
    }
    short = return_summary([return_line("short", "refunded", 2, refund_amount=5_000, refunds=5_000)])
    assert short["refund_differs"] == 1
    assert short["examples"] == ["short: refund 5000, refund rows 5000, paid 10000"]
    # The return says what it paid back, but its refund rows add up to something else.
    rows_differ = return_line("rows", "refunded", 1, refund_amount=5_000, refunds=4_000)
    assert return_summary([rows_differ])["refund_differs"] == 1
    # Only received returns are held to it.
    assert return_summary([return_line("open", "approved", 1)])["refund_differs"] == 0


FACTS: dict[str, Any] = {
    "stock": [
        {"variant": "a", "initial": 4, "stock": 0, "reserved": 1, "sold": 3, "cancelled": 0, "restocked": 0},
        # 10 sold, 2 of them cancelled by the store and 1 returned and restocked: 60 - 10 + 3 = 53.
        {
            "variant": "b",
            "initial": 60,
            "stock": 49,
            "reserved": 4,
            "sold": 10,
            "cancelled": 2,
            "restocked": 1,
        },
    ],
    "negative_stock_or_reserved": 0,
    "reserved": {"variants_differing": 0, "reserved_units": 5, "unpaid_units": 5},
    "orders": {"created": 20, "in_database": 20, "differing": 0, "retries": 2, "retries_same_order": 2},
    "payments": {
        "webhooks_queued": 9,
        "paid_orders": 9,
        "paid_without_exactly_one_success": 0,
        "unpaid_with_a_success": 0,
        "problem_payments": 0,
        "webhooked_not_paid": 0,
        "paid_not_webhooked": 0,
        "events_unprocessed": 0,
    },
    "refunds": refund_summary([payment("p1", 10_000, [2_500, 1_500]), payment("p2", 8_000, [])]),
    "fulfilments": fulfilment_summary([order("shipped", "shipped", "delivered"), order("paid", "packed")]),
    "returns": return_summary([return_line("r1", "refunded", 1, refund_amount=5_000, refunds=5_000)]),
    "measurements": {"accepted": 6, "ready": 5, "refused": 1, "failed_otherwise": 0, "unfinished": 0},
    "mails": {"expected": 29, "written": 29, "missing": []},
    "outbox": {"undispatched": 0},
    "ledger": {"breaches": []},
}


def broken(path: str, value: Any) -> dict[str, Any]:
    facts = copy.deepcopy(FACTS)
    *parents, last = path.split(".")
    node: Any = facts
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    node[last] = value
    return facts


def test_the_marketplace_takes_its_share_of_the_flows_from_browse_only() -> None:
    mix = soak_mix(MIX)
    assert sum(mix.values()) == pytest.approx(1.0)
    assert mix["browse"] == pytest.approx(MIX["browse"] - sum(MARKET_MIX.values()))
    assert {k: v for k, v in mix.items() if k not in MARKET_MIX and k != "browse"} == {
        k: v for k, v in MIX.items() if k != "browse"
    }


def test_invariants_all_hold_on_consistent_facts() -> None:
    found = evaluate_invariants(FACTS)
    assert len(found) == 14
    assert all(i["holds"] for i in found), [i for i in found if not i["holds"]]


@pytest.mark.parametrize(
    ("path", "value", "failing"),
    [
        ("stock.1.stock", 50, "stock conserved"),  # one unit appeared from nowhere
        ("stock.1.cancelled", 1, "stock conserved"),  # a cancelled unit never went back on sale
        ("stock.1.restocked", 2, "stock conserved"),  # a returned unit restocked twice
        ("negative_stock_or_reserved", 1, "stock conserved"),
        ("reserved.reserved_units", 6, "reserved = units"),
        ("reserved.variants_differing", 2, "reserved = units"),
        ("orders.in_database", 21, "one order per accepted"),  # a retry made a second order
        ("orders.differing", 2, "one order per accepted"),
        ("orders.retries_same_order", 1, "one order per accepted"),
        ("payments.paid_without_exactly_one_success", 1, "one successful payment"),
        ("payments.unpaid_with_a_success", 1, "one successful payment"),
        ("payments.problem_payments", 1, "one successful payment"),
        ("payments.webhooked_not_paid", 1, "every accepted webhook"),
        ("payments.paid_not_webhooked", 1, "every accepted webhook"),
        ("payments.events_unprocessed", 1, "every accepted webhook"),
        ("refunds.sum_differs", 1, "refunds never exceed"),
        ("refunds.over_captured", 1, "refunds never exceed"),
        ("refunds.pending", 2, "every refund job"),
        ("refunds.payments_refund_pending", 1, "every refund job"),
        ("returns.awaiting_refund", 1, "every refund job"),
        ("fulfilments.status_differs", 1, "every paid order's status"),
        ("fulfilments.closed_with_an_open_part", 1, "every paid order's status"),
        ("fulfilments.untracked", 1, "every shipped or delivered"),
        ("returns.refund_differs", 1, "every received return"),
        ("measurements.unfinished", 1, "no measurement stuck"),
        ("measurements.ready", 4, "no measurement stuck"),  # one accepted upload vanished
        ("mails.written", 28, "every order mail"),
        ("mails.missing", ["order-x-status-paid.eml"], "every order mail"),
        ("outbox.undispatched", 3, "every durable job"),
        ("ledger.breaches", ["transactions balance: 0190..., 5"], "the ledger holds"),
    ],
)
def test_each_invariant_fails_on_its_own_breach(path: str, value: Any, failing: str) -> None:
    found = evaluate_invariants(broken(path, value))
    assert [i["invariant"] for i in found if not i["holds"]] == [
        i["invariant"] for i in found if i["invariant"].startswith(failing)
    ]
    assert sum(not i["holds"] for i in found) == 1


def test_the_verdict_fails_on_an_invariant_an_unexpected_error_or_a_leak_only() -> None:
    clean = {
        "invariants": evaluate_invariants(FACTS),
        "errors_by_type": errors_by_type(calls("order", 0, [1.0], "409 out_of_stock")),
        "memory": {"api": {"pass": True, "slope_mb_per_min": 0.1, "bound_mb_per_min": 2.0}},
    }
    assert verdict(clean) == {"pass": True, "reasons": [], "notes": []}
    assert not verdict({**clean, "invariants": evaluate_invariants(broken("outbox.undispatched", 1))})["pass"]
    errors = errors_by_type(calls("detail", 0, [1.0], "500 internal_server_error"))
    assert verdict({**clean, "errors_by_type": errors})["reasons"] == [
        "unexpected errors: 500 internal_server_error x1"
    ]
    leak = {"api": {"pass": False, "slope_mb_per_min": 4.2, "bound_mb_per_min": 2.0}}
    assert verdict({**clean, "memory": leak})["reasons"] == ["api RSS grows 4.2 MB/min (bound 2.0)"]
    unjudged = {"api": {"pass": None, "slope_mb_per_min": 9.0, "bound_mb_per_min": 2.0, "judgement": "noisy"}}
    assert verdict({**clean, "memory": unjudged}) == {
        "pass": True,
        "reasons": [],
        "notes": ["api memory not judged: noisy"],
    }


def test_the_summary_and_markdown_render_a_whole_report() -> None:
    made = calls("detail", 0, [3.0] * 30) + calls("order", 1, [6.0] * 2, "409 out_of_stock")
    windows = window_table(made, 60, 120)
    report: dict[str, Any] = {
        "load": {
            "minutes": 2,
            "rate": 20,
            "flows_started": 32,
            "achieved_rate": 0.27,
            "mix": {"browse": 1.0},
        },
        "requests_total": 32,
        "faults": [
            {"at_s": 40.0, "signal": "SIGTERM", "role": "worker-other", "exit_code": 0, "back_in_s": 3.2}
        ],
        "kinds": per_kind(made),
        "windows": windows,
        "window_seconds": 60,
        "drift": {k: drift(v) for k, v in windows.items()},
        "errors_by_type": errors_by_type(made),
        "jobs": [{"job": "payment", "accepted": 3, "completed": 3}],
        "invariants": evaluate_invariants(FACTS),
        "memory": memory_growth(rss("api", "api", 0, [(t, 200.0) for t in range(0, 300, 5)]), 60),
        "machine": {"cpu_count": 2, "cpu_model": "test"},
        "facts": FACTS,
        "marketplace": {"stores": [{"name": "Ada's Atelier 1"}, {"name": "Bisi's Studio 2"}], "skipped": {}},
    }
    report["verdict"] = verdict(report)
    text = "\n".join(summary_lines(report))
    assert (
        "marketplace: 2 stores; parts {'delivered': 1, 'packed': 1, 'shipped': 1}; returns {'refunded': 1}"
        in text
    )
    assert "SIGTERM worker-other" in text
    assert "409 out_of_stock x2" in text
    assert "verdict: PASS" in text
    markdown = render_markdown(report)
    assert "| detail |" in markdown
    assert "| 409 out_of_stock | 2 | order | yes |" in markdown
