"""How often does CI's A/B gate raise a false alarm, and how often does it catch a slowdown?

``python tools/gate_power.py --trials 20`` measures it the way CI's stage runs: every case of
a trial is one ``hpml gate --base`` comparison -- ``[tool.hpml.gate] repeats`` session pairs
of ``bench_args``, the two sessions of a pair started together and taking turns call by
call (:mod:`hpml.bench.baton`, fixed ``pairs`` per row), then the gate's own test
(:func:`hpml.gate.command.ab_checks`: paired, or its unpaired fallback) with the configured
alpha and minimum effect.  Both sides run the working tree; only the current side's
environment differs:

* **identical**: nothing planted; any SLOWER/FASTER verdict is a false alarm;
* **uniform**: ``HPML_PLANTED_COMPUTE`` = ``--slowdown`` (10 %) of real planted compute in
  every row (:class:`hpml.bench.planted.PlantedCompute`: matmuls on the same cores, a
  fixed amount per call like a code change, never a sleep); caught = the gate fails;
* **one_optimization**: the same work in the last row of the selection only
  (``HPML_PLANTED_COMPUTE_ONLY``; CI's: channels_last), as when one optimization is
  silently dropped; caught = that row is flagged SLOWER.

A comparison the gate refuses because a row was measured on a busy machine is not a
trial: it is listed (``refused_busy``) and the study goes on.

What it leaves out: the two sides import the same checkout, so a code change's effect
on memory layout is not in it.  A trial costs about three CI stages (one per case);
``--trials N`` and ``--cases`` make a short run.  Writes a Markdown table and, after every
trial (atomically), ``--json FILE`` with the counts so far, the per-trial time, the
command, and each row's time ratio per session pair (``session_ratios``: the values the
gate's t-test saw, so its spread on this machine can be read back).  Run it on a quiet machine: the figures describe the machine it ran on.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

from hpml.errors import HpmlError
from hpml.gate.config import GateConfig, load_gate_config
from hpml.gate.checks import FASTER, SLOWER
from hpml.gate.significance import MIN_SESSION_PAIRS
from hpml.files import write_text_atomic

CASES = ("identical", "uniform", "one_optimization")
#: The harness's knobs (hpml.bench.planted PLANTED_COMPUTE_ENV / PLANTED_ONLY_ENV; not imported: torch).
PLANTED_ENV, PLANTED_ONLY_ENV = "HPML_PLANTED_COMPUTE", "HPML_PLANTED_COMPUTE_ONLY"


def case_env(case: str, slowdown: float, target: str | None = None) -> dict[str, dict[str, str]]:
    """The extra environment of each side (by side name) for ``case``."""
    if case == "identical":
        return {}
    if case == "uniform":
        return {"current": {PLANTED_ENV: f"{slowdown:g}"}}
    if target is None:
        raise HpmlError("the one_optimization case needs the row to slow down")
    return {"current": {PLANTED_ENV: f"{slowdown:g}", PLANTED_ONLY_ENV: target}}


def run_case(root: Path, config: GateConfig, case: str, env: dict[str, dict[str, str]],
             log=lambda line: None) -> tuple[dict[str, str], str | None, dict[str, list[float]]]:
    """One gate comparison of the working tree with itself: (verdict per row label, unpaired reason,
    each row's time ratio per session pair, paired comparisons only)."""
    from hpml.gate.command import ab_checks
    from hpml.gate.revisions import Side, run_sessions

    tmp = Path(tempfile.mkdtemp(prefix="hpml-power-"))
    try:
        (tmp / "runs").mkdir()
        (tmp / "scratch").mkdir()
        sessions = run_sessions(Side("base", root, root), Side("current", root, root), config.bench_args,
                                config.repeats, tmp / "runs", tmp / "scratch", pairs=config.pairs, env=env,
                                label=f"{case}: working tree", log=log)
        checks, _ = ab_checks(sessions.base, sessions.current, sessions.unpaired or "", config, case)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ratios = {c.case: list(c.per_session) for c in checks if c.per_session is not None}
    return {c.case: c.verdict for c in checks}, sessions.unpaired, ratios


def target_row(labels: Sequence[str]) -> tuple[str, str]:
    """The row slowed down alone (the last of the selection) and the knob's value: an hpml row's
    optimization (``train:digits:resnet50:cpu:sgd:channels_last``), else the row's name."""
    label = labels[-1]
    fields = label.split(":")
    return label, (fields[-1] if len(fields) >= 5 else label)


def tally(trials: Sequence[dict[str, dict[str, str]]], target: str) -> dict[str, dict[str, Any]]:
    """Counts per case: false alarms (identical), detections (uniform: any SLOWER; one: ``target`` SLOWER)."""
    out: dict[str, dict[str, Any]] = {}
    if any("identical" in t for t in trials):
        done = [t["identical"] for t in trials if "identical" in t]
        alarms = sum(any(v in (SLOWER, FASTER) for v in row.values()) for row in done)
        out["identical"] = {"what": "false alarms on identical code", "count": alarms, "trials": len(done)}
    if any("uniform" in t for t in trials):
        done = [t["uniform"] for t in trials if "uniform" in t]
        caught = sum(SLOWER in row.values() for row in done)
        out["uniform"] = {"what": "uniform slowdown caught", "count": caught, "trials": len(done)}
    if any("one_optimization" in t for t in trials):
        done = [t["one_optimization"] for t in trials if "one_optimization" in t]
        caught = sum(row.get(target) == SLOWER for row in done)
        others = sum(v in (SLOWER, FASTER) for row in done for k, v in row.items() if k != target)
        out["one_optimization"] = {"what": f"slowdown of {target} alone caught", "count": caught,
                                   "trials": len(done), "other_rows_flagged": others}
    return out


def markdown(result: dict[str, Any]) -> str:
    lines = [f"Measured with `{result['command']}` ({result['trials_completed']} trials, "
             f"{result['seconds_per_trial']:.0f} s per trial, {result['machine']}); selection: "
             f"{', '.join(result['rows'])}; {result['repeats']} session pair(s) x {result['pairs']} pairs per row; "
             f"planted {result['slowdown']:.0%} real compute; {result['unpaired_runs']} comparison(s) fell back to "
             f"the unpaired test; {len(result.get('refused_busy', []))} refused on a busy machine (not counted).", "",
             "| case | result |", "| --- | --- |"]
    for case in result["cases"].values():
        extra = f" (other rows flagged: {case['other_rows_flagged']})" if "other_rows_flagged" in case else ""
        lines.append(f"| {case['what']} | {case['count']}/{case['trials']}{extra} |")
    return "\n".join(lines)


def write_json(path: Path, obj: dict[str, Any]) -> None:
    """Written atomically: a study stopped mid-way leaves the last complete file."""
    try:
        write_text_atomic(path, json.dumps(obj, indent=2) + "\n")
    except OSError as exc:
        raise HpmlError(f"--json {path}: cannot write it ({exc.strerror or exc})") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/gate_power.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20, help="trials per case (default 20)")
    parser.add_argument("--slowdown", type=float, default=0.1, help="planted real compute, a fraction (default 0.1)")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {', '.join(CASES)}")
    parser.add_argument("--repeats", type=int, help="session pairs per comparison (default: [tool.hpml.gate] repeats)")
    parser.add_argument("--pairs", type=int, help="pairs per row and session (default: [tool.hpml.gate] pairs)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the result as JSON (after every trial)")
    args = parser.parse_args(argv)
    try:
        cases = [c.strip() for c in args.cases.split(",") if c.strip()]
        if args.trials < 1 or not 0 < args.slowdown < 1 or (args.pairs is not None and args.pairs < 1) \
                or (args.repeats is not None and args.repeats < MIN_SESSION_PAIRS):
            raise HpmlError(f"--trials must be >= 1, --slowdown in (0, 1), --pairs >= 1, --repeats >= {MIN_SESSION_PAIRS}")
        if not cases or any(c not in CASES for c in cases):
            raise HpmlError(f"--cases {args.cases!r}: choose from {', '.join(CASES)}")
        return _run(args, [c for c in CASES if c in cases])  # identical first: it names the rows
    except HpmlError as exc:
        print(f"hpml gate power: error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, cases: Sequence[str]) -> int:
    from hpml.machine import machine_info

    config = load_gate_config()
    overrides = {k: v for k, v in (("repeats", args.repeats), ("pairs", args.pairs)) if v is not None}
    config = GateConfig(**{**config.__dict__, **overrides})
    root = config.source.parent if config.source is not None else Path.cwd()
    command = " ".join(["python tools/gate_power.py", *(argv_of(args, cases))])
    info = machine_info()
    result: dict[str, Any] = {
        "command": command, "trials": args.trials, "trials_completed": 0, "repeats": config.repeats,
        "pairs": config.pairs, "slowdown": args.slowdown, "bench_args": list(config.bench_args),
        "alpha": config.alpha, "min_effect": config.min_effect, "unpaired_runs": 0, "unpaired_reasons": [],
        "refused_busy": [],
        "machine": f"{info.get('cpu') or '?'}, {os.cpu_count()} cores, torch {info.get('torch')}",
        "rows": [], "seconds_per_trial": 0.0, "per_trial": [], "session_ratios": [], "cases": {},
    }
    print(f"power study: {', '.join(cases)}; {args.trials} trial(s) of {config.repeats} session pair(s) x "
          f"{config.pairs} pairs per row; planted {args.slowdown:.0%}", flush=True)
    trials: list[dict[str, dict[str, str]]] = []
    knob = None  # HPML_PLANTED_COMPUTE_ONLY of the one_optimization case
    start = time.perf_counter()
    for t in range(args.trials):
        verdicts: dict[str, dict[str, str]] = {}
        ratios: dict[str, dict[str, list[float]]] = {}
        for case in cases:
            if case == "one_optimization" and knob is None:
                # the selection's rows: from this trial's identical case, else one comparison to learn them
                labels = result["rows"] or list(run_case(root, config, "identical", {})[0])
                knob = target_row(labels)[1]
            try:
                verdicts[case], unpaired, ratios[case] = run_case(root, config, case,
                                                                  case_env(case, args.slowdown, knob))
            except HpmlError as exc:
                if "busy machine" not in str(exc):
                    raise
                # the gate refused a row measured while something else ran: not a trial of this case
                result["refused_busy"].append(f"trial {t + 1} {case}: {exc}")
                print(f"trial {t + 1}/{args.trials}: {case} refused, busy machine (not counted)", flush=True)
                continue
            result["rows"] = result["rows"] or list(verdicts[case])
            if unpaired is not None:
                result["unpaired_runs"] += 1
                result["unpaired_reasons"].append(f"trial {t + 1} {case}: {unpaired}")
        trials.append(verdicts)
        result["session_ratios"].append(ratios)
        target = target_row(result["rows"])[0]
        print(f"trial {t + 1}/{args.trials}: " + "; ".join(f"{c} {','.join(v.values())}" for c, v in verdicts.items()),
              flush=True)
        result.update(trials_completed=t + 1, seconds_per_trial=(time.perf_counter() - start) / (t + 1),
                      per_trial=trials, cases=tally(trials, target))
        if args.json is not None:
            write_json(args.json, result)
    print(markdown(result))
    return 0


def argv_of(args: argparse.Namespace, cases: Sequence[str]) -> list[str]:
    """The options that reproduce this study (defaults left out)."""
    out = ["--trials", str(args.trials)]
    if args.slowdown != 0.1:
        out += ["--slowdown", f"{args.slowdown:g}"]
    if list(cases) != list(CASES):
        out += ["--cases", ",".join(cases)]
    for name in ("repeats", "pairs"):
        if getattr(args, name) is not None:
            out += [f"--{name}", str(getattr(args, name))]
    return out


if __name__ == "__main__":
    sys.exit(main())
