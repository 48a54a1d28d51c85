"""The checks behind ``hpml gate`` and the table it prints.

Three kinds of check, each producing :class:`Check` rows:

* ``speedup>=min`` -- a same-run speedup vs its baseline is at least the
  expectation configured in ``[tool.hpml.gate.min_speedup]`` (minus tolerance);
* ``speedup~ref`` -- a same-run speedup did not drop below the speedup of the same
  case in a reference summary (minus tolerance).  Both sides are ratios measured
  within one run, so this holds across machines;
* ``<metric>~ref`` -- a metric declared in :mod:`hpml.results.metrics` and listed in
  ``[tool.hpml.gate] metrics`` (peak memory, CPU time, ...) did not get worse than in the
  reference summary by more than the tolerance (:func:`check_metrics`);
* ``A/B time`` -- raw per-round timings of two runs (same machine): the typical
  round time (25th percentile) moved by more than ``min_effect`` *and* a
  permutation test says so at family-wise level ``alpha`` (Holm over all compared
  benchmarks); ``test="mannwhitney"`` uses medians and Mann-Whitney U instead.
  See :mod:`hpml.gate.stats` for why;
* ``A/B paired`` -- ``--base``'s sessions ran call by call (:mod:`hpml.bench.baton`):
  round i of a row on one side is paired with round i on the other, the effect is the
  mean over session pairs of their median per-pair time ratio, and a t-test across the
  session pairs gives p (:func:`compare_paired`).

``ratio`` is always *current speed / reference speed*: below 1 means slower, for
speedups and for timings alike.

Fail closed: a gated row that is missing is MISSING (fails unless ``--allow-missing``);
a row only the current run has is NEW (reported); a run with nothing comparable and a
gated row measured on a busy machine raise HpmlError (exit 2).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from hpml.errors import HpmlError
from hpml.gate.config import TESTS, Expectation, GateConfig
from hpml.gate.stats import (
    MIN_SESSION_PAIRS, QUANTILE, holm, log_ratios, mann_whitney_p, min_attainable_p, permutations_for,
    quantile_perm_test, session_t_test,
)
from hpml.results.atomic import write_text_atomic
from hpml.results.machine import comparable_machine
from hpml.results.schema import HOW_TO_RUN, Benchmark, CaseKey, Run, json_files, kind_of, read_json, run_from_json
from hpml.results.stats import bootstrap_ratio
from hpml.results.summary import check_extra_info, keyed_rows, speedup_interval, validate_run
from hpml.results.units import fmt_time
from hpml.results.metrics import gated

OK, SLOWER, FASTER, MISSING = "ok", "SLOWER", "FASTER", "missing"
#: A gated metric (``[tool.hpml.gate] metrics``) more than the tolerance worse than the reference's.
WORSE = "WORSE"
#: Reported, never failing: a row only the current run has, or an ungated row without a speedup.
NEW, NOT_GATED = "new", "-"
#: Fewer rounds than this on either side cannot reach p < 0.05 with Mann-Whitney U.
MIN_ROUNDS_AB = 4


@dataclass(frozen=True)
class Check:
    """One line of the gate table."""

    case: str
    kind: str  # "speedup>=min", "speedup~ref" or "A/B time"
    reference: str
    current: str
    ratio: float | None  # current speed / reference speed (< 1: slower)
    p: float | None  # Holm-adjusted p-value (A/B only)
    verdict: str  # ok / SLOWER / FASTER / missing
    note: str = ""
    ci: tuple[float, float] | None = None  # 95 % interval of ratio (A/B only: bootstrap, paired: t over session pairs)
    per_session: tuple[float, ...] | None = None  # paired A/B: each session pair's time ratio (current / base)


def _fmt_speedup(value: float | None, row: dict[str, Any] | None = None) -> str:
    """``1.72x [1.63, 1.83] 95%``: the speedup and its interval (paired 95 % or older 68 %)."""
    if value is None:
        return "-"
    interval, level = speedup_interval(row or {})
    # "~": the paired estimate is not significant (its interval holds 1.0 or the noise floor)
    mark = " ~" if row is not None and row.get("significant") is False else ""
    if interval is None:
        return f"{value:.2f}x" + (" (no interval)" if row is not None else "") + mark
    return f"{value:.2f}x [{interval[0]:.2f}, {interval[1]:.2f}] {level}{mark}"


def refuse_busy(row: dict[str, Any], label: str, source: Any) -> None:
    """A gated row measured on a busy machine cannot give a verdict either way: exit 2."""
    if row.get("busy"):
        reason = row.get("busy_reason") or "no reason recorded"
        raise HpmlError(f"{source}: row {label} was measured on a busy machine ({reason}); "
                        "its numbers cannot pass or fail the gate, rerun on a quiet machine")


def reference_floor(exp: Expectation, reference: dict[str, Any] | None, ref_source: Any) -> float:
    """The minimal speedup of ``exp``: its number, or the low end of the reference row's interval."""
    if exp.min_speedup is not None:
        return exp.min_speedup
    if reference is None:
        raise HpmlError(f"[tool.hpml.gate.min_speedup] {exp.pattern!r} = \"reference\" needs a reference summary: "
                        "set [tool.hpml.gate] reference = \"path/to/summary.json\" or pass --reference FILE")
    rows = [(k, r) for k, r in keyed_rows(reference).items() if exp.matches(k)]
    if len(rows) != 1:
        found = "no row" if not rows else f"{len(rows)} rows ({', '.join(k.label for k, _ in rows[:3])})"
        raise HpmlError(f"{ref_source}: [tool.hpml.gate.min_speedup] {exp.pattern!r} = \"reference\" needs exactly "
                        f"one matching row in the reference summary, found {found}")
    key, row = rows[0]
    interval, _ = speedup_interval(row)
    if interval is None:
        raise HpmlError(f"{ref_source}: row {key.label} has no speedup interval to derive "
                        f"{exp.pattern!r} from (a baseline row, or too few rounds); pick another reference")
    return float(interval[0])


