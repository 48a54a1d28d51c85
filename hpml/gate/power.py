"""How often does CI's A/B gate raise a false alarm, and how often does it catch a slowdown?

``python -m hpml.gate.power --trials 20`` measures it on CI's own selection (``[tool.hpml.gate]
bench_args``, collected with pytest) and CI's own statistics (``compare_ab`` with the
configured alpha, minimum effect and test).  Three cases, each run ``--trials`` times:

* **identical code**: two independently built copies of every row; any SLOWER/FASTER
  verdict is a false alarm;
* **uniform slowdown**: every row of the current side carries ``--slowdown`` (10 %) of
  real planted compute (:class:`hpml.bench.harness.PlantedCompute`: matmuls on the same
  cores, a fixed amount per call like a code change, never a sleep); caught = the gate
  fails (exit 1);
* **one optimization slower**: only the last non-baseline row of the selection (CI's:
  channels_last) carries it, as when one optimization is silently dropped; caught = that
  row is flagged SLOWER.

Why in-process: CI's stage runs ``2 x repeats`` pytest sessions (about 20 s of start-up
each on 2 cores); 60 trials of that would take hours.  A trial here does what one CI gate
run measures -- per row and side ``repeats x rounds`` measured calls after one warm-up
call, sides interleaved call by call, every side's model built afresh for the trial --
and hands the rounds to the same test.  The four sides of a trial (reference, identical,
uniform, one-optimization) share the reference, so the three cases' verdicts within a
trial are correlated; the ``--trials`` verdicts of one case are independent.  What it
leaves out: differences between two *processes* (import order, memory layout), which CI's
separate sessions have on top; they are why the gate has a 5 % minimum effect.

Writes a Markdown table (and ``--json FILE``) with the counts, the per-trial time and the
command.  Run it on a quiet machine: the figures describe the machine it ran on.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from hpml.errors import HpmlError
from hpml.gate.config import GateConfig, load_gate_config
from hpml.gate.checks import FASTER, SLOWER, compare_ab
from hpml.results.atomic import write_text_atomic
from hpml.results.schema import Benchmark, CaseKey

CASES = ("identical", "uniform", "one_optimization")


@dataclass(frozen=True)
class Row:
    """One benchmark row of the selection: its key and how to build a fresh measured call."""

    key: CaseKey
    build: Callable[[float], Callable[[], Any]]  # planted fraction -> timed call


def collect_ids(bench_args: Sequence[str], cwd: Path) -> list[str]:
    """The test ids CI's selection collects (``pytest --collect-only``), e.g. ``test_train_step[digits-cpu-baseline-sgd]``."""
    cmd = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *bench_args]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    ids = [line.split("::")[-1] for line in proc.stdout.splitlines() if "::" in line]
    if proc.returncode != 0 or not ids:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
        raise HpmlError(f"collecting the selection ({' '.join(bench_args)}) failed: {' | '.join(tail)}")
    return ids


def build_rows(ids: Sequence[str]) -> list[Row]:
    """CI's selected train_step rows, built with the benchmarks' own workload builder."""
    from hpml.bench import matrix, workloads
    from hpml.bench.harness import BenchSession, timed_call
    from hpml.bench.profiles import default_profile_name, get_profile

    profile = get_profile(os.environ.get("HPML_BENCH_PROFILE") or default_profile_name())
    by_id = {f"test_train_step[{c.id}]": c for c in matrix.train_cases(profile)}
    unknown = [i for i in ids if i not in by_id]
    if unknown:
        raise HpmlError(f"the power study measures test_train_step rows only; the selection also has {unknown[0]}")
    session = BenchSession(profile, real_data=None)
    rows = []
    for test_id in ids:
        case = by_id[test_id]
        if matrix.skip_reason(case, profile):
            continue
        key = CaseKey(case.phase, case.label, case.model or "", case.device, case.optimizer or "", case.optimization)

        def build(fraction: float, case=case) -> Callable[[], Any]:
            spec = workloads.train_step_workload(case, session)
            return timed_call(spec.target, case.device, compute=fraction)

        rows.append(Row(key, build))
    if not rows:
        raise HpmlError("the selection holds no runnable train_step row")
    return rows


