"""``hpml bisect GOOD BAD [-k EXPR]``: the first commit where a row became slower than at GOOD, by the
gate's paired probes in temporary worktrees (docs/gate.md)."""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from hpml.bench.idle import idle_cpus, policy_from
from hpml.errors import HpmlError, one_line_message
from hpml.gate.checks import SLOWER, Check, format_table
from hpml.gate.config import GateConfig, load_gate_config, parse_bench_args
from hpml.gate.revisions import _git, resolve_revision, run_interleaved


def add_bisect_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("good", metavar="GOOD", help="a revision where the rows had their old speed")
    parser.add_argument("bad", metavar="BAD", help="a later revision where a row is slower")
    parser.add_argument("-k", dest="keyword", metavar="EXPR",
                        help="pytest -k expression narrowing the gate's selection (combined with its own -k)")
    parser.add_argument("--bench-args", metavar="ARGS",
                        help="pytest arguments selecting the benchmarks (default: [tool.hpml.gate] bench_args)")
    parser.add_argument("--repeats", type=int, metavar="N", help="session pairs per probe (default: the gate's)")
    parser.add_argument("--pairs", type=int, metavar="N", help="pairs per hpml row and session (default: the gate's)")
    parser.add_argument("--config", type=Path, metavar="PYPROJECT",
                        help="pyproject.toml to read [tool.hpml.gate] from (default: nearest above cwd)")


def with_keyword(bench_args: Sequence[str], expr: str | None) -> tuple[str, ...]:
    """``bench_args`` narrowed by ``-k expr`` (pytest keeps only the last -k: the two are joined with and)."""
    args = list(bench_args)
    if not expr:
        return tuple(args)
    for i, arg in enumerate(args):
        if arg == "-k" and i + 1 < len(args):
            args[i + 1] = f"({args[i + 1]}) and ({expr})"
            return tuple(args)
        if arg.startswith("-k") and len(arg) > 2:
            old = arg[2:].removeprefix("=")
            args[i] = f"-k=({old}) and ({expr})"
            return tuple(args)
    return (*args, "-k", expr)


@dataclass
class Probe:
    commit: str
    outcome: str  # "slower", "not slower" or "undecided"
    detail: str
    convicting: list[Check] = field(default_factory=list)
    seconds: float = 0.0


def _subject(commit: str, top: Path) -> str:
    return _git(["log", "-1", "--format=%s", commit], top).stdout.strip()[:60]


def probe(good: str, commit: str, config: GateConfig, bench_args: Sequence[str], top: Path) -> Probe:
    """GOOD against ``commit``, paired; never raises for what a probe may meet (an undecided probe)."""
    from hpml.gate.command import ab_checks

    start = time.monotonic()
    try:
        with idle_cpus(policy_from(None), probe=False):
            sessions = run_interleaved(good, bench_args, config.repeats, cwd=top, pairs=config.pairs,
                                       current_rev=commit, log=lambda line: None)
        checks, header = ab_checks(sessions.base, sessions.current, sessions.unpaired or "", config,
                                   f"{good[:8]} vs {commit[:8]}")
    except HpmlError as exc:
        return Probe(commit, "undecided", one_line_message(exc), seconds=time.monotonic() - start)
    slower = [c for c in checks if c.verdict == SLOWER]
    how = "paired" if header[0].startswith("A/B paired") else "unpaired fallback"
    if slower:
        worst = max(slower, key=lambda c: 1 / c.ratio if c.ratio else 0)
        detail = f"slower ({how}): {worst.case} time {1 / worst.ratio - 1:+.1%}, p {worst.p:.2g}" + (
            f" and {len(slower) - 1} more row(s)" if len(slower) > 1 else "")
        return Probe(commit, "slower", detail, slower, time.monotonic() - start)
    return Probe(commit, "not slower", f"not slower ({how}): {len(checks)} row(s) within the gate's bounds",
                 seconds=time.monotonic() - start)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def _config(args: argparse.Namespace) -> GateConfig:
    from hpml.gate.command import _config as gate_config

    for name in ("tolerance", "alpha", "min_effect", "test"):
        setattr(args, name, None)
    return gate_config(args)


