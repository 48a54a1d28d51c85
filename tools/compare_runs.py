"""How far two benchmark runs of the same commit agree: ``python tools/compare_runs.py A.json B.json``.

The runs are pytest-benchmark JSON files (``--benchmark-autosave`` stores them under
``.benchmarks/<machine>/``; ``--benchmark-json PATH`` writes one).  It prints:

* the rows significant in both runs, and the 50th / 90th percentile of how much their
  speedups differ (``|a / b - 1|``), over all of them and over those measured on a quiet
  machine in both runs (the target's figure: a busy row is unreliable by its own run's verdict);
* every row significantly faster in one run and significantly slower in the other
  (a contradiction: the runs give opposite verdicts);
* the controls (each phase's baseline paired with a second, separately built baseline; fresh-process
  rows' two fresh baseline processes): how often 1.00 lies within the control's own 95 % interval,
  per kind of control, over all the runs given;
* the rows flagged busy in either run (their numbers are unreliable);
* the same figures per kind of row (:func:`kind_of_row`: the phase; loading rows split by
  whether their loader runs worker processes), so a reader sees which kinds reproduce
  run to run on this machine and which hold the 90th percentile up;
* coverage (:func:`coverage`): how many rows quiet in both runs differ by no more than their
  two intervals combined allow, overall and per kind of row, and which interval the rows carried
  (:mod:`hpml.results.between_run`); and the between-run spread per kind the runs show;
* whether the differences are what the rows' own intervals allow (:func:`calibration`): how
  many lie within 95 % of the two runs' combined interval, the 90th percentile of the
  difference those intervals predict from measurement noise alone, and the half-width every
  row would need for that prediction to fall to 5 %.  Observed close to predicted means the
  intervals are honest and only more pairs (time) narrow the disagreement.

With more than two runs, each run is compared with the next.  ``--recalibrate`` first gives every
row and control its within-run interval back and widens it by this machine's stored calibration
(``hpml calibrate``), deciding significance again: how runs measured before a calibration would
read with it (``docs/studies/between-run-coverage.md``).  Bad input (a missing or
malformed file, a file without hpml rows) is one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

from hpml.bench.screen import finalize
from hpml.errors import HpmlError
from hpml.results import between_run
from hpml.results.between_run import derive, kind_of_row, log_halfwidth
from hpml.results.runfiles import hpml_rows, load_run

USAGE_EXIT = 2


def load_rows(path: Path, recalibrate: bool = False) -> dict[str, dict[str, Any]]:
    """``extra_info`` of each hpml row of a pytest-benchmark JSON file, by benchmark name; with
    ``recalibrate``, widened by this machine's stored calibration as a run would be now."""
    run = load_run(path)
    rows, machine = hpml_rows(run), run.machine_info
    if not recalibrate:
        return rows
    calibration = between_run.load(machine)
    if calibration is None:
        raise HpmlError(f"{path}: no between-run calibration of its machine in {between_run.calibration_path()}: "
                        "run hpml calibrate")
    for info in rows.values():
        for holder, key in [(info, "speedup_interval")] + [(info[c], "interval") for c in ("aa_control", "fresh_control")
                                                           if isinstance(info.get(c), dict)]:
            within = holder.pop(f"{key}_within", None)
            if within:
                holder[key] = within
    between_run.apply(rows.values(), calibration)
    finalize(list(rows.values()))  # significance against the widened intervals and noise floors
    return rows


def _direction(info: dict[str, Any]) -> int:
    """+1 significantly faster, -1 significantly slower, 0 not significant / not paired."""
    speedup = info.get("speedup_vs_baseline")
    if not info.get("speedup_significant") or not isinstance(speedup, (int, float)):
        return 0
    return 1 if speedup > 1 else -1


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linear between order statistics."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


#: z of a two-sided 95 % interval: a row's interval is estimate * exp(+-Z95 * se) in log space.
Z95 = 1.959964
#: z of the 90th percentile of |N(0, 1)|.
Z90_ABS = 1.644854


def _log_se(info: dict[str, Any]) -> float | None:
    """Standard error of a row's log speedup from its 95 % interval (the bootstrap works on
    log ratios); None without an interval."""
    interval = info.get("speedup_interval")
    if not (isinstance(interval, (list, tuple)) and len(interval) == 2 and min(interval) > 0):
        return None
    return math.log(interval[1] / interval[0]) / (2 * Z95)


