"""``hpml history``: the steps in each row's time across the stored runs of one machine and profile.

Reads every pytest-benchmark run under ``--storage``, keeps those of the newest run's
machine class (:func:`hpml.results.machine_facts.comparable_machine`) and profile, orders them by
commit (git's order when the commits are in the repository around the working directory,
else by time), and per row finds the steps of its per-commit median time
(:mod:`hpml.results.steps`).  A step smaller than the run-to-run noise of that kind of row
(:func:`hpml.results.between_run.kind_of_row`), measured from these runs, is not a step.

Bad input is one line and exit 2: no storage, no run, no comparable runs, a bad ``-k``.
"""

from __future__ import annotations

import argparse
import math
import re
import statistics
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from hpml.results.between_run import kind_of_row
from hpml.errors import HpmlError
from hpml.results.machine_facts import comparable_machine, machine_line
from hpml.results.runfiles import HOW_TO_RUN, discover
from hpml.results.schema import Benchmark, Run
from hpml.results.steps import MIN_SIDE, Step, find_steps, noise_sigma, spread


def add_history_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage", type=Path, default=Path(".benchmarks"), metavar="DIR",
                        help="pytest-benchmark storage to read (default: .benchmarks)")
    parser.add_argument("-k", dest="keyword", metavar="EXPR",
                        help="only rows whose name matches this pytest -k expression")


def keyword_matcher(expr: str | None) -> Callable[[str], bool]:
    """pytest's ``-k`` grammar (case-insensitive substrings joined by and/or/not, parentheses) on a row
    name; written out here because hpml does not need pytest at run time."""
    if not expr:
        return lambda name: True
    tokens = re.findall(r"\(|\)|[^\s()]+", expr)
    pos = 0

    def bad(why: str) -> HpmlError:
        return HpmlError(f"-k {expr!r}: {why}")

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        if pos >= len(tokens):
            raise bad("ends early")
        pos += 1
        return tokens[pos - 1]

    def either() -> Callable[[str], bool]:
        terms = [both()]
        while peek() == "or":
            take()
            terms.append(both())
        return lambda name: any(t(name) for t in terms)

    def both() -> Callable[[str], bool]:
        terms = [negated()]
        while peek() == "and":
            take()
            terms.append(negated())
        return lambda name: all(t(name) for t in terms)

    def negated() -> Callable[[str], bool]:
        token = take()
        if token == "not":
            inner = negated()
            return lambda name: not inner(name)
        if token == "(":
            inner = either()
            if take() != ")":
                raise bad("a parenthesis is not closed")
            return inner
        if token in ("and", "or", ")"):
            raise bad(f"unexpected {token!r}")
        word = token.lower()
        return lambda name: word in name.lower()

    matcher = either()
    if pos != len(tokens):
        raise bad(f"unexpected {tokens[pos]!r}")
    return matcher


def git_order(commits: Sequence[str], cwd: Path) -> dict[str, int] | None:
    """Each commit's position in git's history (oldest first), or None when git does not know them all."""
    try:
        out = subprocess.run(["git", "rev-list", "--topo-order", "--reverse", "--all"], cwd=cwd,
                             capture_output=True, text=True, check=False)
    except OSError:
        return None
    if out.returncode != 0:
        return None
    order = {c: i for i, c in enumerate(out.stdout.split())}
    return order if all(c in order for c in commits) else None


@dataclass
class Point:
    """One commit of a row's series: the median time of its runs."""

    commit: str
    value: float  # log seconds per call, median over the commit's runs
    runs: int


@dataclass
class History:
    runs: list[Run]
    ordered_by: str
    left_out: list[str] = field(default_factory=list)
    commits: list[str] = field(default_factory=list)  # the series' x axis (commit ids, "+" when dirty)


def comparable_runs(runs: Sequence[Run]) -> tuple[list[Run], list[str]]:
    """The runs of the newest run's machine class and profile, and what was left out."""
    latest = runs[-1]
    machine = comparable_machine(latest.machine_info)
    same = [r for r in runs if comparable_machine(r.machine_info) == machine and r.profiles == latest.profiles]
    notes = []
    if len(same) < len(runs):
        notes.append(f"{len(runs) - len(same)} run(s) of other machines or profiles left out")
    return same, notes


def ordered(runs: list[Run], cwd: Path) -> History:
    """``runs`` by commit: git order inside the repository, else by time."""
    order = git_order([r.commit for r in runs], cwd)
    if order is None:
        first = {}
        for r in sorted(runs, key=lambda r: r.datetime):
            first.setdefault((r.commit, r.dirty), r.datetime)
        runs = sorted(runs, key=lambda r: (first[(r.commit, r.dirty)], r.datetime))
        how = "by time (their commits are not all in a git repository here)"
    else:
        runs = sorted(runs, key=lambda r: (order[r.commit], r.dirty, r.datetime))
        how = "by commit, in git's order"
    return History(runs, how)