def run_bisect(args: argparse.Namespace) -> int:
    cwd = Path.cwd().resolve()
    out = _git(["rev-parse", "--show-toplevel"], cwd)
    if out.returncode != 0:
        raise HpmlError(f"hpml bisect needs a git repository, and {cwd} is not inside one")
    top = Path(out.stdout.strip())
    good = _revision(args.good, "GOOD", top)
    bad = _revision(args.bad, "BAD", top)
    if _git(["merge-base", "--is-ancestor", good, bad], top).returncode != 0:
        raise HpmlError(f"GOOD {args.good} is not an ancestor of BAD {args.bad}; bisect needs GOOD before BAD")
    commits = _git(["rev-list", "--first-parent", "--reverse", f"{good}..{bad}"], top).stdout.split()
    if not commits:
        raise HpmlError(f"GOOD {args.good} and BAD {args.bad} are the same commit: nothing to bisect")
    config = _config(args)
    bench_args = with_keyword(config.bench_args, args.keyword)
    print(f"hpml bisect: {len(commits)} commit(s) after GOOD {good[:8]} up to BAD {bad[:8]}; each probe: "
          f"{config.repeats} session pairs of GOOD and the commit, paired call by call "
          f"(pytest {' '.join(bench_args)})")
    probes: list[Probe] = []
    lo, hi = -1, len(commits) - 1  # commits[lo] not slower (-1: GOOD), commits[hi] slower
    undecided: set[int] = set()

    def run(index: int, confirmed: bool = True) -> Probe:
        open_count = sum(1 for i in range(lo + 1, hi) if i not in undecided)
        to_go = (0 if confirmed else 1) + math.ceil(math.log2(open_count + 1))  # this probe included
        eta = f", about {_duration(to_go * sum(p.seconds for p in probes) / len(probes))} left" if probes else ""
        commit = commits[index]
        print(f"hpml bisect: probe {len(probes) + 1} of about {len(probes) + to_go}{eta}: {commit[:8]} "
              f"{_subject(commit, top)!r}", flush=True)
        result = probe(good, commit, config, bench_args, top)
        probes.append(result)
        print(f"hpml bisect:   {commit[:8]}: {result.detail} ({_duration(result.seconds)})", flush=True)
        return result

    first = run(hi, confirmed=False)
    if first.outcome == "undecided":
        raise HpmlError(f"BAD {args.bad} cannot be compared with GOOD: {first.detail}")
    if first.outcome == "not slower":
        print(f"hpml bisect: BAD {bad[:8]} is not slower than GOOD {good[:8]} in the gate's test: nothing to bisect")
        return 0
    convicting = {hi: first}
    while True:
        open_ = [i for i in range(lo + 1, hi) if i not in undecided]
        if not open_:
            break
        middle = (lo + hi) / 2
        index = min(open_, key=lambda i: (abs(i - middle), i))
        result = run(index)
        if result.outcome == "slower":
            hi = index
            convicting[index] = result
        elif result.outcome == "not slower":
            lo = index
        else:
            undecided.add(index)
    left = [i for i in range(lo + 1, hi) if i in undecided]
    found = convicting[hi]
    if left:
        names = ", ".join(commits[i][:8] for i in left)
        print(f"hpml bisect: undecided: the first slower commit is one of {names} (no verdict) or "
              f"{commits[hi][:8]} (slower), after {len(probes)} probe(s)")
        return 1
    print(f"hpml bisect: first slower commit: {commits[hi]} {_subject(commits[hi], top)!r} "
          f"(after {len(probes)} probe(s); its parent {'GOOD' if lo == -1 else commits[lo][:8]} was not slower)")
    print(f"hpml bisect: the comparison that convicts it (GOOD {good[:8]} vs {commits[hi][:8]}):")
    print(format_table(found.convicting))
    return 0


def _revision(rev: str, name: str, top: Path) -> str:
    try:
        return resolve_revision(rev, top)
    except HpmlError:
        raise HpmlError(f"{name} {rev!r} is not a commit git knows here; try a branch, tag or commit id") from None
