"""The shipped body-measurement calibration on a held-out set of shoppers, per body band.

    python -m training.body.evaluate [--seed 2026] [--per-band 40] [--card]

Bodies come from ``population.sample_shopper`` in a stream of their own (never used for fitting),
the first ``--per-band`` of each waist-to-height band (``population.BANDS``), rendered front and
side and put through the real segmentation and pose models, the real photo checks and the shipped
calibration. Printed per band: how many, the share refused per failure code, the MAE of chest,
waist, hip and the lengths, and how often the stated interval contains the truth when the
calibration states intervals. An extra row holds the bodies with chest 105-125 cm and a waist of
at least 0.9 x chest, whatever their band. Deterministic from --seed; ``--card`` writes the report
into the calibration's MODEL_CARD.md.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from inference.body_measure.calibration import CALIBRATION_PATH
from inference.body_measure.errors import FAILURE_CODES, MeasurementRejected
from inference.body_measure.measurer import BodyMeasurer
from training.body.population import BANDS, is_round_large, stratified

SIZE = (540, 960)
GIRTHS = ("chest_cm", "waist_cm", "hip_cm")
LENGTHS = ("shoulder_breadth_cm", "arm_length_cm", "leg_length_cm", "shoulder_to_crotch_cm")
ROUND_LARGE = "chest 105-125, waist>=0.9 chest"
CARD_START, CARD_END = "<!-- eval-body -->", "<!-- /eval-body -->"

_measurer: BodyMeasurer | None = None


def _init_worker(calibration: Path) -> None:
    global _measurer  # noqa: PLW0603  # one measurer per worker process
    from inference.body_measure.measurer import load_body_measurer  # noqa: PLC0415
    from inference.manifest import all_manifests  # noqa: PLC0415

    _measurer = load_body_measurer(all_manifests(), intra_op_threads=1, calibration=calibration)


def measure_shopper(job: tuple[int, int, str, int]) -> dict[str, Any]:
    """Render held-out shopper ``index`` and measure it with the shipped calibration."""
    from training.body.population import sample_shopper  # noqa: PLC0415
    from training.body.render import framed_pair  # noqa: PLC0415

    seed, index, band, stream = job
    assert _measurer is not None
    rng = np.random.default_rng([seed, stream, index])
    body = sample_shopper(rng)
    pair = framed_pair(body, rng, size=SIZE)
    row: dict[str, Any] = {"index": index, "band": band, "round_large": is_round_large(body),
                           "truth": body.measurements}  # fmt: skip
    try:
        result = _measurer.measure(pair.front.jpeg, pair.side.jpeg, body.measurements["height_cm"])
    except MeasurementRejected as exc:
        row["failure"] = exc.code
        return row
    row["measured"] = result.measurements
    row["interval"] = result.intervals
    return row


def summarise(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per band (and the round-large group and everyone): counts, refusals, MAE, coverage."""
    groups: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in BANDS}
    groups[ROUND_LARGE] = []
    groups["all"] = []
    for row in rows:
        groups[row["band"]].append(row)
        groups["all"].append(row)
        if row["round_large"]:
            groups[ROUND_LARGE].append(row)
    return {name: _group(members) for name, members in groups.items()}


def _group(members: list[dict[str, Any]]) -> dict[str, Any]:
    measured = [r for r in members if "measured" in r]
    refused = Counter(r["failure"] for r in members if "failure" in r)
    out: dict[str, Any] = {
        "count": len(members),
        "refused": round(sum(refused.values()) / max(len(members), 1), 4),
        "refused_by_code": {code: refused[code] for code in FAILURE_CODES if refused[code]},
        "mae": {},
        "coverage": {},
    }
    for key in (*GIRTHS, *LENGTHS):
        errors = [abs(r["measured"][key] - r["truth"][key]) for r in measured]
        out["mae"][key] = round(float(np.mean(errors)), 2) if errors else None
        inside = [
            r["interval"][key][0] <= r["truth"][key] <= r["interval"][key][1]
            for r in measured
            if r["interval"].get(key)
        ]
        out["coverage"][key] = round(float(np.mean(inside)), 3) if inside else None
    return out


