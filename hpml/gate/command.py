"""``hpml gate``: exit 0 when nothing regressed, 1 on a regression, 2 (HpmlError) on bad input.

Modes:

* default -- same-run speedups of the latest summary (or ``--summary FILE``)
  against ``[tool.hpml.gate.min_speedup]``, and against ``--reference FILE`` if given;
* ``--ab BASE CURRENT`` -- raw timings of two runs (files or folders of runs, each
  folder's runs pooled), Mann-Whitney U + minimum effect, Holm-corrected;
* ``--base REV`` -- run ``--bench-args`` at REV (temporary worktree) and at the
  working tree, two sessions at once taking turns call by call (:mod:`hpml.bench.baton`),
  then a *paired* A/B comparison of round i against round i, tested across the session
  pairs (a t-test: each session pair is one pair of processes); when the
  rounds cannot be paired (a base revision older than the baton), the unpaired test of
  ``--ab``, said in one line (``--base auto``: the merge-base with the default branch,
  else the previous commit).

Fails closed: a gated row that is missing fails (exit 1) unless ``--allow-missing``;
a run with nothing comparable, NaN/inf/zero/negative numbers, a busy gated row or an
unwritable ``--json`` is bad input (one line, exit 2).  Exit 1 means a regression only.

A table of everything checked is always printed.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

from hpml import argtypes
from hpml.bench.idle import idle_cpus, policy_from
from hpml.errors import HpmlError
from hpml.results.machine import cpu_class
from hpml.gate.config import (DEFAULT_ALPHA, DEFAULT_MIN_EFFECT, DEFAULT_PAIRS, DEFAULT_REPEATS, DEFAULT_TOLERANCE, TESTS,
                              GateConfig, load_gate_config, parse_bench_args)
from hpml.gate.checks import (
    MISSING, Check, Unpaired, check_compatible, check_expectations, check_metrics, check_reference, compare_ab,
    compare_paired, failures, format_table, load_side, merge_runs, underpowered,
    write_checks_json,
)
from hpml.gate.markdown import Facts, render as render_markdown
from hpml.gate.revisions import auto_base, run_interleaved
from hpml.results.machine import machine_line
from hpml.results.markdown import STEP_SUMMARY_ENV, check_markdown_path, escape, write_markdown
from hpml.results.atomic import check_writable_file
from hpml.results.summary import keyed_rows, latest_summary, load_summary, validate_run
from hpml.results.schema import Run


def add_gate_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``hpml gate`` (the CLI wires them in with one call)."""
    mode = parser.add_argument_group("what to compare (default: the latest run summary)")
    mode.add_argument("--summary", type=argtypes.path, metavar="FILE",
                      help="run summary to gate (default: newest STORAGE/summaries/*.json); "
                           "a pytest-benchmark JSON file is summarized on the fly")
    mode.add_argument("--reference", type=argtypes.path, metavar="FILE",
                      help="also fail when a same-run speedup fell below this summary's by more than the tolerance")
    mode.add_argument("--ab", nargs=2, type=argtypes.path, metavar=("BASE", "CURRENT"),
                      help="A/B test of raw timings: two pytest-benchmark JSON files (or folders of them, pooled) "
                           "written with --benchmark-save-data")
    mode.add_argument("--base", metavar="REV",
                      help="run the selection at git revision REV and at the working tree, call by call, then a "
                           "paired A/B; 'auto': the merge-base with the default branch, else the previous commit (none: the "
                           "stage says so and passes)")
    mode.add_argument("--storage", type=argtypes.path, default=Path(".benchmarks"), metavar="DIR",
                      help="pytest-benchmark storage holding summaries/ (default: .benchmarks)")
    mode.add_argument("--which-reference", action="store_true",
                      help="print the reference summary [tool.hpml.gate] holds for this machine's CPU class and "
                           "exit 0; print nothing on stdout (the reason on stderr) when it holds none, so its "
                           "\"reference\" expectations cannot gate here")
    run = parser.add_argument_group("--base runs")
    run.add_argument("--bench-args", metavar="ARGS",
                     help="pytest arguments selecting the benchmarks, one shell-quoted string "
                          "(default: [tool.hpml.gate] bench_args, else "
                          "\"benchmarks -k 'digits and baseline and not end_to_end'\"); "
                          "write --bench-args='-k foo' when it starts with a dash")
    run.add_argument("--repeats", type=int, metavar="N",
                     help="session pairs (base and current run together, call by call; default: [tool.hpml.gate] "
                          f"repeats, else {DEFAULT_REPEATS})")
    run.add_argument("--pairs", type=int, metavar="N",
                     help="fixed (baseline, optimization) pairs per hpml row and session (default: [tool.hpml.gate] "
                          f"pairs, else {DEFAULT_PAIRS})")
    run.add_argument("--keep", type=argtypes.path, metavar="DIR", help="keep the session JSON files of --base in DIR")
    thresholds = parser.add_argument_group("thresholds (override [tool.hpml.gate] in pyproject.toml)")
    thresholds.add_argument("--config", type=argtypes.path, metavar="PYPROJECT",
                            help="pyproject.toml to read [tool.hpml.gate] from (default: nearest above cwd)")
    thresholds.add_argument("--tolerance", type=float, help=f"allowed relative drop of a speedup (default {DEFAULT_TOLERANCE})")
    thresholds.add_argument("--alpha", type=float, help=f"A/B family-wise false-alarm rate (default {DEFAULT_ALPHA})")
    thresholds.add_argument("--min-effect", type=float,
                            help=f"A/B: smallest relative change of the typical time that can fail (default {DEFAULT_MIN_EFFECT})")
    thresholds.add_argument("--test", choices=TESTS,
                            help="A/B test: 'quantile' (25th percentile, permutation; robust to a loaded machine, "
                                 "default) or 'mannwhitney' (medians, Mann-Whitney U)")
    verdict = parser.add_argument_group("verdict")
    verdict.add_argument("--fail-on-faster", action="store_true",
                         help="also exit 1 on a significant speed-up (a benchmark that stopped doing its work)")
    verdict.add_argument("--allow-missing", action="store_true",
                         help="do not fail on gated rows missing from the run (or only in the A/B base); "
                              "they are listed instead")
    verdict.add_argument("--fail-on-missing", action="store_true",
                         help=argparse.SUPPRESS)  # the default since missing rows fail; kept for old scripts
    verdict.add_argument("--allow-other-machine", action="store_true",
                         help="A/B: compare raw timings even though the runs come from different machines")
    verdict.add_argument("--json", type=argtypes.path, metavar="FILE", help="also write the checks as JSON")
    verdict.add_argument("--markdown", type=argtypes.path, metavar="FILE",
                         help="also write the verdict as GitHub Markdown (appended to $GITHUB_STEP_SUMMARY "
                              "when that is set)")


