"""The benchmark suite's pure parts: verdicts against targets.toml, the parsers of wrk's, pgbench's
and py-spy's output, the report and the comparison of two result files (no stack, no load)."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from benchmarks.suite.compare import compare
from benchmarks.suite.measure import per_request
from benchmarks.suite.profile import summarise_folded
from benchmarks.suite.report import floor_rows, render_markdown, replace_latest, run_completed, write_results
from benchmarks.suite.runs import PGBENCH_SQL, parse_pgbench
from benchmarks.suite.targets import at_rate, evaluate, load_targets
from benchmarks.suite.wrk import UNIQUE, WrkRequest, parse_output

TARGETS: dict[str, dict[str, Any]] = {
    "product_detail": {"p95_ms": 10, "rate": 1500, "min_floor_ratio": 0.6},
    "similar": {"p95_ms": 15, "rate": 200, "min_recall": 0.95, "min_floor_ratio": 0.6},
    "orders": {"p95_ms": 50, "rate": 100, "zero_oversell": True, "min_floor_ratio": 0.5},
    "memory": {"api_rss_mb": 200, "inference_worker_rss_mb": 350},
}


def run(rate: float, p95: float | None, errors: int = 0) -> dict[str, Any]:
    return {"offered_rate": rate, "errors": errors, "latency_ms": {"p50": 1.0, "p95": p95, "p99": 20.0}}


def by_check(verdicts: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(v["scenario"], v["check"]): v for v in verdicts}


def test_the_committed_targets_file_has_every_scenario_of_the_issue() -> None:
    targets = load_targets()
    assert targets["product_detail"] == {"p95_ms": 10, "rate": 1500, "min_floor_ratio": 0.6}
    assert targets["orders"]["zero_oversell"] is True
    # Issue #19: every endpoint judged against its own floor; reads 0.6, order creation 0.5.
    reads = ("product_detail", "listing", "search", "similar", "fit_products", "product_fit")
    assert {name: targets[name]["min_floor_ratio"] for name in reads} == dict.fromkeys(reads, 0.6)
    assert targets["orders"]["min_floor_ratio"] == 0.5
    assert targets["memory"] == {"api_rss_mb": 200, "inference_worker_rss_mb": 350}
    expected = {
        "listing",
        "search",
        "similar",
        "fit_products",
        "product_fit",
        "login",
        "photo_measurement",
        "photo_search",
        "photo_search_phone",
    }
    assert expected <= set(targets)
    # SPEC.md's figures (issue #19): Argon2id at OWASP's parameters, photo search at 200 ms.
    assert targets["login"] == {"p95_ms": 100, "rate": 10}
    assert targets["photo_search"] == {"p95_ms": 200, "rate": 10}
    # Issue #19's headline: the browsing mix at 1,500 req/s offered, p95 under 100 ms, no errors.
    assert targets["browsing_mix"] == {"p95_ms": 100, "rate": 1500}


def test_verdicts_pass_fail_and_say_by_how_much() -> None:
    results = {
        "scenarios": {
            "product_detail": {
                "open_loop": [run(375, 3.0), run(1500, 12.5)],
                "closed_loop": {"floor_ratio": 0.4},
            },
            "similar": {
                "open_loop": [run(200, 9.0)],
                "recall": {"recall_at_k": 0.97},
                "closed_loop": {"floor_ratio": 0.55},
            },
            "orders": {
                "open_loop": [run(100, 20.0)],
                "integrity": {"ok": True},
                "contention": {"ok": False},
                "closed_loop": {"floor_ratio": 0.55},
            },
        },
        "memory": {"api_rss_mb": 150.0, "inference_worker_rss_mb": 400.0},
    }
    verdicts = by_check(evaluate(results, TARGETS))
    p95 = verdicts[("product_detail", "p95")]
    # Judged at the target's rate (1500), not at the lower rate that passed.
    assert (p95["pass"], p95["measured"]) == (False, 12.5)
    assert p95["miss"] == "+2.5 ms over (1.25x the limit)"
    ratio = verdicts[("product_detail", "floor_ratio")]
    assert ratio["pass"] is False
    assert ratio["miss"] == "0.2 x short (0.67 of the target)"
    assert "of its own floor's" in ratio["target"]
    assert verdicts[("similar", "p95")]["pass"] is True
    assert verdicts[("similar", "recall")]["pass"] is True
    # The same ratio to its own floor: short for a read (0.6), enough for order creation (0.5).
    assert verdicts[("similar", "floor_ratio")]["pass"] is False
    assert verdicts[("orders", "floor_ratio")]["pass"] is True
    assert verdicts[("orders", "zero_oversell")]["pass"] is False
    assert verdicts[("memory", "api_rss_mb")]["pass"] is True
    assert verdicts[("memory", "inference_worker_rss_mb")]["pass"] is False


def test_errors_fail_a_latency_target_and_unmeasured_targets_are_not_judged() -> None:
    results = {"scenarios": {"similar": {"open_loop": [run(200, 5.0, errors=3)]}, "orders": {}}, "memory": {}}
    verdicts = by_check(evaluate(results, TARGETS))
    assert verdicts[("similar", "p95")]["pass"] is False
    assert verdicts[("similar", "p95")]["miss"] == "3 errors"
    assert verdicts[("similar", "recall")]["pass"] is None
    assert verdicts[("orders", "p95")]["pass"] is None
    assert verdicts[("orders", "p95")]["note"] == "not run at the target's rate"
    assert verdicts[("orders", "zero_oversell")]["pass"] is None
    assert verdicts[("product_detail", "floor_ratio")]["pass"] is None
    assert verdicts[("orders", "floor_ratio")]["pass"] is None
    assert verdicts[("memory", "api_rss_mb")]["pass"] is None


def test_a_run_below_the_targets_rate_does_not_count_for_it() -> None:
    found = at_rate([run(50, 1.0), run(100, 2.0), run(200, 3.0)], 100)
    assert found is not None
    assert found["offered_rate"] == 100
    assert at_rate([run(50, 1.0)], 100) is None


def test_wrk_output_is_read_from_the_scripts_json_line() -> None:
    stdout = (
        "Running 5s test @ http://127.0.0.1:8000\n"
        'WRK_JSON {"requests":1000,"duration_us":5000000,"bytes":1,"errors":{"connect":0,"read":0,"write":0,'
        '"status":50,"timeout":2},"latency_us":{"min":500,"mean":2500.5,"max":90000,"p50":2000,"p90":4000,'
        '"p95":5000,"p99":12000}}\n'
    )
    parsed = parse_output(stdout)
    assert parsed["achieved_rate"] == 200.0
    assert parsed["ok_rate"] == 190.0
    assert parsed["errors"] == 52
    assert parsed["errors_by_kind"] == {"status": 50, "timeout": 2}
    assert parsed["latency_ms"]["p95"] == 5.0
    with pytest.raises(ValueError, match="no result"):
        parse_output("unable to connect to 127.0.0.1:8000 Connection refused\n")


def test_wrk_request_lines_refuse_what_the_lua_script_cannot_split() -> None:
    line = WrkRequest("/api/v1/orders", "POST", {"Idempotency-Key": UNIQUE}, '{"a": 1}').line()
    assert line == 'POST\t/api/v1/orders\tIdempotency-Key: {unique}\t{"a": 1}'
    with pytest.raises(ValueError, match="tab or a newline"):
        WrkRequest("/x", body="a\tb").line()
    with pytest.raises(ValueError, match="holds '\\|'"):
        WrkRequest("/x", headers={"X-A": "a|b"}).line()


def test_pgbench_summary_and_script() -> None:
    out = (
        "number of transactions actually processed: 15220\nnumber of failed transactions: 0 (0.000%)\n"
        "latency average = 2.628 ms\ntps = 3044.210000 (without initial connection time)\n"
    )
    assert parse_pgbench(out) == {
        "achieved_rate": 3044.2,
        "latency_ms_mean": 2.628,
        "transactions": 15220,
        "errors": 0,
    }
    with pytest.raises(ValueError, match="no tps"):
        parse_pgbench("pgbench: error: connection to server failed")
    # pgbench reads ":name" as its own variables: only :n may be left in the script.
    assert ":product_id" not in PGBENCH_SQL
    assert ":viewer" not in PGBENCH_SQL
    assert ":n)" in PGBENCH_SQL


def test_py_spy_folded_stacks_become_inclusive_shares_below_the_servers_own_frames() -> None:
    folded = (
        "run (asyncio/runners.py:1);handle (api/app.py:10);detail (db/listing.py:5) 60\n"
        "run (asyncio/runners.py:1);handle (api/app.py:10);log (core/logging.py:3) 30\n"
        "run (asyncio/runners.py:1);select (selectors.py:1) 10\n"
    )
    summary = summarise_folded(folded)
    assert summary["samples"] == 100
    shares = {item["frame"]: item["share"] for item in summary["inclusive"]}
    assert shares == {
        "handle (api/app.py)": 0.9,
        "detail (db/listing.py)": 0.6,
        "log (core/logging.py)": 0.3,
        "select (selectors.py)": 0.1,
    }
    assert summarise_folded("") == {"samples": 0, "inclusive": []}
    # granian's process and worker frames sit on every request's stack and say nothing.
    served = summarise_folded(
        "serve (granian/server/mp.py:9);handle (api/app.py:10) 5\n"
        "serve (granian/server/mp.py:9);accept (granian/io.py:2) 5\n"
    )
    assert [item["frame"] for item in served["inclusive"]] == ["handle (api/app.py)"]


def test_report_and_comparison_name_every_scenario_and_changed_verdict() -> None:
    a: dict[str, Any] = {
        "finished_at": "A",
        "scenarios": {
            "similar": {
                "open_loop": [run(200, 20.0)],
                "closed_loop": {
                    "achieved_rate": 100.0,
                    "floor_ratio": 0.2,
                    "cpu_ms_per_request": 6.5,
                    "pg_ms_per_request": 2.0,
                },
            }
        },
    }
    b: dict[str, Any] = {
        "finished_at": "B",
        "scenarios": {
            "similar": {
                "open_loop": [run(200, 10.0)],
                "closed_loop": {
                    "achieved_rate": 150.0,
                    "floor_ratio": 0.3,
                    "cpu_ms_per_request": 4.25,
                    "pg_ms_per_request": 1.5,
                },
            }
        },
    }
    a["targets"] = evaluate(a, TARGETS)
    b["targets"] = evaluate(b, TARGETS)
    text = compare(a, b, TARGETS)
    assert "similar" in text
    assert "-10" in text  # p95 delta, ms
    assert "+50 (1.50x)" in text  # closed-loop throughput delta
    assert "similar/p95: FAIL 20 -> PASS 10 (changed)" in text
    assert "6.5/4.25" in text  # the API's CPU per request, A/B
    assert "2/1.5" in text  # PostgreSQL's time per request, A/B
    assert "similar/floor_ratio: FAIL 0.2 -> FAIL 0.3" in text
    markdown = render_markdown(b | {"quick": True, "machine": {"cpu_count": 2}})
    assert "| similar | p95 < 15 ms at 200 req/s offered | 10.0 | PASS |" in markdown
    assert "| similar | closed (None conn) | - | 150.0 |" in markdown
    assert "| 4.25 | - | 0.300 |" in markdown  # the closed loop's API CPU per request, its floor ratio


def test_each_scenario_is_reported_against_its_own_floor_with_cpu_and_postgres_time() -> None:
    wrk = {"requests": 2000, "ok_rate": 400.0, "latency_ms": {"p50": 1.0, "p95": 2.0, "p99": 3.0}}
    pg = {"calls": 6000, "exec_ms": 1500.0, "plan_ms": 500.0}
    api = per_request(wrk, 3.0, pg) | {"floor_ratio": 0.5}
    assert api["cpu_ms_per_request"] == 1.5
    assert api["pg_ms_per_request"] == 1.0
    assert api["pg"] == {
        "statements_per_request": 3.0,
        "exec_ms_per_request": 0.75,
        "plan_ms_per_request": 0.25,
    }
    floor = per_request(wrk | {"ok_rate": 800.0}, 1.0, pg | {"calls": 4000})
    assert per_request(wrk, 1.0, None)["pg_ms_per_request"] is None  # pg_stat_statements unavailable
    report: dict[str, Any] = {
        "scenarios": {"similar": {"closed_loop": api}},
        "floor": {"scenarios": {"similar": floor, "orders": per_request(wrk, 1.0, pg)}},
        "pg_planning_tracked": True,
    }
    report["targets"] = evaluate(report, TARGETS)
    rows = {row[0]: row for row in floor_rows(report)}
    assert rows["similar"] == [
        "similar",
        400.0,
        800.0,
        "0.500",
        ">= 0.6 FAIL",
        "1.50",
        "0.50",
        "1.00",
        "1.00",
        "3.00 / 2.00",
    ]
    # A floor whose API run failed: the floor's figures, nothing invented for the API.
    assert rows["orders"][1:5] == [None, 400.0, "-", ">= 0.5 n/a"]
    markdown = render_markdown(report)
    assert (
        "| similar | 400.0 | 800.0 | 0.500 | >= 0.6 FAIL | 1.50 | 0.50 | 1.00 | 1.00 | 3.00 / 2.00 |"
        in markdown
    )
    assert "(execution + planning)" in markdown


# --- results: a run's own files always, the committed latest ones only when it completed -------

STAMP = "20270101T120000Z"


def _suite_report(failures: dict[str, str]) -> dict[str, Any]:
    return {"benchmark": "suite", "quick": False, "scenarios": {}, "failures": failures, "finished_at": "now"}


def _committed_latest(results: Path) -> dict[str, bytes]:
    files = {
        "latest.json": b'{"committed": true}\n',
        "latest.md": b"# the committed run\n",
        "latest-percentiles.png": b"committed plot",
        "latest-rates.png": b"committed plot",
    }
    for name, data in files.items():
        (results / name).write_bytes(data)
    return files


def _contents(results: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(results.iterdir())}


def test_a_completed_run_becomes_the_latest_and_keeps_its_own_copy(tmp_path: Path) -> None:
    _committed_latest(tmp_path)
    # A scenario that failed inside the run is one of its results: the run still completed.
    report = _suite_report({"orders": "RuntimeError: wrk exited 1"})
    assert run_completed(report)
    own = write_results(report, tmp_path, STAMP)
    (tmp_path / f"bench-{STAMP}-percentiles.png").write_bytes(b"this run's plot")  # its rates plot failed
    replaced = replace_latest(report, tmp_path, STAMP)

    assert [p.name for p in own] == [f"bench-{STAMP}.json", f"bench-{STAMP}.md"]
    assert sorted(p.name for p in replaced) == ["latest-percentiles.png", "latest.json", "latest.md"]
    assert json.loads((tmp_path / "latest.json").read_text()) == report
    assert (tmp_path / "latest.json").read_text() == (tmp_path / f"bench-{STAMP}.json").read_text()
    assert (tmp_path / "latest-percentiles.png").read_bytes() == b"this run's plot"
    assert not (tmp_path / "latest-rates.png").exists()  # not left over from the committed run
    latest_md, own_md = (tmp_path / "latest.md").read_text(), (tmp_path / f"bench-{STAMP}.md").read_text()
    assert "(latest-percentiles.png)" in latest_md
    assert f"(bench-{STAMP}-percentiles.png)" in own_md
    assert "RuntimeError: wrk exited 1" in latest_md
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


@pytest.mark.parametrize("reason", ["interrupted", "RuntimeError: PostgreSQL did not start"])
def test_a_run_that_did_not_complete_leaves_the_latest_results_as_they_were(
    tmp_path: Path, reason: str
) -> None:
    committed = _committed_latest(tmp_path)
    report = _suite_report({"run": reason})
    assert not run_completed(report)
    write_results(report, tmp_path, STAMP)
    (tmp_path / f"bench-{STAMP}-rates.png").write_bytes(b"this run's plot")
    assert replace_latest(report, tmp_path, STAMP) == []
    files = _contents(tmp_path)
    assert {name: files[name] for name in committed} == committed
    assert json.loads(files[f"bench-{STAMP}.json"])["failures"] == {"run": reason}


def test_an_interrupted_suite_run_writes_only_its_own_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``just bench`` stopped with Ctrl-C before any scenario: main's own path, plots included."""
    from benchmarks.suite import cli

    committed = _committed_latest(tmp_path)

    def interrupted(*_: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "run", interrupted)
    monkeypatch.setattr(signal, "signal", lambda *_: None)  # leave the test process's handlers be
    assert cli.main(["--quick", "--results-dir", str(tmp_path)]) == 130
    files = _contents(tmp_path)
    assert {name: files[name] for name in committed} == committed
    own = {name for name in files if name.startswith("bench-")}
    assert {n.split(".")[-1] for n in own} >= {"json", "md"}
    report = json.loads(next(files[n] for n in own if n.endswith(".json")))
    assert report["failures"]["run"] == "interrupted"


