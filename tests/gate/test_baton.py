"""The baton between two sessions (:mod:`hpml.bench.baton`): turns, ABBA order, and no hang ever.

Tiny child processes stand in for pytest sessions: each "timed call" appends the child's
name to a shared log (O_APPEND, so the log is the order the children really ran in) and
hands the baton over.  Every conduct() here has a timeout, so a regression that hangs
fails the test instead of stalling the run.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from hpml.bench import baton
from hpml.gate.revisions import PAIRS_ENV, session_args

TIMEOUT = 60.0  # s; generous for a loaded 2-core machine, still bounds a hang

CHILD = '''\
import os, sys, time
import {module} as baton

name, calls, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
log = os.open(sys.argv[4], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
for i in range(calls):
    os.write(log, name.encode())
    if mode == "die" and i == 2:
        os._exit(3)  # dies holding the baton, mid-run
    if mode == "hang":
        time.sleep(600)  # holds the baton and never hands it back
    if mode != "silent":  # "silent": code that predates the baton, never hands over
        baton.handover()
'''


@pytest.fixture
def child(tmp_path: Path):
    """Start one tiny child: (name, timed calls, mode) -> baton.Child."""
    (tmp_path / "tinychild.py").write_text(CHILD.format(module=baton.CHILD_MODULE))
    logs = []

    def start(name: str, calls: int, mode: str = "ok") -> baton.Child:
        out = open(tmp_path / f"{name}.out", "wb")
        logs.append(out)
        cmd = baton.child_command("tinychild", [name, str(calls), mode, str(tmp_path / "turns.log")])
        env = dict(os.environ, PYTHONPATH=str(tmp_path))
        return baton.spawn(name, cmd, cwd=tmp_path, env=env, output=out)

    yield start
    for out in logs:
        out.close()


def turns_log(tmp_path: Path) -> str:
    return (tmp_path / "turns.log").read_text()


def abba(first: str, second: str, turns: int) -> str:
    return "".join((first, second, second, first)[t % 4] for t in range(turns))


@pytest.mark.parametrize("first", [0, 1])
def test_strict_alternation_in_abba_order(child, tmp_path: Path, first: int) -> None:
    a, b = child("A", 6), child("B", 6)
    report = baton.conduct(a, b, first=first, timeout=TIMEOUT)
    leader, other = ("A", "B") if first == 0 else ("B", "A")
    assert turns_log(tmp_path) == abba(leader, other, 12)  # what the children did, in the order they did it
    # what the conductor handed out: one turn per call, and a last one in which the leader ran to its end
    assert "".join(report.turns) == abba(leader, other, 13)
    assert report.handovers == {"A": 6, "B": 6} and report.returncodes == {"A": 0, "B": 0}
    assert report.problem is None


def test_the_survivor_keeps_the_baton_when_the_other_finishes_first(child, tmp_path: Path) -> None:
    a, b = child("A", 2), child("B", 6)
    report = baton.conduct(a, b, timeout=TIMEOUT)
    assert turns_log(tmp_path) == "ABBA" + "BBBB"  # A is done after its 2 calls; B runs free
    assert report.returncodes == {"A": 0, "B": 0}
    assert report.handovers == {"A": 2, "B": 6}  # B's free calls are counted too
    assert "different numbers of timed calls (A 2, B 6)" in report.problem


def test_a_child_dying_mid_run_releases_the_other(child, tmp_path: Path) -> None:
    a, b = child("A", 6), child("B", 6, "die")
    start = time.monotonic()
    report = baton.conduct(a, b, timeout=TIMEOUT)
    assert time.monotonic() - start < TIMEOUT
    assert report.returncodes == {"A": 0, "B": 3}
    log = turns_log(tmp_path)
    assert log.count("A") == 6 and log.count("B") == 3  # A finished all its calls alone
    assert log.startswith("ABBAAB")


def test_a_child_that_never_hands_back_runs_to_its_end_then_the_other(child, tmp_path: Path) -> None:
    """A base revision older than the baton: its whole session is one turn; then the gate falls back."""
    a, b = child("A", 4, "silent"), child("B", 4)
    report = baton.conduct(a, b, timeout=TIMEOUT)
    assert turns_log(tmp_path) == "AAAABBBB"  # one after the other, never overlapping
    assert report.handovers["A"] == 0 and report.returncodes == {"A": 0, "B": 0}
    assert "the A session never handed the baton over" in report.problem


def test_a_child_that_hangs_holding_the_baton_is_killed_at_the_timeout(child, tmp_path: Path) -> None:
    a, b = child("A", 3), child("B", 3, "hang")
    start = time.monotonic()
    with pytest.raises(baton.BatonTimeout, match="ran past 3 s"):
        baton.conduct(a, b, timeout=3.0)
    assert time.monotonic() - start < 30
    assert a.proc.poll() is not None and b.proc.poll() is not None  # both stopped, nothing left running
    assert turns_log(tmp_path) == "AB"  # B took its first turn and kept it


def test_a_dead_conductor_sets_the_child_free(tmp_path: Path) -> None:
    """EOF on "go" (the gate died or released it) means run free: a child never waits forever."""
    go_r, go_w = os.pipe()
    done_r, done_w = os.pipe()
    os.close(go_w)  # the conductor is gone before the first turn
    client = baton.Client(go_r, done_w)
    client.wait()
    assert client.free
    client.handover()  # reports the call, does not wait
    assert os.read(done_r, 1) == baton.DONE
    for fd in (go_r, done_r, done_w):
        os.close(fd)


def test_client_takes_the_variable_out_of_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Processes a session starts (fresh-process rows, loader workers) must not read fd numbers of its own."""
    go_r, go_w = os.pipe()
    done_r, done_w = os.pipe()
    monkeypatch.setenv(baton.ENV, f"{go_r},{done_w}")
    client = baton.Client.from_env()
    assert not client.free and baton.ENV not in os.environ
    os.write(go_w, baton.GO)
    client.handover()  # writes done, then takes the go already waiting
    assert os.read(done_r, 1) == baton.DONE and client.handovers == 1
    monkeypatch.setenv(baton.ENV, "not,numbers")
    assert baton.Client.from_env().free  # anything else: no baton
    for fd in (go_r, go_w, done_r, done_w):
        os.close(fd)