#: Command-line flags that override [tool.hpml.gate] keys (their errors name the flag).
FLAGS = {"tolerance": "--tolerance", "alpha": "--alpha", "min_effect": "--min-effect", "test": "--test",
         "repeats": "--repeats", "pairs": "--pairs"}


def _config(args: argparse.Namespace) -> GateConfig:
    config = load_gate_config(args.config)
    overrides: dict[str, Any] = {
        name: getattr(args, name) for name in FLAGS if getattr(args, name, None) is not None
    }
    for name, value in overrides.items():
        try:
            GateConfig(**{name: value})  # validate the flag alone, so the message names the flag
        except HpmlError as exc:
            raise HpmlError(str(exc).replace(f"[tool.hpml.gate] {name}", FLAGS[name])) from None
    if getattr(args, "bench_args", None) is not None:
        overrides["bench_args"] = parse_bench_args(args.bench_args)
    if not overrides:
        return config
    return GateConfig(**{**config.__dict__, **overrides})  # re-validated in __post_init__


def _summary_mode(args: argparse.Namespace, config: GateConfig) -> tuple[list[Check], list[str], Facts]:
    path = args.summary if args.summary is not None else latest_summary(args.storage)
    current = load_summary(path)
    facts = Facts(machine_line(current.get("machine")), f"`{str(current.get('commit'))[:8]}`"
                  + (" (uncommitted changes)" if current.get("dirty") else ""), _floors(current))
    header = [f"same-run speedups of {path} (commit {str(current.get('commit'))[:8]}, "
              f"profile {current.get('profile') or '?'})"]
    comparable = [r for k, r in keyed_rows(current).items()
                  if k.is_hpml and k.optimization != "baseline" and r.get("speedup") is not None]
    if not comparable:
        raise HpmlError(f"{path}: nothing to compare: no optimization row has a same-run speedup (no hpml rows, "
                        "or none with its baseline in the same run)")
    derived = any(e.min_speedup is None for e in config.expectations)  # "reference" expectations
    cls = cpu_class(current.get("machine") or {})
    wants_reference = derived or bool(config.metrics)  # gated metrics are held to the reference too
    ref_path = args.reference if args.reference is not None else config.reference_for(cls) if wants_reference else None
    if derived and ref_path is None and config.references:
        # A speedup such as bf16 autocast's depends on the CPU's ISA: a reference from another class
        # would gate noise (or fail every run), so these expectations wait for a reference of this class.
        header.append(f"note: {_no_reference(cls)}; its \"reference\" expectations are not gated on this machine")
        config = dataclasses.replace(config, expectations=tuple(e for e in config.expectations
                                                                 if e.min_speedup is not None))
    reference = load_summary(ref_path) if ref_path is not None else None
    if reference is not None:
        header.append(f"reference: {ref_path} (commit {str(reference.get('commit'))[:8]})")
        facts.commits += f", reference `{str(reference.get('commit'))[:8]}`"
        if reference.get("profile") and current.get("profile") and reference["profile"] != current["profile"]:
            raise HpmlError(f"{ref_path} was measured with profile {reference['profile']!r} and {path} with "
                            f"{current['profile']!r}; speedups of different workload sizes are not comparable")
    checks = check_expectations(current, config, path, reference, ref_path)
    busy = current.get("busy_rows")
    if isinstance(busy, int) and not isinstance(busy, bool) and busy > 0:
        header.append(f"note: {busy} row(s) were measured on a busy machine; a gated one stops the gate (exit 2)")
    if args.reference is not None:
        if (reference.get("machine") or {}).get("cpu") != (current.get("machine") or {}).get("cpu"):
            header.append("note: reference from another machine; same-run speedups still compare, raw times would not")
        checks += check_reference(current, reference, config, path)
    if reference is not None:
        checks += check_metrics(current, reference, config, path)
    elif config.metrics:
        header.append(f"note: no reference summary here: the gated metrics ({', '.join(config.metrics)}) "
                      "are not checked")
    return checks, header, facts