def _mix_run(rate: float, p95: float, errors: int = 0) -> dict[str, Any]:
    cpus = {
        "api": 0.97,
        "postgres": 0.41,
        "redis": 0.08,
        "workers": 0.02,
        "load_generator": 0.35,
        "others": 0.1,
    }
    answers = {"by_status": {"200": 6000, "304": 3000}, "not_modified_share": 0.3333}
    return run(rate, p95, errors) | {"achieved_rate": rate, "answers": answers, "cpu_split": {"cpus": cpus}}


def test_the_browsing_mix_is_judged_at_1500_and_reported_with_its_304s_and_cpu_split() -> None:
    targets = load_targets()
    composition = {"requests": 9000, "by_kind": {"product_detail": 4050}, "public_revalidating_share": 0.5}
    result = {"composition": composition, "open_loop": [_mix_run(750, 20.0), _mix_run(1500, 80.0)]}
    report: dict[str, Any] = {"scenarios": {"browsing_mix": result}}
    verdict = by_check(evaluate(report, targets))[("browsing_mix", "p95")]
    assert verdict["target"] == "p95 < 100 ms at 1500 req/s offered"
    assert (verdict["pass"], verdict["measured"]) == (True, 80.0)  # the run at 1500, not at 750
    failing = {"scenarios": {"browsing_mix": result | {"open_loop": [_mix_run(1500, 80.0, errors=2)]}}}
    assert by_check(evaluate(failing, targets))[("browsing_mix", "p95")]["miss"] == "2 errors"
    slow = {"scenarios": {"browsing_mix": result | {"open_loop": [_mix_run(1500, 130.0)]}}}
    assert by_check(evaluate(slow, targets))[("browsing_mix", "p95")]["pass"] is False
    left_out = by_check(evaluate({"scenarios": {}}, targets))[("browsing_mix", "p95")]
    assert left_out["pass"] is None

    report["targets"] = evaluate(report, targets)
    markdown = render_markdown(report)
    assert "## Browsing mix (page cache on)" in markdown
    assert "0.50 of the public ones sent with `If-None-Match`" in markdown
    assert (
        "| 304s | API CPUs | PostgreSQL CPUs | Redis CPUs | workers CPUs | load generator CPUs |" in markdown
    )
    assert (
        "| 1,500 | 1,500 | 0 | 1.0 | 80.0 | 20.0 | 33.3% | 0.97 | 0.41 | 0.08 | 0.02 | 0.35 | 0.10 |"
        in markdown
    )
    assert "| browsing_mix | p95 < 100 ms at 1500 req/s offered | 80.0 | PASS |" in markdown
    assert "Browsing mix" not in render_markdown({"scenarios": {}})  # not run: no section