def test_outside_a_gate_session_handover_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(baton.ENV, raising=False)
    monkeypatch.setattr(baton, "_CLIENT", None)
    baton.handover()
    assert baton.client().free


BENCH = '''\
import pytest

def work():
    return sum(range(1000))

def test_pedantic(benchmark):
    benchmark.pedantic(work, rounds=3, warmup_rounds=1, iterations=1)

'''


def test_pytest_benchmark_timer_hands_over_after_each_round(tmp_path: Path) -> None:
    """Pins pytest-benchmark's runner (start = timer(); ...; end = timer()): one hand-over per
    round, after its end timestamp, warm-up rounds included."""
    (tmp_path / "test_b.py").write_text(BENCH)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    children = []
    for name in ("A", "B"):
        args = session_args(["test_b.py"], tmp_path / f"{name}.json", tmp_path / "storage")
        children.append(baton.spawn(name, baton.child_command("pytest", args), cwd=tmp_path,
                                    env=dict(os.environ), output=open(tmp_path / f"{name}.out", "wb")))
    report = baton.conduct(*children, timeout=TIMEOUT)
    assert report.returncodes == {"A": 0, "B": 0}, (tmp_path / "A.out").read_text()
    assert report.handovers == {"A": 4, "B": 4} and report.problem is None  # 1 warm-up + 3 rounds each
    assert "".join(report.turns) == abba("A", "B", 9)



def test_timer_hands_over_only_at_a_runners_end_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(baton, "handover", lambda: calls.append(1))

    def runner() -> float:  # the shape of pytest-benchmark's runner
        start = baton.timer()
        end = baton.timer()
        return end - start

    def compute_timer_precision() -> None:  # any other reader, e.g. the precision probe
        for _ in range(5):
            baton.timer()

    runner()
    compute_timer_precision()
    assert len(calls) == 1


def test_gate_sessions_fix_the_pairs_the_benchmarks_read() -> None:
    from hpml.bench.profiles import FIXED_PAIRS_ENV

    assert PAIRS_ENV == FIXED_PAIRS_ENV