def calibration(a: dict[str, dict[str, Any]], b: dict[str, dict[str, Any]], names: list[str],
                target: float = 0.05, draws: int = 20000) -> dict[str, Any] | None:
    """Are the differences of ``names`` between runs ``a`` and ``b`` what their intervals allow?

    For a row, ``z = |log(a / b)| / sqrt(se_a^2 + se_b^2)``; ``within`` counts rows with
    ``z <= 1.96``.  ``predicted_p90``: the 90th percentile of ``|a / b - 1|`` if every row's
    two estimates differed only by their intervals' noise (normal in log space; a fixed-seed
    simulation over the rows).  ``needed_halfwidth``: the relative half-width at which a row
    measured alike in both runs differs by at most ``target`` nine times in ten."""
    pairs = [(n, _log_se(a[n]), _log_se(b[n])) for n in names]
    pairs = [(n, sa, sb) for n, sa, sb in pairs if sa is not None and sb is not None]
    if not pairs:
        return None
    import numpy as np

    z = [abs(math.log(a[n]["speedup_vs_baseline"] / b[n]["speedup_vs_baseline"])) / math.hypot(sa, sb)
         for n, sa, sb in pairs]
    sd = np.array([math.hypot(sa, sb) for _, sa, sb in pairs])
    rng = np.random.default_rng(0)
    simulated = np.abs(np.expm1(rng.standard_normal((draws, len(sd))) * sd)).ravel()
    halfwidths = [math.expm1(Z95 * s) for _, sa, sb in pairs for s in (sa, sb)]
    return {
        "rows": len(pairs),
        "within": sum(v <= Z95 for v in z),
        "predicted_p90": float(np.percentile(simulated, 90)),
        "median_halfwidth": statistics.median(halfwidths),
        "needed_halfwidth": math.expm1(Z95 * math.log1p(target) / (Z90_ABS * math.sqrt(2))),
    }