def _label(run: Run) -> str:
    """A point of the series: the full commit id, ``+`` for a run with uncommitted changes."""
    return run.commit + ("+" if run.dirty else "")


def short(label: str) -> str:
    return label[:8] + ("+" if label.endswith("+") else "")


def series(history: History, matches: Callable[[str], bool]) -> dict[str, tuple[str, list[Point]]]:
    """Per row label: (its kind, its points per commit in order)."""
    by_row: dict[str, dict[str, list[float]]] = {}
    kinds: dict[str, str] = {}
    labels = list(dict.fromkeys(_label(r) for r in history.runs))
    history.commits = labels
    for run in history.runs:
        for key, bench in run.benchmarks.items():
            if not (matches(bench.fullname) or matches(key.label)):
                continue
            by_row.setdefault(key.label, {}).setdefault(_label(run), []).append(_per_call(bench))
            kinds[key.label] = kind_of_row(bench.extra) if key.is_hpml else "other"
    out = {}
    for label, per_commit in by_row.items():
        points = [Point(c, statistics.median(per_commit[c]), len(per_commit[c])) for c in labels if c in per_commit]
        out[label] = (kinds[label], points)
    return out


def _per_call(bench: Benchmark) -> float:
    return math.log(bench.median_s)


@dataclass(frozen=True)
class Found:
    row: str
    kind: str
    commit: str
    step: Step
    runs_before: int
    runs_after: int


def find_all(rows: dict[str, tuple[str, list[Point]]]) -> tuple[list[Found], dict[str, float | None]]:
    """Every row's steps, and each kind's noise sigma (pooled over its rows)."""
    sigmas: dict[str, float | None] = {}
    for kind in sorted({k for k, _ in rows.values()}):
        sigmas[kind] = noise_sigma([[p.value for p in pts] for k, pts in rows.values() if k == kind])
    found = []
    for label, (kind, points) in rows.items():
        sigma = sigmas[kind]
        if sigma is None:
            continue
        for step in find_steps([p.value for p in points], sigma):
            start = step.index - step.before
            found.append(Found(label, kind, points[step.index].commit, step,
                               sum(p.runs for p in points[start:step.index]),
                               sum(p.runs for p in points[step.index:step.index + step.after])))
    return found, sigmas


def run_history(args: argparse.Namespace) -> int:
    storage: Path = args.storage
    matches = keyword_matcher(args.keyword)
    if not storage.is_dir():
        raise HpmlError(f"{storage}: no benchmark storage here; {HOW_TO_RUN}")
    runs = discover([storage]).runs
    if not runs:
        raise HpmlError(f"{storage}: holds no pytest-benchmark run; {HOW_TO_RUN}")
    same, notes = comparable_runs(runs)
    if len(same) < 2:
        raise HpmlError(f"{storage}: no comparable runs: only one run of {machine_line(runs[-1].machine_info)} with "
                        f"profile {', '.join(sorted(runs[-1].profiles)) or '?'}; a history needs at least two")
    history = ordered(same, Path.cwd())
    rows = series(history, matches)
    if not rows:
        raise HpmlError(f"-k {args.keyword!r} matches no row of the {len(same)} comparable runs")
    found, sigmas = find_all(rows)
    print(f"hpml history: {len(same)} runs at {len(history.commits)} commits of "
          f"{machine_line(same[-1].machine_info)}, profile {', '.join(sorted(same[-1].profiles)) or '?'}, "
          f"ordered {history.ordered_by}" + (f"; {'; '.join(notes)}" if notes else ""))
    if len(history.commits) < 2 * MIN_SIDE:
        print(f"hpml history: {len(history.commits)} commits: a step needs {MIN_SIDE} on each side; no step can be "
              "called yet")
        return 0
    noise = ", ".join(f"{kind} {spread(s):.1%}" if s is not None else f"{kind} not measurable (under 3 differences)"
                      for kind, s in sigmas.items())
    print(f"hpml history: run-to-run noise per kind of row (90th percentile of |a/b - 1| between commits, from these "
          f"runs): {noise}; smaller steps are not steps")
    if not found:
        print(f"hpml history: no step in {len(rows)} row(s)")
        return 0
    width = max(len(f.row) for f in found)
    for f in sorted(found, key=lambda f: (history.commits.index(f.commit), f.row)):
        lo, hi = f.step.interval
        print(f"  {f.row:<{width}}  at {short(f.commit):<9}  "
              f"time {f.step.ratio - 1:+.1%} [{lo - 1:+.1%}, {hi - 1:+.1%}]  "
              f"{f.runs_before} run(s) before, {f.runs_after} after ({f.kind})")
    print(f"hpml history: {len(found)} step(s) in {len(rows)} row(s); time = the row's median time per call, "
          "[..] its 95% interval; find the commit with `hpml bisect GOOD BAD -k EXPR`")
    return 0