def one_trial(rows: Sequence[Row], config: GateConfig, rounds: int, slowdown: float) -> dict[str, list[str]]:
    """One trial of every case: the verdicts of the gate per case (``{case: [verdict per row]}``)."""
    target = rows[-1] if len(rows) > 1 else None  # the one optimization slowed down alone
    fractions = {
        "reference": [0.0] * len(rows),
        "identical": [0.0] * len(rows),
        "uniform": [slowdown] * len(rows),
        "one_optimization": [slowdown if row is target else 0.0 for row in rows],
    }
    sides = [s for s in fractions if s != "one_optimization" or target is not None]
    calls = {side: [row.build(f) for row, f in zip(rows, fractions[side])] for side in sides}
    times: dict[str, list[list[float]]] = {side: [[] for _ in rows] for side in sides}
    for r in range(rounds + 1):  # round 0: warm-up (and the planted work's calibration), not recorded
        order = sides[r % len(sides):] + sides[:r % len(sides)]  # each side takes each slot in turn
        for i in range(len(rows)):
            for side in order:
                start = time.perf_counter()
                calls[side][i]()  # ends with a device sync (timed_call)
                if r:
                    times[side][i].append(time.perf_counter() - start)

    def bench(side: str) -> dict[CaseKey, Benchmark]:
        return {row.key: Benchmark(row.key, row.key.label, row.key.label, None, sorted(t)[len(t) // 2], len(t),
                                   tuple(t))
                for row, t in zip(rows, times[side])}

    verdicts = {}
    for case in CASES:
        if case in sides:
            checks = compare_ab(bench("reference"), bench(case), alpha=config.alpha, min_effect=config.min_effect,
                                test=config.test)
            verdicts[case] = [c.verdict for c in checks]
    return verdicts


def tally(trials: Sequence[dict[str, list[str]]], rows: Sequence[Row]) -> dict[str, dict[str, Any]]:
    """Counts per case: false alarms (identical), detections (uniform: any SLOWER; one: that row SLOWER)."""
    out: dict[str, dict[str, Any]] = {}
    n = len(trials)
    if any("identical" in t for t in trials):
        alarms = sum(any(v in (SLOWER, FASTER) for v in t["identical"]) for t in trials)
        out["identical"] = {"what": "false alarms on identical code", "count": alarms, "trials": n}
    if any("uniform" in t for t in trials):
        caught = sum(SLOWER in t["uniform"] for t in trials)
        out["uniform"] = {"what": "uniform slowdown caught", "count": caught, "trials": n}
    if any("one_optimization" in t for t in trials):
        caught = sum(t["one_optimization"][-1] == SLOWER for t in trials)
        others = sum(v in (SLOWER, FASTER) for t in trials for v in t["one_optimization"][:-1])
        out["one_optimization"] = {"what": f"slowdown of {rows[-1].key.optimization} alone caught",
                                   "count": caught, "trials": n, "other_rows_flagged": others}
    return out


def markdown(result: dict[str, Any]) -> str:
    lines = [f"Measured with `{result['command']}` ({result['trials']} trials, "
             f"{result['seconds_per_trial']:.0f} s per trial, {result['machine']}); selection: "
             f"{', '.join(result['rows'])}; {result['rounds']} rounds per row and side; planted "
             f"{result['slowdown']:.0%} real compute.", "",
             "| case | result |", "| --- | --- |"]
    for case in result["cases"].values():
        extra = f" (other rows flagged: {case['other_rows_flagged']})" if "other_rows_flagged" in case else ""
        lines.append(f"| {case['what']} | {case['count']}/{case['trials']}{extra} |")
    return "\n".join(lines)


def write_json(path: Path, obj: dict[str, Any]) -> None:
    try:
        write_text_atomic(path, json.dumps(obj, indent=2))
    except OSError as exc:
        raise HpmlError(f"--json {path}: cannot write it ({exc.strerror or exc})") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hpml.gate.power", description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20, help="trials per case (default 20)")
    parser.add_argument("--slowdown", type=float, default=0.1, help="planted real compute, a fraction (default 0.1)")
    parser.add_argument("--rounds", type=int, help="measured calls per row and side (default: CI's, "
                        "repeats x the profile's rounds)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the result as JSON")
    args = parser.parse_args(argv)
    try:
        if args.trials < 1 or not 0 < args.slowdown < 1 or (args.rounds is not None and args.rounds < 4):
            raise HpmlError("--trials must be >= 1, --slowdown in (0, 1), --rounds >= 4")
        return _run(args)
    except HpmlError as exc:
        print(f"hpml gate power: error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from hpml.bench.profiles import default_profile_name, get_profile
    from hpml.machine import machine_info

    config = load_gate_config()
    root = config.source.parent if config.source is not None else Path.cwd()
    profile = get_profile(os.environ.get("HPML_BENCH_PROFILE") or default_profile_name())
    rounds = args.rounds or config.repeats * profile.rounds
    ids = collect_ids(config.bench_args, root)
    rows = build_rows(ids)
    print(f"power study: {len(rows)} row(s) ({', '.join(r.key.label for r in rows)}), {rounds} rounds per row and "
          f"side, {args.trials} trial(s), planted {args.slowdown:.0%}", flush=True)
    trials, start = [], time.perf_counter()
    for t in range(args.trials):
        trials.append(one_trial(rows, config, rounds, args.slowdown))
        print(f"trial {t + 1}/{args.trials}: " + "; ".join(f"{c} {','.join(v)}" for c, v in trials[-1].items()),
              flush=True)
    seconds = (time.perf_counter() - start) / args.trials
    info = machine_info()
    result = {
        "command": f"python -m hpml.gate.power --trials {args.trials}"
                   + (f" --slowdown {args.slowdown:g}" if args.slowdown != 0.1 else ""),
        "trials": args.trials, "rounds": rounds, "slowdown": args.slowdown, "seconds_per_trial": seconds,
        "rows": [r.key.label for r in rows], "alpha": config.alpha, "min_effect": config.min_effect,
        "test": config.test, "machine": f"{info.get('cpu') or '?'}, {os.cpu_count()} cores, torch {info.get('torch')}",
        "cases": tally(trials, rows),
    }
    print(markdown(result))
    if args.json is not None:
        write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