def table(summary: dict[str, dict[str, Any]], level: float | None) -> str:
    keys = (*GIRTHS, *LENGTHS)
    short = {"shoulder_breadth_cm": "shoulder", "arm_length_cm": "arm", "leg_length_cm": "leg",
             "shoulder_to_crotch_cm": "torso"}  # fmt: skip
    names = [short.get(k, k.removesuffix("_cm")) for k in keys]
    head = "| band | bodies | refused | refused by code | " + " | ".join(f"{n} MAE" for n in names)
    head += " | interval coverage (chest/waist/hip) |" if level else " |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for band, g in summary.items():
        codes = ", ".join(f"{c} {n}" for c, n in g["refused_by_code"].items()) or "-"
        maes = " | ".join("-" if g["mae"][k] is None else f"{g['mae'][k]:.2f}" for k in keys)
        line = f"| {band} | {g['count']} | {g['refused']:.1%} | {codes} | {maes} |"
        if level:
            cover = "/".join("-" if g["coverage"][k] is None else f"{g['coverage'][k]:.0%}" for k in GIRTHS)
            line += f" {cover} |"
        lines.append(line)
    girth_best = {
        k: min(g["mae"][k] for n, g in summary.items() if n in _band_names() and g["mae"][k]) for k in GIRTHS
    }
    worst = {
        k: max(g["mae"][k] for n, g in summary.items() if n in _band_names() and g["mae"][k]) for k in GIRTHS
    }
    lines.append("")
    lines.append(
        "Worst band's MAE / best band's (target ≤ 1.5): "
        + ", ".join(f"{k.removesuffix('_cm')} {worst[k] / girth_best[k]:.2f}" for k in GIRTHS)
        + (f". Stated interval level: {level:.0%}." if level else ". The calibration states no intervals.")
    )
    lines.append(_misses(summary, level))
    return "\n".join(lines)


def _misses(summary: dict[str, dict[str, Any]], level: float | None) -> str:
    """The bands that miss the refusal target (2 %) and the coverage target (level ± 5 points)."""
    bands = {name: g for name, g in summary.items() if name in _band_names()}
    refused = [f"{name} {g['refused']:.1%}" for name, g in bands.items() if g["refused"] > 0.02]
    text = "Bands refusing more than 2 %: " + (", ".join(refused) or "none") + "."
    if level:
        off = [
            f"{name} {key.removesuffix('_cm')} {g['coverage'][key]:.0%}"
            for name, g in bands.items()
            for key in GIRTHS
            if g["coverage"][key] is not None and abs(g["coverage"][key] - level) > 0.05
        ]
        text += " Interval coverage more than 5 points off: " + (", ".join(off) or "none") + "."
    return text


def _band_names() -> set[str]:
    return {name for name, _, _ in BANDS}


def write_card(text: str, path: Path) -> None:
    write_block(path, (CARD_START, CARD_END), text)


def write_block(path: Path, markers: tuple[str, str], text: str, *, before: str | None = None) -> None:
    """``text`` between ``markers`` in the card at ``path``, replacing what they held; a card
    without them gets the block before the line starting ``before`` if there is one, else at
    the end."""
    start, end = markers
    card = path.read_text()
    block = f"{start}\n{text}\n{end}"
    if start in card:
        head, rest = card.split(start, 1)
        card = head + block + rest.split(end, 1)[1]
    elif before is not None and before in card:
        card = card.replace(before, block + "\n\n" + before, 1)
    else:
        card = card.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(card)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--per-band", type=int, default=40)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--calibration", type=Path, default=CALIBRATION_PATH)
    parser.add_argument("--card", action="store_true", help="write the report into its MODEL_CARD.md")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    stream = 7  # the held-out stream: training draws from other streams
    jobs = [(args.seed, index, band, stream) for index, band in stratified(args.seed, args.per_band, stream)]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(args.workers, initializer=_init_worker, initargs=(args.calibration,)) as pool:
        rows = list(pool.imap(measure_shopper, jobs, chunksize=2))
    from inference.body_measure.calibration import Calibration  # noqa: PLC0415

    level = Calibration.load(args.calibration).raw.get("interval_level")
    summary = summarise(rows)
    report = table(summary, level)
    elapsed = time.perf_counter() - started
    header = (
        f"**Per-band held-out evaluation** (`just eval-body --seed {args.seed} --per-band {args.per_band}`: "
        f"shoppers from `training/body/population.py`, {SIZE[0]} x {SIZE[1]} photos, real models, real "
        "checks, the shipped calibration; MAE in cm over the measured bodies):"
    )
    print(header + "\n\n" + report)
    print(f"{len(rows)} bodies in {elapsed:.0f} s")
    if args.card:
        write_card(header + "\n\n" + report, args.calibration.parent / "MODEL_CARD.md")


if __name__ == "__main__":
    main()