def _floors(summary: dict[str, Any]) -> str:
    """The summary's noise floors (each phase's A/A control), as one phrase."""
    floors = summary.get("noise_floor") or {}
    parts = [f"{phase} {f['interval'][0]:.2f}-{f['interval'][1]:.2f}" for phase, f in floors.items()
             if isinstance(f, dict) and isinstance(f.get("interval"), list) and len(f["interval"]) == 2]
    return ("A/A control (baseline vs itself) per phase: " + ", ".join(parts)) if parts else \
        "not measured in this run (no paired baseline row)"


def _ab_facts(base_runs: list[Run], current_runs: list[Run], config: GateConfig) -> Facts:
    def commits(runs: list[Run]) -> str:
        names = dict.fromkeys(f"`{r.short_commit}`" + (" (uncommitted changes)" if r.dirty else "") for r in runs)
        return ", ".join(names) or "?"

    machine = machine_line(current_runs[0].machine_info) if current_runs else "?"
    return Facts(machine, f"base {commits(base_runs)} → current {commits(current_runs)}",
                 f"changes under {config.min_effect:.0%} are never flagged; family-wise alpha {config.alpha:g} (Holm)")


def _ab_mode(args: argparse.Namespace, config: GateConfig) -> tuple[list[Check], list[str], Facts]:
    if args.ab is not None:
        base_runs, current_runs = load_side(args.ab[0]), load_side(args.ab[1])
        where = f"{args.ab[0]} vs {args.ab[1]}"
        unpaired = None
    else:
        # Both revisions' sessions under one idle state: an older base revision holds no PM QoS request itself.
        with idle_cpus(policy_from(None), probe=False):
            sessions = run_interleaved(args.base, config.bench_args, config.repeats, keep=args.keep,
                                       pairs=config.pairs)
        base_runs, current_runs, unpaired = sessions.base, sessions.current, sessions.unpaired or ""
        where = f"{args.base} vs working tree, {config.repeats} session pair(s)"
    checks, header = ab_checks(base_runs, current_runs, unpaired, config, where,
                               allow_other_machine=args.allow_other_machine)
    return checks, header, _ab_facts(base_runs, current_runs, config)


