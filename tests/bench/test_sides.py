"""Side pieces: the planted slowdown, same-run speedups, phase breakdowns."""

from __future__ import annotations

import time

import pytest

from hpml.bench.planted import planted_slowdown, PLANTED_SLOWDOWN_ENV
from hpml.bench.session import BaselineBook
from hpml.bench.sides import median_breakdown, timed_call
from hpml.bench.matrix import Case
from hpml.errors import HpmlError


@pytest.mark.parametrize("raw,value", [(None, 0.0), ("", 0.0), ("0.2", 0.2), (" 1 ", 1.0)])
def test_planted_slowdown_reads_a_fraction(raw, value):
    env = {} if raw is None else {PLANTED_SLOWDOWN_ENV: raw}
    assert planted_slowdown(env) == value


@pytest.mark.parametrize("raw", ["-0.1", "fast", "nan", "inf"])
def test_planted_slowdown_rejects_anything_else(raw):
    with pytest.raises(HpmlError, match=PLANTED_SLOWDOWN_ENV):
        planted_slowdown({PLANTED_SLOWDOWN_ENV: raw})


class FakeClock:
    """Stands in for the ``time`` module: each target call "takes" 2 s, sleeps are recorded."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def perf_counter(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_planted_slowdown_sleeps_its_fraction_of_the_call_inside_it(monkeypatch):
    import hpml.bench.sides as sides

    clock = FakeClock()
    monkeypatch.setattr(sides, "time", clock)

    def work() -> None:
        clock.now += 2.0

    timed_call(work, "cpu", slowdown=0.25)()
    assert clock.slept == [0.5]  # 0.25 x the call's own 2 s
    timed_call(work, "cpu")()
    assert clock.slept == [0.5]  # no slowdown planted: no sleep


def test_planted_slowdown_makes_real_calls_slower():
    def median_seconds(call, n=5):
        times = []
        for _ in range(n):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        return sorted(times)[n // 2]

    work = lambda: time.sleep(0.02)  # noqa: E731
    ratio = median_seconds(timed_call(work, "cpu", slowdown=0.5)) / median_seconds(timed_call(work, "cpu"))
    assert ratio > 1.3  # 1.5 on a quiet machine; sleeps only ever overshoot


def test_timed_call_returns_the_target_result():
    assert timed_call(lambda: 42, "cpu")() == 42
    assert timed_call(lambda: 42, "cpu", slowdown=0.1)() == 42


def test_speedup_needs_the_baseline_of_the_same_configuration():
    book = BaselineBook()
    sgd = Case("train", "cifar10", "cpu", "amp", "sgd")
    assert book.speedup(sgd, 30.0) is None  # baseline not run (yet)
    book.record(Case("train", "cifar10", "cpu", "baseline", "sgd"), 10.0)
    assert book.speedup(sgd, 30.0) == pytest.approx(3.0)
    assert book.speedup(Case("train", "cifar10", "cpu", "amp", "adam"), 30.0) is None  # other optimizer
    assert book.speedup(Case("train", "cifar100", "cpu", "amp", "sgd"), 30.0) is None  # other dataset
    assert book.speedup(sgd, None) is None  # not measured (--benchmark-disable)


def test_median_breakdown_uses_the_measured_calls_only():
    calls = [{"load": 9.0, "train": 1.0}] + [{"load": 1.0, "train": 3.0}] * 3  # first: warm-up
    phases = median_breakdown(calls, measured=3)
    assert phases["load"] == {"seconds": 1.0, "fraction": 0.25}
    assert phases["train"] == {"seconds": 3.0, "fraction": 0.75}
    assert median_breakdown([], measured=3) == {}


def test_each_measured_call_hands_the_baton_over_outside_its_timed_region(monkeypatch):
    """``hpml gate --base``: after every timed call the other session runs; never inside the call's timing."""
    from hpml.bench import sides

    events = []
    clock = iter(range(100))
    monkeypatch.setattr(sides.time, "perf_counter", lambda: events.append("clock") or float(next(clock)))
    monkeypatch.setattr(sides.baton, "handover", lambda: events.append("handover"))
    side = sides.Side(sides.Measured(target=lambda: events.append("call"), samples_per_round=1, batch_size=1,
                                         setup=lambda: events.append("setup")), "cpu")
    assert side() == 1.0
    side.warm(1)  # warm-up calls hand over too: both sessions take the same turns
    assert events[:5] == ["setup", "clock", "call", "clock", "handover"]
    assert events.count("handover") == 2


def test_per_call_costs_come_from_the_timed_calls_not_the_warm_up():
    """CPU per sample used to be read over the warm-up calls only: here they idle, the timed calls burn CPU."""
    import time

    from hpml.bench.sides import Measured, Side

    calls = []

    def target():
        calls.append(1)
        if len(calls) <= 2:  # the warm-up: waits, no CPU
            time.sleep(0.03)
            return
        end = time.process_time() + 0.1
        while time.process_time() < end:  # a timed call: 100 ms of CPU
            pass

    side = Side(Measured(target=target, samples_per_round=3, batch_size=3), "cpu")
    warm = side.warm(2)
    assert warm["cpu_seconds"] < 0.02 / 3  # 2 sleeping calls: the trackers' own start-up at most
    assert side.call_costs() == {}  # warm-up calls are no timed calls
    for _ in range(3):
        side()
    costs = side.call_costs()
    assert 0.08 / 3 < costs["cpu_seconds"] < 0.5 / 3  # s per sample over the timed calls