# --- same-run speedup checks -------------------------------------------------------------


def check_expectations(summary: dict[str, Any], config: GateConfig, source: Any = "summary",
                       reference: dict[str, Any] | None = None, ref_source: Any = "reference") -> list[Check]:
    """Every non-baseline row against its configured minimal speedup (report-only when none).

    Fails closed: a gated row without a speedup, and a pattern that matches no row, are
    MISSING, which fails the gate unless ``--allow-missing``: a benchmark that crashed,
    was renamed or deselected must not pass silently.  An expectation given as
    ``"reference"`` is the low end of the reference summary's interval for that row;
    the current row fails when even the high end of its own interval (its point value
    when it has none) lies below that floor minus the tolerance.
    """
    checks: list[Check] = []
    used: set[str] = set()
    for key, row in keyed_rows(summary).items():
        if not key.is_hpml or (key.optimization == "baseline" and not row.get("reference")):
            continue  # a baseline row's speedup is 1 by definition, unless paired with a reference
        exp = config.expectation_for(key)
        tol = config.tolerance_for(exp)
        speedup = row.get("speedup")
        current = _fmt_speedup(speedup, row)
        used.update(e.pattern for e in config.expectations if e.matches(key))
        if exp is None:
            verdict, note = (OK, "no expectation set") if speedup is not None else (NOT_GATED, "no baseline row")
            checks.append(Check(key.label, "speedup>=min", "-", current, None, None, verdict, note))
            continue
        floor = reference_floor(exp, reference, ref_source)
        origin = f"{floor:.2f}x" if exp.min_speedup is not None else f"reference low {floor:.2f}x"
        expected = f">={floor * (1 - tol):.2f}x ({origin} -{tol:.0%})"
        if speedup is None:
            checks.append(Check(key.label, "speedup>=min", expected, current, None, None, MISSING,
                                "gated, but no baseline row in this run"))
            continue
        refuse_busy(row, key.label, source)
        interval, _ = speedup_interval(row)
        best = interval[1] if interval is not None and exp.min_speedup is None else speedup
        verdict = SLOWER if best < floor * (1 - tol) else OK
        checks.append(Check(key.label, "speedup>=min", expected, current, speedup / floor, None, verdict, exp.pattern))
    for exp in config.expectations:
        if exp.pattern not in used:
            checks.append(Check(exp.pattern, "speedup>=min", f">={exp.describe}", "-", None, None, MISSING,
                                "gated, but no row in this run matches the pattern"))
    return checks