def ab_checks(base_runs: list[Run], current_runs: list[Run], unpaired: str | None, config: GateConfig, where: str,
              *, allow_other_machine: bool = False) -> tuple[list[Check], list[str]]:
    """The A/B checks and header lines of ``--ab`` / ``--base`` (and the power study).

    ``unpaired``: None for ``--ab`` (files carry no pairing: the unpaired test); for
    ``--base`` sessions "" when they alternated call by call (the paired test), else
    why not (the unpaired test, with that reason as the first header line).
    """
    for run in (*base_runs, *current_runs):
        validate_run(run)
    check_compatible(base_runs, current_runs, allow_other_machine)
    if unpaired == "":
        try:
            checks = compare_paired(base_runs, current_runs, alpha=config.alpha, min_effect=config.min_effect)
        except Unpaired as exc:
            unpaired = str(exc)
        else:
            header = [f"A/B paired call by call: {where}",
                      f"flag when the time ratio (mean over session pairs of their median per-pair ratio) moves by "
                      f"more than {config.min_effect:.0%} and the Holm-adjusted one-sided t-test across session pairs "
                      f"gives p < {config.alpha:g}"]
            return checks, header
    base, current = merge_runs(base_runs), merge_runs(current_runs)
    checks = compare_ab(base, current, alpha=config.alpha, min_effect=config.min_effect, test=config.test)
    typical, test = (("25th-percentile", "permutation") if config.test == "quantile"
                     else ("median", "Mann-Whitney U"))
    header = [f"A/B of raw round timings: {where}",
              f"flag when the {typical} round time moves by more than {config.min_effect:.0%} and the "
              f"Holm-adjusted {test} p < {config.alpha:g}"]
    if unpaired is not None:
        header.insert(0, f"unpaired fallback: {unpaired}; the rounds of each side are pooled")
    weak = underpowered(base, current, config.alpha)
    if weak:
        header.append(f"note: {len(weak)} benchmark(s) have too few rounds to ever be flagged (e.g. {weak[0]}); "
                      "raise --benchmark-min-rounds or --repeats")
    return checks, header


def run_gate(args: argparse.Namespace) -> int:
    """Run the gate; 0 ok, 1 regression.  Bad input raises HpmlError (the CLI exits 2).

    CI reads exit 1 as "slower": an unexpected error inside the gate is re-raised as an
    HpmlError (exit 2, one line) so that a crash never passes for a regression.
    """
    try:
        return _run_gate(args)
    except (HpmlError, KeyboardInterrupt):
        raise
    except Exception as exc:
        raise HpmlError(f"the gate itself failed ({type(exc).__name__}: {exc}); "
                        "this is a bug in hpml gate, not a regression") from None


