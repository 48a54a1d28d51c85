"""How much does the order of a pair's two calls move a row, and would balancing it help?

``python analyze.py RUN1.json RUN2.json OUT.json``: two default runs of one commit, stored
with ``--benchmark-save-data`` (each row's own call times in ``stats.data``, the baseline
calls paired with them in ``extra_info.baseline_interleaved_s``, pair by pair, A B then
B A as :func:`hpml.bench.paired.measure_pairs` takes them).

For every paired row of both runs it computes, from the stored pairs alone:

* the order effect: how much slower the baseline reads in the B A pairs, where it follows
  the optimization's call, than in the A B pairs, where it follows a baseline call, and
  the same for the per-pair ratios (median over B A pairs / median over A B pairs);
* the speedup by two estimators: ``plain``, hpml's (the median of the per-pair ratios,
  :func:`hpml.bench.paired.paired_speedup`, re-implemented here as :func:`plain_speedup`),
  and ``balanced`` (:func:`balanced_speedup`: each order's ratios moved to one common
  median first), with their intervals.  Each row's stored interval must match one of the
  two, which also checks that the stored pairs are the ones it came from.

Then it rewrites both runs with each estimator's speedups (significance against the runs'
stored noise floors, :func:`hpml.bench.screen.finalize`; the A/A controls' raw pairs are
not stored) and gives ``compare_runs``' report for each: the same pairs, two estimators.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

from hpml.bench.compare_runs import report
from hpml.bench.paired import FINAL_RESAMPLES, LEVEL, PairedResult, median_rank_interval, pair_ratios
from hpml.bench.screen import finalize


def plain_speedup(ratios: np.ndarray) -> tuple[float, tuple[float, float]]:
    """``paired_speedup`` before the order balancing: the plain median of the per-pair
    ratios, with the same bootstrap, seed and rank widening."""
    n, logs = len(ratios), np.log(ratios)
    estimate = float(np.median(ratios))
    rng = np.random.default_rng(0)
    medians = np.median(logs[rng.integers(0, n, size=(FINAL_RESAMPLES, n))], axis=1)
    tail = (1 - LEVEL) / 2 * 100
    lo, hi = np.exp(np.percentile(medians, [tail, 100 - tail]))
    ordered = np.sort(ratios)
    rank_lo, rank_hi = median_rank_interval(n)
    return estimate, (min(float(lo), float(ordered[rank_lo]), estimate), max(float(hi), float(ordered[rank_hi]), estimate))


def order_balanced(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Log ratios of the A B pairs (``first``) and the B A pairs (``second``), each order
    moved so that its median becomes the mean of the two orders' medians (last axis: pairs)."""
    m_first = np.median(first, axis=-1, keepdims=True)
    m_second = np.median(second, axis=-1, keepdims=True)
    middle = (m_first + m_second) / 2
    return np.concatenate([first - (m_first - middle), second - (m_second - middle)], axis=-1)


def balanced_speedup(base: list[float], opt: list[float]) -> PairedResult:
    """The estimator tried here and not adopted (README): the median of the order-balanced
    ratios; the bootstrap resamples the A B and B A pairs each from their own and balances
    every resample; the rank interval is over the balanced ratios."""
    logs = np.log(pair_ratios(base, opt))
    first, second = logs[0::2], logs[1::2]
    balanced = order_balanced(first, second)
    estimate = float(np.exp(np.median(balanced)))
    rng = np.random.default_rng(0)
    medians = np.median(order_balanced(first[rng.integers(0, len(first), size=(FINAL_RESAMPLES, len(first)))],
                                       second[rng.integers(0, len(second), size=(FINAL_RESAMPLES, len(second)))]),
                        axis=-1)
    tail = (1 - LEVEL) / 2 * 100
    lo, hi = np.exp(np.percentile(medians, [tail, 100 - tail]))
    ordered = np.exp(np.sort(balanced))
    rank_lo, rank_hi = median_rank_interval(len(logs))
    lo, hi = min(float(lo), float(ordered[rank_lo])), max(float(hi), float(ordered[rank_hi]))
    return PairedResult(estimate, (min(lo, estimate), max(hi, estimate)), len(logs))


def _same(a: tuple[float, float], b: list[float]) -> bool:
    return abs(a[0] / b[0] - 1) < 1e-3 and abs(a[1] / b[1] - 1) < 1e-3


def pairs_of(bench: dict) -> tuple[list[float], list[float]] | None:
    info = bench.get("extra_info") or {}
    base = info.get("baseline_interleaved_s")
    opt = (bench.get("stats") or {}).get("data")
    if not base or not opt or len(base) != len(opt) or info.get("speedup_pairs") != len(opt):
        return None
    return base, opt