def check_reference(current: dict[str, Any], reference: dict[str, Any], config: GateConfig,
                    source: Any = "summary") -> list[Check]:
    """Same-run speedups of ``current`` vs those of the same cases in ``reference``."""
    if current.get("profile") and reference.get("profile") and current["profile"] != reference["profile"]:
        raise HpmlError(
            f"the reference summary was measured with profile {reference['profile']!r} and the current one with "
            f"{current['profile']!r}; speedups of different workload sizes are not comparable, use a reference "
            "from the same profile"
        )
    cur_rows, ref_rows = keyed_rows(current), keyed_rows(reference)
    checks: list[Check] = []
    for key in list(ref_rows) + [k for k in cur_rows if k not in ref_rows]:
        if not key.is_hpml or key.optimization == "baseline":
            continue
        ref, cur = ref_rows.get(key), cur_rows.get(key)
        ref_s = ref.get("speedup") if ref else None
        cur_s = cur.get("speedup") if cur else None
        if ref is None:
            if cur_s is not None:
                checks.append(Check(key.label, "speedup~ref", "-", _fmt_speedup(cur_s, cur), None, None, NEW,
                                    "not in the reference"))
            continue
        if ref_s is None:
            continue  # the reference itself had no baseline: nothing to hold the current run to
        if cur is None or cur_s is None:
            note = "not in the current run" if cur is None else "no baseline row in the current run"
            checks.append(Check(key.label, "speedup~ref", _fmt_speedup(ref_s, ref), "-", None, None, MISSING, note))
            continue
        refuse_busy(cur, key.label, source)
        tol = config.tolerance_for(config.expectation_for(key))
        ratio = cur_s / ref_s
        verdict = SLOWER if ratio < 1 - tol else FASTER if ratio > 1 / (1 - tol) else OK
        checks.append(Check(key.label, "speedup~ref", _fmt_speedup(ref_s, ref), _fmt_speedup(cur_s, cur), ratio,
                            None, verdict, f"tolerance {tol:.0%}"))
    return checks


def check_metrics(current: dict[str, Any], reference: dict[str, Any], config: GateConfig,
                  source: Any = "summary") -> list[Check]:
    """Each gated metric (``[tool.hpml.gate] metrics``, declared in :data:`hpml.results.metrics.METRICS`)
    of every row both summaries measured it on, against the reference's: WORSE (fails) when more than
    the row's tolerance worse in the metric's own direction.  Summaries without per-row metrics
    (older runs) give no check.  Fail closed: where the reference has a reading and the current
    row has none (row or value missing, NaN, a 0 where every reading is > 0), MISSING."""
    cur_rows, ref_rows = keyed_rows(current), keyed_rows(reference)
    checks: list[Check] = []
    for metric in gated(config.metrics) if config.metrics else []:
        for key, ref in ref_rows.items():
            cur = cur_rows.get(key)
            ref_v = (ref.get("metrics") or {}).get(metric.name)
            if not key.is_hpml or metric.problem(ref_v) is not None:
                continue
            kind = f"{metric.name}~ref"
            if cur is None:
                checks.append(Check(key.label, kind, metric.text(ref_v), "-", None, None, MISSING,
                                    f"row missing from {source}"))
                continue
            refuse_busy(cur, key.label, source)
            cur_v = (cur.get("metrics") or {}).get(metric.name)
            problem = metric.problem(cur_v)
            if problem is not None:
                checks.append(Check(key.label, kind, metric.text(ref_v), metric.text(cur_v), None, None, MISSING,
                                    f"{metric.name} {problem} in {source}"))
                continue
            tol = config.tolerance_for(config.expectation_for(key))
            worse = metric.worse(cur_v, ref_v)
            verdict = WORSE if worse is not None and worse > tol else OK
            checks.append(Check(key.label, kind, metric.text(ref_v), metric.text(cur_v),
                                cur_v / ref_v if ref_v else None, None, verdict,
                                f"{metric.better} is better, tolerance {tol:.0%}"))
    return checks