def _no_reference(cls: str | None) -> str:
    return f"no reference summary for CPU class {cls or 'unknown'} in [tool.hpml.gate] reference"


def _which_reference(config: GateConfig) -> int:
    """``--which-reference``: CI asks before measuring rows that only a reference could gate."""
    from hpml.machine import machine_info

    cls = cpu_class(machine_info())
    path = config.reference_for(cls)
    if path is None:
        print(f"hpml gate: {_no_reference(cls)} (it has: {', '.join(k for k, _ in config.references) or 'none'})",
              file=sys.stderr)
    else:
        print(path)
    return 0


def _resolved(argv: list[str], base: str) -> list[str]:
    """``argv`` with ``--base auto`` replaced by the commit it chose (the command that reproduces the verdict)."""
    out = []
    for i, arg in enumerate(argv):
        if arg == "--base=auto":
            arg = f"--base={base}"
        elif arg == "auto" and i > 0 and argv[i - 1] == "--base":
            arg = base
        out.append(arg)
    return out


def _run_gate(args: argparse.Namespace) -> int:
    ab = getattr(args, "ab", None) is not None or getattr(args, "base", None) is not None
    if args.ab is not None and args.base is not None:
        raise HpmlError("--ab and --base both choose the A/B runs; pass one of them")
    if ab and (args.summary is not None or args.reference is not None):
        raise HpmlError("--summary/--reference gate same-run speedups, --ab/--base raw timings; pick one mode")
    config = _config(args)
    # before any session runs, not after them
    if args.json is not None:
        check_writable_file(args.json, "--json", create=False)
    if getattr(args, "which_reference", False):
        return _which_reference(config)
    markdown = getattr(args, "markdown", None)
    check_markdown_path(markdown)
    argv = list(getattr(args, "argv", None) or ["gate"])
    if args.base == "auto":
        base, why = auto_base()
        if base is None:
            print(f"hpml gate: no base revision to compare with ({why}); skipping the A/B stage")
            if markdown is not None or os.environ.get(STEP_SUMMARY_ENV):
                write_markdown(markdown, f"## hpml gate\n\nno base revision to compare with ({escape(why)}); "
                                         "the A/B stage was skipped\n")
            return 0
        print(f"hpml gate: --base auto: {why}")
        args.base = base
        argv = _resolved(argv, base)
    checks, header, facts = (_ab_mode if ab else _summary_mode)(args, config)
    if config.source is not None:
        header.append(f"config: {config.source}")
    print("\n".join(f"hpml gate: {line}" for line in header))
    print(format_table(checks))
    print("ratio = current speed / reference speed (< 1: slower); A/B ratio [..]: 95% interval (paired: t over "
          "session pairs, else bootstrap); speedup [..] 95%: the paired interval (68%: an older summary's spread)")
    failed = failures(checks, args.fail_on_faster, args.allow_missing)
    missing = list(dict.fromkeys(c.case for c in checks if c.verdict == MISSING))
    if args.json is not None:
        write_checks_json(args.json, checks, {"exit": 1 if failed else 0, "header": header})
    if markdown is not None or os.environ.get(STEP_SUMMARY_ENV):
        write_markdown(markdown, render_markdown(checks, failed, header, facts, argv))
    if failed:
        listed = list(dict.fromkeys(f"{c.case} ({c.verdict})" for c in failed))
        names = ", ".join(listed[:10]) + (f" and {len(listed) - 10} more" if len(listed) > 10 else "")
        print(f"hpml gate: FAIL: {len(failed)} check(s) failed: {names}")
        return 1
    print(f"hpml gate: OK: {len(checks)} check(s), none failed"
          + (f"; allowed missing (--allow-missing): {', '.join(missing)}" if missing else ""))
    return 0