def estimates(path: Path) -> tuple[dict, list[dict]]:
    """The run's JSON and, per paired row, both estimators' results from its stored pairs.
    Which estimator the run recorded with is found by matching its stored interval; the
    samples-per-call scale by dividing its stored estimate by that estimator's at scale 1."""
    data = json.loads(path.read_text())
    rows = []
    for bench in data["benchmarks"]:
        info = bench["extra_info"]
        pairs = pairs_of(bench)
        if pairs is None or not info.get("speedup_interval") or info.get("optimization") == "baseline":
            continue
        base, opt = pairs
        raw = pair_ratios(base, opt)
        plain, plain_iv = plain_speedup(raw)
        balanced = balanced_speedup(base, opt)
        stored = info["speedup_interval"]
        recorded = info["speedup_vs_baseline"]
        if _same((plain_iv[0] * recorded / plain, plain_iv[1] * recorded / plain), stored):
            recorded_with, scale = "plain", recorded / plain
        elif _same((balanced.interval[0] * recorded / balanced.estimate, balanced.interval[1] * recorded / balanced.estimate),
                   stored):
            recorded_with, scale = "balanced", recorded / balanced.estimate
        else:
            raise SystemExit(f"{path.name}: {bench['name']}: its stored pairs give neither estimator's recorded interval {stored}")
        ratios = raw * scale
        rows.append({
            "row": bench["name"], "pairs": len(base), "recorded_with": recorded_with,
            "baseline_order_effect": round(statistics.median(base[1::2]) / statistics.median(base[0::2]), 4),
            "ratio_order_effect": round(statistics.median(ratios[1::2]) / statistics.median(ratios[0::2]), 4),
            "plain": {"speedup": round(plain * scale, 5), "interval": [round(v * scale, 5) for v in plain_iv],
                      "halfwidth": round((plain_iv[1] - plain_iv[0]) / 2 / plain, 5)},
            "balanced": {"speedup": round(balanced.estimate * scale, 5),
                         "interval": [round(v * scale, 5) for v in balanced.interval],
                         "halfwidth": round(balanced.halfwidth, 5)},
        })
    return data, rows


def rewrite(data: dict, rows: list[dict], estimator: str, out: Path) -> Path:
    """The run with every paired row's speedup as ``estimator`` gives it; significance
    against the run's stored noise floors (:func:`hpml.bench.screen.finalize`)."""
    data = json.loads(json.dumps(data))
    by_name = {r["row"]: r[estimator] for r in rows}
    for bench in data["benchmarks"]:
        if bench["name"] in by_name:
            r = by_name[bench["name"]]
            bench["extra_info"].update(speedup_vs_baseline=r["speedup"], speedup_interval=r["interval"],
                                       speedup_halfwidth=r["halfwidth"])
    finalize([b["extra_info"] for b in data["benchmarks"]])
    out.write_text(json.dumps(data))
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.splitlines()[2], file=sys.stderr)
        return 2
    run1, run2, out = Path(argv[0]), Path(argv[1]), Path(argv[2])
    scratch = Path(tempfile.mkdtemp(prefix="order-effect-"))
    (data1, rows1), (data2, rows2) = estimates(run1), estimates(run2)
    reports = {}
    for estimator in ("plain", "balanced"):
        files = [rewrite(data, rows, estimator, scratch / f"{estimator}-{i}-{path.name}")
                 for i, (data, rows, path) in enumerate([(data1, rows1, run1), (data2, rows2, run2)], 1)]
        reports[estimator] = report(files)
    effects = [abs(np.log(r["ratio_order_effect"])) for r in rows1 + rows2]
    summary = {
        "rows": len(effects),
        "recorded_with": {"run1": sorted({r["recorded_with"] for r in rows1}), "run2": sorted({r["recorded_with"] for r in rows2})},
        "ratio_order_effect_over_5pct": int(sum(e > np.log(1.05) for e in effects)),
        "ratio_order_effect_over_20pct": int(sum(e > np.log(1.20) for e in effects)),
        "median_halfwidth_plain": round(statistics.median(r["plain"]["halfwidth"] for r in rows1 + rows2), 4),
        "median_halfwidth_balanced": round(statistics.median(r["balanced"]["halfwidth"] for r in rows1 + rows2), 4),
    }
    result = {"runs": [run1.name, run2.name], "summary": summary, "compare_runs": reports,
              "rows": {"run1": rows1, "run2": rows2}}
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(summary))
    for estimator, lines in reports.items():
        print(f"== both runs estimated {estimator}")
        print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