def coverage(a: dict[str, dict[str, Any]], b: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Do the intervals cover the next run?  Of the paired rows quiet in both runs with an
    interval in both, those whose ``|log(a/b)|`` lies within ``sqrt(h_a^2 + h_b^2)`` (``h``: the
    log half-width of each run's stored interval), overall and per :func:`kind_of_row`; and
    which interval (``interval_kind``) the rows carried."""
    groups: dict[str, list[bool]] = {}
    carried: dict[str, int] = {}
    for name in sorted(set(a) & set(b)):
        x, y = a[name], b[name]
        if x.get("busy") or y.get("busy") or (x.get("optimization") == "baseline" and not x.get("reference")):
            continue
        ix, iy, ex, ey = x.get("speedup_interval"), y.get("speedup_interval"), x.get("speedup_vs_baseline"), \
            y.get("speedup_vs_baseline")
        if not (ix and iy and isinstance(ex, (int, float)) and isinstance(ey, (int, float)) and ex > 0 and ey > 0):
            continue
        within = abs(math.log(ex / ey)) <= math.hypot(log_halfwidth(ix), log_halfwidth(iy))
        groups.setdefault(kind_of_row(x), []).append(within)
        for info in (x, y):
            label = str(info.get("interval_kind") or "within-run (not recorded)")
            carried[label] = carried.get(label, 0) + 1
    flat = [v for values in groups.values() for v in values]
    return {"rows": len(flat), "covered": sum(flat),
            "by_kind": {k: {"rows": len(v), "covered": sum(v)} for k, v in sorted(groups.items())},
            "interval_kinds": carried}


def by_kind(a: dict[str, dict[str, Any]], diffs: dict[str, float]) -> dict[str, dict[str, Any]]:
    """Rows, median and 90th percentile of ``diffs`` per :func:`kind_of_row` (of run ``a``'s rows)."""
    groups: dict[str, list[float]] = {}
    for name, diff in diffs.items():
        groups.setdefault(kind_of_row(a[name]), []).append(diff)
    return {kind: {"rows": len(v), "p50": statistics.median(v), "p90": percentile(v, 90)}
            for kind, v in sorted(groups.items())}


def compare(a: dict[str, dict[str, Any]], b: dict[str, dict[str, Any]]) -> dict[str, Any]:
    common = sorted(set(a) & set(b))
    both = [n for n in common if _direction(a[n]) and _direction(b[n])]
    diffs = {n: abs(a[n]["speedup_vs_baseline"] / b[n]["speedup_vs_baseline"] - 1) for n in both}
    contradictions = [n for n in common if _direction(a[n]) * _direction(b[n]) < 0]
    busy = [n for n in common if a[n].get("busy") or b[n].get("busy")]
    quiet_diffs = {n: diffs[n] for n in both if n not in busy}
    quiet = list(quiet_diffs.values())
    return {
        "common": len(common),
        "significant_in_both": len(both),
        "p50_difference": statistics.median(diffs.values()) if diffs else None,
        "p90_difference": percentile(list(diffs.values()), 90) if diffs else None,
        "quiet_in_both": len(quiet),
        "quiet_p50_difference": statistics.median(quiet) if quiet else None,
        "quiet_p90_difference": percentile(quiet, 90) if quiet else None,
        "quiet_by_kind": by_kind(a, quiet_diffs),
        "largest": sorted(diffs.items(), key=lambda kv: -kv[1])[:5],
        "contradictions": [(n, a[n]["speedup_vs_baseline"], b[n]["speedup_vs_baseline"]) for n in contradictions],
        "busy": busy,
        "calibration": calibration(a, b, [n for n in both if n not in busy]),
        "coverage": coverage(a, b),
    }


def aa_controls(runs: list[dict[str, dict[str, Any]]]) -> dict[str, tuple[int, int]]:
    """Per kind of control, (controls holding 1.00 in their interval, controls with an interval):
    the in-process A/A of two separately built baselines (runs before it paired one object with
    itself: "A/A, one side paired with itself") and the fresh-vs-fresh control."""
    out: dict[str, tuple[int, int]] = {}
    for rows in runs:
        for info in rows.values():
            for key in ("aa_control", "fresh_control"):
                aa = info.get(key)
                if isinstance(aa, dict) and aa.get("interval"):
                    kind = aa.get("sides") or "A/A, one side paired with itself"
                    lo, hi = aa["interval"]
                    held, total = out.get(kind, (0, 0))
                    out[kind] = (held + (lo <= 1.0 <= hi), total + 1)
    return out


def report(paths: list[Path], recalibrate: bool = False) -> list[str]:
    runs = [load_rows(p, recalibrate) for p in paths]
    lines = []
    for (pa, a), (pb, b) in zip(zip(paths, runs), zip(paths[1:], runs[1:])):
        c = compare(a, b)
        lines.append(f"{pa.name} vs {pb.name}: {c['common']} rows in both, {c['significant_in_both']} significant in both")
        if c["p90_difference"] is not None:
            lines.append(f"  speedup difference |a/b - 1| among them: median {c['p50_difference']:.1%}, "
                         f"90th percentile {c['p90_difference']:.1%}")
            if c["quiet_p90_difference"] is not None:
                lines.append(f"  ... among the {c['quiet_in_both']} of them measured on a quiet machine in both runs: "
                             f"median {c['quiet_p50_difference']:.1%}, 90th percentile "
                             f"{c['quiet_p90_difference']:.1%} (target <= 5%)")
                for kind, k in c["quiet_by_kind"].items():
                    lines.append(f"      {kind}: {k['rows']} rows, median {k['p50']:.1%}, 90th percentile {k['p90']:.1%}")
            for name, diff in c["largest"]:
                lines.append(f"    {diff:6.1%}  {name}: {a[name]['speedup_vs_baseline']:.3f}x vs "
                             f"{b[name]['speedup_vs_baseline']:.3f}x")
        lines.append(f"  significantly faster in one run and slower in the other: {len(c['contradictions'])} (target 0)")
        for name, x, y in c["contradictions"]:
            lines.append(f"    {name}: {x:.3f}x vs {y:.3f}x")
        lines.append(f"  rows flagged busy in either run: {len(c['busy'])}")
        cal = c["calibration"]
        if cal is not None:
            lines.append(f"  what the intervals allow ({cal['rows']} quiet rows significant in both): "
                         f"{cal['within']}/{cal['rows']} differ within their combined 95% interval; noise alone "
                         f"predicts a 90th percentile of {cal['predicted_p90']:.1%} at their half-widths "
                         f"(median +-{cal['median_halfwidth']:.1%}); a 5% 90th percentile needs +-"
                         f"{cal['needed_halfwidth']:.1%} in every row")
        cov = c["coverage"]
        if cov["rows"]:
            lines.append(f"  coverage: {cov['covered']}/{cov['rows']} = {cov['covered'] / cov['rows']:.0%} of the rows "
                         "quiet in both runs differ within sqrt(h1^2 + h2^2) of their intervals (target >= 95%); "
                         "intervals carried: " + ", ".join(f"{k} {v}" for k, v in sorted(cov["interval_kinds"].items())))
            for kind, k in cov["by_kind"].items():
                lines.append(f"      {kind}: {k['covered']}/{k['rows']} covered")
    spreads = derive(runs)
    if spreads:
        lines.append("between-run spread these runs show (log sd per group of kinds; hpml calibrate stores it for this "
                     "machine): " + ", ".join(f"{k} {v['sd']:.3f} ({v['rows']} rows)" for k, v in spreads.items()))
    controls = aa_controls(runs)
    for kind, (held, total) in sorted(controls.items()):
        lines.append(f"controls ({kind}) holding 1.00 in their own 95% interval: {held}/{total} = "
                     f"{held / total:.0%} (target >= 95%)")
    if not controls:
        lines.append("A/A controls: none in these runs (no paired baseline rows)")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/compare_runs.py", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="pytest-benchmark JSON files of runs of the same commit")
    parser.add_argument("--recalibrate", action="store_true",
                        help="widen every row's within-run interval by this machine's stored calibration (hpml calibrate) "
                             "and decide significance again, as a run measured now would")
    args = parser.parse_args(argv)
    if len(args.runs) < 2:
        print("compare_runs: give at least two runs to compare", file=sys.stderr)
        return USAGE_EXIT
    try:
        lines = report(args.runs, args.recalibrate)
    except HpmlError as err:
        print(f"compare_runs: {err}", file=sys.stderr)
        return USAGE_EXIT
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
