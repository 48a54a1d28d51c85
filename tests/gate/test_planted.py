"""The planted regression the gate is tested with: real work inside every measured call.

``HPML_PLANTED_COMPUTE`` must (a) add real compute, not a sleep, (b) of a fixed size once
calibrated, like a code change, and (c) reach every measured row: every
``benchmark.pedantic`` in the benchmarks goes through :func:`hpml.bench.sides.timed_call`.
"""

from __future__ import annotations

import ast
import time
from pathlib import Path

import pytest
import torch

from hpml.bench.planted import planted_compute, PLANTED_COMPUTE_ENV, PLANTED_ONLY_ENV, PlantedCompute
from hpml.bench.sides import timed_call
from hpml.errors import HpmlError

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"


def _work() -> torch.Tensor:
    """~a few ms of single-threaded CPU work."""
    x = torch.ones(128, 128)
    for _ in range(40):
        x = torch.mm(x, x) / 128
    return x


def _cpu_seconds(call) -> float:
    # CPU time of this thread (torch runs one thread here, inline): a sleep would not show, and
    # neither do other threads (the process's CPU time once counted an idle thread pool spinning)
    start = time.thread_time()
    call()
    return time.thread_time() - start


def _fastest_interleaved(a, b, calls: int) -> tuple[float, float]:
    """The fastest CPU time of ``a`` and of ``b`` over ``calls`` calls each, alternated.  This
    machine's speed switches between modes ~40 % apart for tens of ms at a time: ``a`` timed
    all at once in a slow spell and ``b`` in a fast one read 50 % planted as +7 %."""
    times = [(_cpu_seconds(a), _cpu_seconds(b)) for _ in range(calls)]
    return min(t for t, _ in times), min(t for _, t in times)


@pytest.mark.parametrize("raw, value", [("", 0.0), ("0", 0.0), ("0.1", 0.1), (" 0.25 ", 0.25)])
def test_knob_parses(raw: str, value: float) -> None:
    assert planted_compute({PLANTED_COMPUTE_ENV: raw}) == value


@pytest.mark.parametrize("raw", ["ten", "-0.1", "nan", "inf"])
def test_bad_knob_is_one_clear_error(raw: str) -> None:
    with pytest.raises(HpmlError, match=PLANTED_COMPUTE_ENV):
        planted_compute({PLANTED_COMPUTE_ENV: raw})


def test_only_one_optimization_gets_the_work() -> None:
    """The power study's "one optimization slower": the named optimization's rows only."""
    env = {PLANTED_COMPUTE_ENV: "0.1", PLANTED_ONLY_ENV: "channels_last"}
    assert planted_compute(env, optimization="channels_last") == 0.1
    assert planted_compute(env, optimization="baseline") == 0.0
    assert planted_compute(env) == 0.0  # a call that does not say its row: not the named one


def test_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PLANTED_COMPUTE_ENV, raising=False)
    assert getattr(timed_call(_work, "cpu"), "planted", None) is None


def test_env_reaches_timed_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PLANTED_COMPUTE_ENV, "0.2")
    call = timed_call(_work, "cpu")
    assert call.planted is not None and call.planted.fraction == 0.2


def test_planted_compute_is_real_fixed_work() -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _planted_compute_is_real_fixed_work()
    finally:
        torch.set_num_threads(threads)


def _planted_compute_is_real_fixed_work() -> None:
    plain, planted = timed_call(_work, "cpu", compute=0.0), timed_call(_work, "cpu", compute=0.5)
    for _ in range(PlantedCompute.CALIBRATION_CALLS):
        plain()
        planted()  # warm-up and calibration: the size is fixed from the fastest of these calls
    counts = []
    for _ in range(6):
        planted()
        counts.append(planted.planted.matmuls)
    assert counts[0] >= 1 and len(set(counts)) == 1  # frozen after calibration: a fixed amount of work
    base, more = _fastest_interleaved(plain, planted, 15)
    # 50 % planted: CPU time (not wall time) must grow clearly; a sleep would add none
    assert more > 1.2 * base, (base, more)


def test_a_slow_first_rate_reading_does_not_shrink_the_planted_work() -> None:
    """The matmul rate read when the row starts is ~1 ms of work; a neighbour or a cold cache
    can slow it.  The calibration calls' planted work reads the rate again, and the fastest
    reading sizes the work, so a reading 10x too slow does not plant a tenth of the work."""
    planted = PlantedCompute(0.5, "cpu")
    undisturbed = planted.seconds_per_matmul
    planted.seconds_per_matmul = 10 * undisturbed  # as if the first reading had been slowed 10x
    call_seconds = 200 * undisturbed  # 50 % of it: ~100 matmuls at the undisturbed rate
    for _ in range(PlantedCompute.CALIBRATION_CALLS):
        planted.after_call(call_seconds)
    shrunk = round(0.5 * call_seconds / (10 * undisturbed))  # what the slow reading alone would plant: 10
    assert planted.matmuls > 3 * shrunk, (planted.matmuls, shrunk)


def _pedantic_targets(path: Path) -> list[tuple[int, str]]:
    """(line, callee name) of the first argument of every ``*.pedantic(...)`` call in ``path``."""
    tree = ast.parse(path.read_text())

    def is_timed_call(node: ast.AST | None) -> bool:
        return isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "timed_call"

    # names bound to a timed_call(...) result anywhere in the file: ``call = timed_call(...)``
    wrapped = {t.id for n in ast.walk(tree) if isinstance(n, ast.Assign) and is_timed_call(n.value)
               for t in n.targets if isinstance(t, ast.Name)}
    # functions that return a timed_call(...): ``def _synced(step): return timed_call(step, ...)``
    wrappers = {f.name for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)
                for r in ast.walk(f) if isinstance(r, ast.Return) and is_timed_call(r.value)}

    def via_wrapper(node: ast.AST | None) -> bool:
        return isinstance(node, ast.Call) and getattr(node.func, "id", None) in wrappers

    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "pedantic":
            first = node.args[0] if node.args else None
            ok = is_timed_call(first) or via_wrapper(first) or (isinstance(first, ast.Name) and first.id in wrapped)
            found.append((node.lineno, "timed_call" if ok else ast.unparse(first) if first else "?"))
    return found


def test_the_harness_times_each_side_through_timed_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every row, paired or alone, in process or fresh, is timed by a harness ``Side``:
    with the knob set, each of its calls carries the planted work."""
    from hpml.bench.sides import Measured, Side

    monkeypatch.setenv(PLANTED_COMPUTE_ENV, "0.3")
    side = Side(Measured(target=_work, samples_per_round=1, batch_size=1), "cpu")
    for _ in range(PlantedCompute.CALIBRATION_CALLS + 1):
        side()
    assert side.timed.planted is not None and side.timed.planted.matmuls >= 1
    monkeypatch.delenv(PLANTED_COMPUTE_ENV)
    assert getattr(Side(Measured(target=_work, samples_per_round=1, batch_size=1), "cpu").timed, "planted", None) is None


@pytest.mark.parametrize("path", sorted(BENCHMARKS.glob("test_*.py")), ids=lambda p: p.name)
def test_every_benchmark_measures_through_timed_call(path: Path, request: pytest.FixtureRequest) -> None:
    """A row measured around timed_call would be invisible to the planted regression."""
    direct = [(line, name) for line, name in _pedantic_targets(path) if name != "timed_call"]
    assert not direct, f"{path.name}: benchmark.pedantic without timed_call at line(s) {direct}"