# --- A/B on raw timings --------------------------------------------------------------------


def load_side(path: Path | str) -> list[Run]:
    """The runs of one A/B side: a pytest-benchmark JSON file or a folder of them (merged)."""
    path = Path(path)
    files = json_files([path])
    runs = []
    for file in files:
        obj = read_json(file, "pytest-benchmark run file", HOW_TO_RUN)
        if path.is_dir() and kind_of(obj) != "run":
            continue  # summaries and convergence records may share the folder
        if isinstance(obj, dict):
            check_extra_info(obj, file)
        runs.append(run_from_json(obj, file))
    if not runs:
        raise HpmlError(f"{path}: holds no pytest-benchmark run file; {HOW_TO_RUN}")
    for run in runs:
        validate_run(run)
        for bench in run.benchmarks.values():
            if not bench.data:
                raise HpmlError(
                    f"{run.path}: benchmark {bench.name!r} has no raw per-round timings (stats.data), which the "
                    "statistical test needs; rerun with `--benchmark-save-data --benchmark-json=FILE`"
                )
    return runs


def merge_runs(runs: Sequence[Run]) -> dict[CaseKey, Benchmark]:
    """One row per case with the rounds of all ``runs`` pooled (interleaved sessions of one side)."""
    merged: dict[CaseKey, Benchmark] = {}
    for run in runs:
        for key, bench in run.benchmarks.items():
            prev = merged.get(key)
            if prev is None:
                merged[key] = bench
                continue
            if prev.samples_per_round != bench.samples_per_round:
                raise HpmlError(
                    f"{run.path}: benchmark {bench.name!r} processes {bench.samples_per_round} samples per call, "
                    f"another run of the same side {prev.samples_per_round}; merge only runs of one configuration"
                )
            data = (prev.data or ()) + (bench.data or ())
            merged[key] = Benchmark(key, prev.name, prev.fullname, prev.group, statistics.median(data),
                                    len(data), data, prev.extra)
    return merged


def check_compatible(base: Sequence[Run], current: Sequence[Run], allow_other_machine: bool = False) -> None:
    """Raw seconds are only comparable on one machine and for one workload profile."""
    if not allow_other_machine:
        prints = {comparable_machine(r.machine_info): r for r in (*base, *current)}
        if len(prints) > 1:
            (fa, ra), (fb, rb) = list(prints.items())[:2]
            raise HpmlError(
                f"{ra.path} and {rb.path} come from different machines ({' '.join(filter(None, fa))} vs "
                f"{' '.join(filter(None, fb))}); raw timings are not comparable across machines: rerun both sides "
                "on one machine (hpml gate --base REV), compare same-run speedups (--reference), "
                "or pass --allow-other-machine"
            )
    base_profiles = set().union(*(r.profiles for r in base))
    cur_profiles = set().union(*(r.profiles for r in current))
    if base_profiles and cur_profiles and base_profiles != cur_profiles:
        raise HpmlError(
            f"base ran profile(s) {', '.join(sorted(base_profiles))} and current {', '.join(sorted(cur_profiles))}; "
            "timings of different workload sizes are not comparable, rerun with the same profile"
        )


