"""``benchmarks/targets.toml`` and the verdicts of one result file against it.

A verdict is ``pass`` True/False, or None when the run did not measure it (a scenario left out,
a rate not offered, a failed step); a miss says by how much.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

TARGETS = Path(__file__).resolve().parents[1] / "targets.toml"
JsonDict = dict[str, Any]


def load_targets(path: Path = TARGETS) -> dict[str, JsonDict]:
    with path.open("rb") as f:
        return tomllib.load(f)


def _verdict(
    scenario: str,
    check: str,
    text: str,
    measured: float | None,
    limit: float,
    unit: str,
    *,
    at_least: bool = False,
    note: str | None = None,
) -> JsonDict:
    if measured is None:
        passed, miss = None, None
    elif at_least:
        passed = measured >= limit
        miss = (
            None if passed else f"{limit - measured:.3g} {unit} short ({measured / limit:.2f} of the target)"
        )
    else:
        passed = measured < limit
        miss = None if passed else f"{measured - limit:+.3g} {unit} over ({measured / limit:.2f}x the limit)"
    return {
        "scenario": scenario,
        "check": check,
        "target": text,
        "measured": measured,
        "limit": limit,
        "unit": unit,
        "pass": passed,
        "miss": miss,
        "note": note,
    }


def at_rate(runs: list[JsonDict], rate: float) -> JsonDict | None:
    """The open-loop run offered at the target's rate (the lowest offered rate at or above it)."""
    eligible = [r for r in runs if r.get("offered_rate", 0) >= rate * 0.999]
    return min(eligible, key=lambda r: r["offered_rate"]) if eligible else None


def _floor(results: JsonDict, name: str) -> JsonDict:
    """The scenario's floor runs (the product page's open loop is the floor's own)."""
    floor = results.get("floor") or {}
    own = dict((floor.get("scenarios") or {}).get(name) or {})
    if name == "product_detail" and floor.get("open_loop"):
        own["open_loop"] = floor["open_loop"]
    return own


def _floor_note(floor: JsonDict, target: JsonDict) -> str | None:
    """What the scenario's floor did at the target's rate: whether the miss is the machine's."""
    run = at_rate(floor.get("open_loop") or [], float(target["rate"]))
    p95 = ((run or {}).get("latency_ms") or {}).get("p95")
    if run is not None and p95 is not None:
        verdict = "misses it too" if p95 >= target["p95_ms"] or run.get("errors") else "meets it"
        return f"its floor at the same rate: p95 {p95:,.1f} ms ({verdict})"
    capacity = floor.get("ok_rate")
    if capacity is not None and capacity < float(target["rate"]):
        return f"its floor's maximum is {capacity:,.0f} req/s, under the target's rate (misses it too)"
    return None


def _latency(name: str, target: JsonDict, result: JsonDict, floor: JsonDict | None = None) -> JsonDict:
    unit_rate = "pairs/s" if name == "photo_measurement" else "req/s"
    text = f"p95 < {target['p95_ms']:g} ms at {target['rate']:g} {unit_rate} offered"
    run = at_rate(result.get("open_loop") or [], float(target["rate"]))
    if run is None:
        return _verdict(name, "p95", text, None, target["p95_ms"], "ms", note="not run at the target's rate")
    p95 = (run.get("latency_ms") or {}).get("p95")
    verdict = _verdict(name, "p95", text, p95, float(target["p95_ms"]), "ms")
    if run.get("errors") and verdict["pass"]:
        verdict |= {"pass": False, "miss": f"{run['errors']} errors"}
    elif run.get("errors"):
        verdict["note"] = f"{run['errors']} errors"
    if verdict["pass"] is False and floor:
        notes = [n for n in (verdict["note"], _floor_note(floor, target)) if n]
        verdict["note"] = "; ".join(notes) or None
    return verdict


def evaluate(results: JsonDict, targets: dict[str, JsonDict]) -> list[JsonDict]:
    out: list[JsonDict] = []
    scenarios = results.get("scenarios") or {}
    for name, target in targets.items():
        if name == "memory":
            continue
        result = scenarios.get(name) or {}
        if "p95_ms" in target:
            out.append(_latency(name, target, result, _floor(results, name)))
        if "min_floor_ratio" in target:
            ratio = (result.get("closed_loop") or {}).get("floor_ratio")
            out.append(
                _verdict(
                    name,
                    "floor_ratio",
                    f"max throughput >= {target['min_floor_ratio']:.0%} of its own floor's "
                    "(the same SQL in a bare Litestar + asyncpg + msgspec handler)",
                    ratio,
                    float(target["min_floor_ratio"]),
                    "x",
                    at_least=True,
                )
            )
        if "min_recall" in target:
            recall = (result.get("recall") or {}).get("recall_at_k")
            out.append(
                _verdict(
                    name,
                    "recall",
                    f"recall@10 >= {target['min_recall']} vs exact search",
                    recall,
                    float(target["min_recall"]),
                    "",
                    at_least=True,
                )
            )
        if target.get("zero_oversell"):
            checks = [result.get("integrity"), result.get("contention")]
            ok = None if any(c is None for c in checks) else all(c.get("ok") for c in checks if c)
            out.append(
                {
                    "scenario": name,
                    "check": "zero_oversell",
                    "limit": None,
                    "unit": "",
                    "target": "zero oversell: stock never negative, reserved = units of unpaid orders, "
                    "a contended variant sells exactly its stock",
                    "measured": ok,
                    "pass": ok,
                    "miss": None if ok is not False else "integrity check failed (see the scenario)",
                    "note": None,
                }
            )
    memory, limits = results.get("memory") or {}, targets.get("memory") or {}
    for key, label in (("api_rss_mb", "API worker"), ("inference_worker_rss_mb", "inference worker")):
        if key in limits:
            measured = memory.get(key)
            out.append(
                _verdict(
                    "memory",
                    key,
                    f"{label} RSS < {limits[key]:g} MB after the run",
                    measured,
                    float(limits[key]),
                    "MB",
                )
            )
    return out
