"""The A/B gate on real runs: few false alarms on identical code, planted 10 % slowdowns caught.

Every number here comes from real pytest-benchmark sessions of :mod:`tinybench`
(subprocesses, ``--benchmark-save-data``). Both tests measure wall-clock time, so they
are ``slow``-marked measurements, not part of the default run: on a CI machine whose
speed shifted between sessions the interleaved version read 11/20 "FASTER" on
identical code (CI log of stop 18), which says the machine moved, not that the code did.

* Interleaved version (``-m slow``, ~20 s on a quiet machine): one project with 20 identical benchmarks; sessions of the
  base (A), identical code (B) and a planted 10 % slowdown (C) interleaved
  A B C / C B A, so each of the 20 benchmark pairs A/B and A/C gets 2 sessions x 20
  rounds per side.  Each pair is gated on its own (no Holm help), then each whole
  run once through the CLI.
* Paired version (``-m slow``, minutes): 20 independent comparisons each way, every one
  its own ``hpml gate --base HEAD`` run (temporary worktree, 2 session pairs taking turns
  call by call on the baton, rounds compared pair by pair: ``compare_paired``) in a
  throwaway git repository; the slowdown is an uncommitted code change.  This is the
  path CI's stage takes.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from hpml.gate.checks import FASTER, OK, SLOWER, compare_ab, compare_paired, merge_runs
from hpml.gate.revisions import run_interleaved
from hpml.results.runfiles import load_run

from . import tinybench

PAIRS = 20
ALPHA, MIN_EFFECT = 0.05, 0.05  # the defaults of [tool.hpml.gate]
MAX_FALSE_ALARMS, MIN_DETECTED = 1, 19


def verdicts(base: dict, current: dict) -> list[str]:
    """The gate's verdict for each benchmark pair, each pair gated alone."""
    return [compare_ab({k: base[k]}, {k: current[k]}, alpha=ALPHA, min_effect=MIN_EFFECT)[0].verdict
            for k in base]


def flagged(out: str) -> int:
    """Table rows of the printed gate output with a SLOWER or FASTER verdict."""
    return sum(1 for line in out.splitlines() if line.startswith("test_tiny[") and
               ("  SLOWER  " in line or "  FASTER  " in line))


def report(label: str, identical: list[str], slowed: list[str], seconds: float, capsys) -> None:
    alarms = sum(v != OK for v in identical)
    caught = sum(v == SLOWER for v in slowed)
    with capsys.disabled():
        print(f"\n[{label}] false alarms {alarms}/{len(identical)} ({alarms / len(identical):.0%}), "
              f"10% slowdowns caught {caught}/{len(slowed)} ({caught / len(slowed):.0%}), {seconds:.0f} s")


@pytest.mark.slow
def test_false_alarms_and_detection_interleaved_sessions(tmp_path: Path, gate, capsys) -> None:
    start = time.perf_counter()
    project = tinybench.make_project(tmp_path / "proj")
    sides: dict[str, list[Path]] = {"A": [], "B": [], "C": []}
    for i in range(2):
        for side in ("A", "B", "C") if i % 2 == 0 else ("C", "B", "A"):
            out = tmp_path / side / f"{i}.json"
            out.parent.mkdir(exist_ok=True)
            sides[side].append(tinybench.run_session(project, out, slowdown=0.10 if side == "C" else 0.0,
                                                     pairs=PAIRS))
    a, b, c = (merge_runs([load_run(p) for p in sides[s]]) for s in "ABC")
    identical, slowed = verdicts(a, b), verdicts(a, c)
    report("20 benchmark pairs, 2 interleaved sessions x 20 rounds per side", identical, slowed,
           time.perf_counter() - start, capsys)
    assert sum(v != OK for v in identical) <= MAX_FALSE_ALARMS, identical
    assert sum(v == SLOWER for v in slowed) >= MIN_DETECTED, slowed
    assert FASTER not in slowed

    # The same runs through the CLI (Holm over all 20 benchmarks of a run).
    code, out, _ = gate("--ab", tmp_path / "A", tmp_path / "C")
    assert code == 1 and flagged(out) >= MIN_DETECTED
    code, out, _ = gate("--ab", tmp_path / "A", tmp_path / "B")
    assert flagged(out) <= MAX_FALSE_ALARMS


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                          capture_output=True, text=True).stdout


@pytest.mark.slow
def test_false_alarms_and_detection_with_base_rev_paired(tmp_path: Path, capsys) -> None:
    start = time.perf_counter()
    repo = tinybench.make_project(tmp_path / "repo")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "tiny benchmark")
    results: dict[str, list[str]] = {}
    for label, reps in (("identical", 10), ("slowed", 11)):
        tinybench.make_project(repo, reps=reps)  # the working tree: same code, or 10 % more work
        results[label] = []
        for _ in range(PAIRS):
            sessions = run_interleaved("HEAD", ["benchmarks"], repeats=3, cwd=repo, log=lambda line: None)
            assert sessions.unpaired is None, sessions.unpaired
            checks = compare_paired(sessions.base, sessions.current, alpha=ALPHA, min_effect=MIN_EFFECT)
            results[label] += [c.verdict for c in checks]
    report("20 independent --base HEAD runs, 2 session pairs x 20 rounds, paired call by call",
           results["identical"], results["slowed"], time.perf_counter() - start, capsys)
    assert sum(v != OK for v in results["identical"]) <= MAX_FALSE_ALARMS, results["identical"]
    assert sum(v == SLOWER for v in results["slowed"]) >= MIN_DETECTED, results["slowed"]
    assert git(repo, "worktree", "list").count("\n") == 1  # every temporary worktree is gone