def _per_sample(bench: Benchmark, other: Benchmark) -> tuple[list[float], bool]:
    """Round timings, per sample when the two sides process different samples per call.

    Returns the timings (s per call, or s per sample) and whether they were divided.
    """
    data = list(bench.data or ())
    spr, other_spr = bench.samples_per_round, other.samples_per_round
    if spr is not None and other_spr is not None and spr != other_spr:
        return [t / spr for t in data], True
    return data, False


def underpowered(base: dict[CaseKey, Benchmark], current: dict[CaseKey, Benchmark], alpha: float) -> list[str]:
    """Cases with too few rounds to ever reach Holm's first threshold alpha/m: they can never fail."""
    tested = [k for k in base if k in current]
    if not tested:
        return []
    limit = alpha / len(tested)
    return [k.label for k in tested
            if min_attainable_p(len(base[k].data or ()), len(current[k].data or ())) >= limit]


def comparable_keys(base: dict[CaseKey, Benchmark], current: dict[CaseKey, Benchmark]) -> list[CaseKey]:
    """The cases in both runs; none is an error, and a busy row on either side refuses the A/B."""
    common = [k for k in base if k in current]
    if not common:
        raise HpmlError(
            f"nothing to compare: none of the {len(base)} base benchmark(s) is in the current run (e.g. base "
            f"{next(iter(base)).label if base else '-'} vs current {next(iter(current)).label if current else '-'}); "
            "were they renamed or deselected?"
        )
    for key in common:
        for side, rows in (("base", base), ("current", current)):
            refuse_busy(rows[key].extra, key.label, f"{side} run")
    return common


def compare_ab(
    base: dict[CaseKey, Benchmark],
    current: dict[CaseKey, Benchmark],
    *,
    alpha: float,
    min_effect: float,
    test: str = "quantile",
) -> list[Check]:
    """A/B verdicts for every case in both sides, plus the cases missing on either side.

    A case is SLOWER (FASTER) when its typical time grew (shrank) by more than
    ``min_effect`` and the Holm-adjusted p-value is below ``alpha``.  "Typical" is
    the 25th percentile for ``test="quantile"`` and the median for ``"mannwhitney"``.
    """
    if test not in TESTS:
        raise HpmlError(f"unknown A/B test {test!r}; choose one of {', '.join(TESTS)}")
    q = QUANTILE if test == "quantile" else 50.0
    common = comparable_keys(base, current)
    permutations = permutations_for(len(common), alpha)
    rows = []
    for key in common:
        (a, per_sample), (b, _) = _per_sample(base[key], current[key]), _per_sample(current[key], base[key])
        if min(len(a), len(b)) < MIN_ROUNDS_AB:
            raise HpmlError(
                f"benchmark {key.label!r} has {min(len(a), len(b))} rounds on one side; the test needs at least "
                f"{MIN_ROUNDS_AB} per side: raise --benchmark-min-rounds or merge more runs"
            )
        typical_a, typical_b = float(np.percentile(a, q)), float(np.percentile(b, q))
        p = (quantile_perm_test(a, b, q=q, permutations=permutations) if test == "quantile"
             else mann_whitney_p(a, b))
        rows.append((key, a, b, per_sample, typical_a, typical_b, p))
    adjusted = holm([r[-1] for r in rows])
    stat = f"p{q:g}" if test == "quantile" else "median"
    checks = []
    for (key, a, b, per_sample, typical_a, typical_b, _), p in zip(rows, adjusted):
        time_ratio = typical_b / typical_a  # > 1: current is slower
        verdict = OK
        if p < alpha and time_ratio > 1.0 + min_effect:
            verdict = SLOWER
        elif p < alpha and time_ratio < 1.0 / (1.0 + min_effect):
            verdict = FASTER
        ci = bootstrap_ratio(a, b, q=q)  # P_q(base) / P_q(current): a speed ratio like `ratio`
        unit = "/sample" if per_sample else ""
        checks.append(Check(
            key.label, "A/B time", f"{stat} {fmt_time(typical_a)}{unit} n={len(a)}",
            f"{stat} {fmt_time(typical_b)}{unit} n={len(b)}", 1.0 / time_ratio, p, verdict,
            f"time {time_ratio - 1:+.1%}", ci,
        ))
    for key in base:
        if key not in current:
            checks.append(Check(key.label, "A/B time", fmt_time(base[key].median_s), "-", None, None, MISSING,
                                "only in base"))
    for key in current:
        if key not in base:
            checks.append(Check(key.label, "A/B time", "-", fmt_time(current[key].median_s), None, None, NEW,
                                "only in current"))
    return checks


class Unpaired(Exception):
    """The runs of the two sides cannot be paired round by round; the message says why."""


def paired_sessions(base_runs: Sequence[Run], current_runs: Sequence[Run]) -> dict[CaseKey, list[tuple[list[float], list[float]]]]:
    """Per row, per session pair that ran it on both sides: (base rounds, current rounds), round i next to round i.

    Times are per sample when the two sides process different samples per call.  Raises
    :class:`Unpaired` when the sides hold different numbers of sessions, or a row present
    on both sides of a session pair has different round counts there.
    """
    if len(base_runs) != len(current_runs):
        raise Unpaired(f"{len(base_runs)} base session(s) but {len(current_runs)} current")
    pairs: dict[CaseKey, list[tuple[list[float], list[float]]]] = {}
    for j, (b_run, c_run) in enumerate(zip(base_runs, current_runs), 1):
        for key, b in b_run.benchmarks.items():
            c = c_run.benchmarks.get(key)
            if c is None:
                continue
            (tb, _), (tc, _) = _per_sample(b, c), _per_sample(c, b)
            if len(tb) != len(tc):
                raise Unpaired(f"session pair {j}: {key.label} has {len(tb)} base and {len(tc)} current rounds")
            if tb:
                pairs.setdefault(key, []).append((list(tb), list(tc)))
    return pairs


def paired_rounds(base_runs: Sequence[Run], current_runs: Sequence[Run]) -> dict[CaseKey, tuple[list[float], list[float]]]:
    """Round i of each row of ``base_runs[j]`` next to round i of ``current_runs[j]``, pooled over j."""
    return {key: ([t for b, _ in sessions for t in b], [t for _, c in sessions for t in c])
            for key, sessions in paired_sessions(base_runs, current_runs).items()}


def compare_paired(
    base_runs: Sequence[Run],
    current_runs: Sequence[Run],
    *,
    alpha: float,
    min_effect: float,
) -> list[Check]:
    """A/B verdicts from rounds paired call by call, tested across session pairs (see
    :mod:`hpml.gate.stats`), plus missing rows.

    Per row and session pair, ``r_j`` = the median per-pair log time ratio; the row is
    SLOWER (FASTER) when ``exp(mean r)`` grew (shrank) by more than ``min_effect`` and the
    Holm-adjusted one-sided t-test p-value of the ``r_j`` is below ``alpha``.  Raises
    :class:`Unpaired` when the rounds do not pair up (the caller falls back), and
    HpmlError when a row ran in fewer than :data:`MIN_SESSION_PAIRS` session pairs or
    has fewer than :data:`MIN_ROUNDS_AB` paired rounds.
    """
    base, current = merge_runs(base_runs), merge_runs(current_runs)
    sessions = paired_sessions(base_runs, current_runs)
    common = comparable_keys(base, current)
    rows = []
    for key in common:
        if key not in sessions:
            raise Unpaired(f"{key.label} never ran in both sessions of one session pair")
        rounds = sum(len(b) for b, _ in sessions[key])
        if rounds < MIN_ROUNDS_AB:
            raise HpmlError(f"benchmark {key.label!r} has {rounds} paired rounds; the test needs at least "
                            f"{MIN_ROUNDS_AB}: raise [tool.hpml.gate] pairs or repeats")
        if len(sessions[key]) < MIN_SESSION_PAIRS:
            raise HpmlError(f"benchmark {key.label!r} ran in {len(sessions[key])} session pair(s); the paired test "
                            f"needs at least {MIN_SESSION_PAIRS} (each is one pair of processes): "
                            "raise [tool.hpml.gate] repeats or --repeats")
        r = [float(np.median(log_ratios(b, c))) for b, c in sessions[key]]
        rows.append((key, r, session_t_test(r)))
    slower_p = holm([test[0] for _, _, test in rows])
    faster_p = holm([test[1] for _, _, test in rows])
    per_sample = {k for k in common if base[k].samples_per_round != current[k].samples_per_round}
    checks = []
    for (key, r, (_, _, (low, high))), p_slow, p_fast in zip(rows, slower_p, faster_p):
        time_ratio = float(np.exp(np.mean(r)))  # > 1: current is slower
        verdict, p = OK, min(p_slow, p_fast)
        if p_slow < alpha and time_ratio > 1.0 + min_effect:
            verdict, p = SLOWER, p_slow
        elif p_fast < alpha and time_ratio < 1.0 / (1.0 + min_effect):
            verdict, p = FASTER, p_fast
        b = [t for s, _ in sessions[key] for t in s]
        c = [t for _, s in sessions[key] for t in s]
        unit = "/sample" if key in per_sample else ""
        each = ", ".join(f"{np.exp(v) - 1:+.1%}" for v in r)
        checks.append(Check(
            key.label, "A/B paired", f"median {fmt_time(float(np.median(b)))}{unit} n={len(b)}",
            f"median {fmt_time(float(np.median(c)))}{unit} n={len(c)}", 1.0 / time_ratio, p, verdict,
            f"time {time_ratio - 1:+.1%} (mean over {len(r)} session pairs of their median per-pair ratio: {each})",
            (1.0 / high, 1.0 / low), tuple(round(float(np.exp(v)), 5) for v in r),
        ))
    for key in base:
        if key not in current:
            checks.append(Check(key.label, "A/B paired", fmt_time(base[key].median_s), "-", None, None, MISSING,
                                "only in base"))
    for key in current:
        if key not in base:
            checks.append(Check(key.label, "A/B paired", "-", fmt_time(current[key].median_s), None, None, NEW,
                                "only in current"))
    return checks


# --- output ---------------------------------------------------------------------------------


def format_table(checks: Sequence[Check]) -> str:
    """A fixed-width text table (CI logs), one line per check."""
    header = ("case", "check", "reference", "current", "ratio", "p", "verdict", "note")
    lines = []
    for c in checks:
        ratio = "-" if c.ratio is None else f"{c.ratio:.3f}"
        if c.ci is not None:
            ratio += f" [{c.ci[0]:.3f}, {c.ci[1]:.3f}]"
        p = "-" if c.p is None else f"{c.p:.2g}"
        lines.append((c.case, c.kind, c.reference, c.current, ratio, p, c.verdict, c.note))
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    out.append("  ".join("-" * w for w in widths))
    out += ["  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in lines]
    return "\n".join(out)


def failures(checks: Iterable[Check], fail_on_faster: bool = False, allow_missing: bool = False) -> list[Check]:
    """The checks that make the gate exit 1 (missing rows do, unless ``allow_missing``)."""
    failing = {SLOWER, WORSE} | ({FASTER} if fail_on_faster else set()) | (set() if allow_missing else {MISSING})
    return [c for c in checks if c.verdict in failing]


def write_checks_json(path: Path | str, checks: Sequence[Check], meta: dict[str, Any]) -> None:
    """Machine-readable results (for CI annotations or dashboards), written atomically."""
    path = Path(path)
    text = json.dumps({**meta, "checks": [asdict(c) for c in checks]}, indent=2) + "\n"
    try:
        write_text_atomic(path, text)
    except OSError as exc:
        raise HpmlError(f"--json {path}: cannot write it ({exc.strerror or exc})") from None
