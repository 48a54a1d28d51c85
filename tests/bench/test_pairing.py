"""The paired estimator, its bootstrap interval and the adaptive stop, on synthetic times.

No wall clock anywhere: the "workloads" are functions returning the seconds a call
would have taken, on a simulated clock, so every test is exact and repeatable.
"""

from __future__ import annotations

import math
import random

import pytest

from hpml.bench.pairing import (
    MIN_PAIRS_FOR_INTERVAL,
    PairedResult,
    Precision,
    is_significant,
    measure_pairs,
    noise_floor,
    paired_speedup,
    sequential_speedup,
)
from hpml.errors import HpmlError


class DriftingMachine:
    """A machine whose speed drifts linearly: a call started at simulated time t takes
    ``work * (1 + drift * t / horizon)`` s, times multiplicative noise."""

    def __init__(self, drift: float, horizon: float, noise: float = 0.01, seed: int = 0) -> None:
        self.now = 0.0
        self.drift, self.horizon, self.noise = drift, horizon, noise
        self.rng = random.Random(seed)

    def workload(self, work: float):
        def call() -> float:
            slowdown = 1 + self.drift * min(self.now, self.horizon) / self.horizon
            seconds = work * slowdown * math.exp(self.rng.gauss(0, self.noise))
            self.now += seconds
            return seconds

        return call


def test_estimate_is_the_median_pair_ratio_in_throughput():
    base = [2.0, 2.2, 1.8, 2.0, 2.1]
    opt = [1.0, 1.0, 1.0, 1.0, 1.0]
    result = paired_speedup(base, opt)
    assert result.estimate == pytest.approx(2.0)
    lo, hi = result.interval
    assert lo <= 2.0 <= hi and lo >= 1.8 and hi <= 2.2
    assert result.halfwidth == pytest.approx((hi - lo) / 2 / 2.0)
    # twice the samples per call in the same time: twice the throughput
    assert paired_speedup(base, base, scale=2.0).estimate == pytest.approx(2.0)


def test_bootstrap_is_repeatable_and_narrows_with_more_pairs():
    rng = random.Random(1)
    base = [1.0 * math.exp(rng.gauss(0, 0.05)) for _ in range(200)]
    opt = [0.5 * math.exp(rng.gauss(0, 0.05)) for _ in range(200)]
    assert paired_speedup(base, opt) == paired_speedup(base, opt)  # fixed seed
    few, many = paired_speedup(base[:10], opt[:10]), paired_speedup(base, opt)
    assert many.halfwidth < few.halfwidth
    assert many.contains(2.0)


@pytest.mark.parametrize("n", [7, 9, 15])
def test_an_odd_trailing_pair_does_not_move_the_estimate(n):
    """Pairs alternate A B / B A; where the orders disagree (ratio 1.0 after A B, 1.5 after
    B A) an odd count used to tip the median to 1.00 and an even one to 1.25."""
    ratios = [1.0 if k % 2 == 0 else 1.5 for k in range(n)]
    odd = paired_speedup(ratios, [1.0] * n)
    even = paired_speedup(ratios[:n - 1], [1.0] * (n - 1))
    assert odd.estimate == even.estimate == pytest.approx(1.25)
    assert odd.interval == even.interval and odd.pairs == n - 1


def test_adaptive_stops_end_on_whole_blocks():
    machine = DriftingMachine(drift=0.0, horizon=1.0, noise=0.03)
    for precision in (Precision(0.05, 1e6, min_pairs=5), Precision(0.001, 4.0, min_pairs=3),
                      Precision(0.0001, 1e6, 3, max_pairs=11)):
        run = measure_pairs(machine.workload(0.1), machine.workload(0.07), precision)
        assert len(run.base_s) % 2 == 0 and run.result.pairs == len(run.base_s), precision


def test_too_few_pairs_give_no_interval():
    result = paired_speedup([1.0] * (MIN_PAIRS_FOR_INTERVAL - 1), [0.5] * (MIN_PAIRS_FOR_INTERVAL - 1))
    assert result.interval is None and result.halfwidth is None and result.estimate == 2.0
    with pytest.raises(ValueError, match="unpaired"):
        paired_speedup([1.0, 1.0], [1.0])


def test_paired_cancels_a_30_percent_drift_that_sequential_rows_report_as_a_speedup():
    true_ratio = 2.0  # baseline does 2x the work of the optimization
    precision = Precision(target_halfwidth=0.001, budget_s=60.0, min_pairs=20, max_pairs=20)
    # 20 pairs of 1 s + 0.5 s of work take ~35 s: the machine is 30 % slower by the end of the row
    paired_machine = DriftingMachine(drift=0.30, horizon=35.0)
    run = measure_pairs(paired_machine.workload(1.0), paired_machine.workload(0.5), precision)
    assert run.result.pairs == 20
    assert run.result.contains(true_ratio)
    assert run.result.estimate == pytest.approx(true_ratio, rel=0.02)

    # The same drift, rows one after another (baseline row, then the optimization row):
    # the second row runs on a slower machine, and its speedup comes out ~10 % low.
    sequential_machine = DriftingMachine(drift=0.30, horizon=35.0)
    base = [sequential_machine.workload(1.0)() for _ in range(20)]
    opt = [sequential_machine.workload(0.5)() for _ in range(20)]
    sequential = sequential_speedup(base, opt)
    assert not run.result.interval[0] <= sequential <= run.result.interval[1]
    assert abs(sequential - true_ratio) / true_ratio > 0.05


def test_stops_at_the_target():
    machine = DriftingMachine(drift=0.0, horizon=1.0, noise=0.02)
    run = measure_pairs(machine.workload(1.0), machine.workload(0.8), Precision(0.05, budget_s=1e6, min_pairs=4))
    assert run.stop == "target"
    assert run.result.halfwidth <= 0.05 and run.result.contains(1.25)


def test_stops_when_the_budget_is_spent():
    machine = DriftingMachine(drift=0.0, horizon=1.0, noise=0.5)  # far too noisy for 1 %
    run = measure_pairs(machine.workload(1.0), machine.workload(1.0), Precision(0.01, budget_s=30.0, min_pairs=3))
    assert run.stop == "budget"
    assert sum(run.base_s) + sum(run.opt_s) >= 30.0
    assert len(run.base_s) % 2 == 0  # whole A B | B A blocks
    assert sum(run.base_s[:-2]) + sum(run.opt_s[:-2]) < 30.0  # stopped at the first block past it


def test_min_pairs_hold_even_past_the_budget_and_max_pairs_bound_fast_rows():
    machine = DriftingMachine(drift=0.0, horizon=1.0, noise=0.5)
    run = measure_pairs(machine.workload(10.0), machine.workload(10.0), Precision(0.01, budget_s=1.0, min_pairs=3))
    assert run.result.pairs == 4 and run.stop == "budget"  # min_pairs 3, rounded up to whole blocks
    run = measure_pairs(machine.workload(1e-6), machine.workload(1e-6), Precision(0.0001, 1.0, 3, max_pairs=50))
    assert run.result.pairs == 50 and run.stop == "max_pairs"


@pytest.mark.parametrize("noise", [0.0001, 0.5])
def test_fixed_pairs_ignore_the_target_and_the_budget(noise):
    """Gate sessions (HPML_BENCH_PAIRS): both revisions must make the same calls, whatever the noise."""
    machine = DriftingMachine(drift=0.0, horizon=1.0, noise=noise)
    run = measure_pairs(machine.workload(10.0), machine.workload(10.0),
                        Precision(0.05, budget_s=1.0, min_pairs=3, max_pairs=5, fixed_pairs=9))
    assert len(run.base_s) == 9 and run.stop == "fixed"
    assert run.result.pairs == 8  # the estimate uses whole A B | B A blocks


def test_order_alternates_abba():
    calls: list[str] = []

    def side(name):
        def call():
            calls.append(name)
            return 1.0
        return call

    measure_pairs(side("A"), side("B"), Precision(0.5, 100.0, min_pairs=4, max_pairs=4))
    assert "".join(calls) == "ABBAABBA"


@pytest.mark.parametrize("field,value", [("target_halfwidth", 0), ("target_halfwidth", -0.1),
                                         ("budget_s", 0), ("budget_s", float("nan"))])
def test_non_positive_target_or_budget_is_refused(field, value):
    kwargs = {"target_halfwidth": 0.05, "budget_s": 1.0, field: value}
    with pytest.raises(HpmlError, match=f"{field} must be a number > 0"):
        Precision(**kwargs)


def test_significance_needs_the_interval_off_1_and_the_estimate_outside_the_noise_floor():
    win = PairedResult(1.5, (1.4, 1.6), 10)
    small = PairedResult(1.03, (1.01, 1.05), 10)
    unsure = PairedResult(1.2, (0.95, 1.4), 10)
    assert is_significant(win, (0.96, 1.04))
    assert not is_significant(small, (0.96, 1.04))  # a tight interval, but inside the noise floor
    assert is_significant(small, None)
    assert not is_significant(unsure, None)
    assert not is_significant(PairedResult(2.0, None, 2), None)


def test_noise_floor_is_the_widest_a_a_control():
    controls = [PairedResult(1.0, (0.98, 1.02), 8), PairedResult(1.01, (0.95, 1.03), 8), PairedResult(1.0, None, 2)]
    assert noise_floor(controls).interval == (0.95, 1.03)
    assert noise_floor([PairedResult(1.0, None, 1)]) is None


def test_rank_interval_ranks_match_the_binomial_table():
    from hpml.bench.pairing import median_rank_interval

    # 0-based ranks of the classic 95 % median interval (e.g. n=20: 6th and 15th values)
    assert median_rank_interval(6) == (0, 5)
    assert median_rank_interval(10) == (1, 8)
    assert median_rank_interval(20) == (5, 14)
    assert median_rank_interval(3) == (0, 2)  # no 95 % interval exists: min..max


@pytest.mark.parametrize("pairs", [6, 9, 25])
def test_an_a_a_control_holds_1_in_its_interval_at_least_95_percent_of_the_time(pairs):
    """The baseline paired with itself, heavy-tailed noise (a neighbour now and then):
    the interval must hold 1.0 in >= 95 % of simulated runs, also at smoke's few pairs."""
    rng = random.Random(pairs)
    runs, held = 400, 0
    for _ in range(runs):
        def noisy():
            spike = 3.0 if rng.random() < 0.05 else 1.0
            return 0.1 * spike * math.exp(rng.gauss(0, 0.05))

        base = [noisy() for _ in range(pairs)]
        opt = [noisy() for _ in range(pairs)]
        held += paired_speedup(base, opt, resamples=500).contains(1.0)
    assert held / runs >= 0.95


def test_the_pilot_sizes_the_row_once():
    """Two stages: the first ``min_pairs`` pairs plan the row's size; the row then measures
    exactly that many pairs (no budget or max_pairs in the way), whatever its interval reads."""
    from hpml.bench.pairing import CHECK_RESAMPLES, PAST_PILOT, planned_pairs

    machine = DriftingMachine(drift=0.0, horizon=1.0, noise=0.06, seed=3)
    precision = Precision(0.05, budget_s=1e6, min_pairs=6)
    run = measure_pairs(machine.workload(1.0), machine.workload(1.0), precision)
    pilot = paired_speedup(run.base_s[:6], run.opt_s[:6], resamples=CHECK_RESAMPLES)
    assert run.stop == "target" and run.result.pairs == planned_pairs(pilot, 0.05) > 6 + PAST_PILOT
    quiet = DriftingMachine(drift=0.0, horizon=1.0, noise=0.001, seed=3)  # the pilot meets the target already
    assert measure_pairs(quiet.workload(1.0), quiet.workload(1.0), precision).result.pairs == 6 + PAST_PILOT


def test_an_a_a_control_holds_1_in_its_interval_at_least_95_percent_of_the_time_under_the_stop_rule():
    """The adaptive stop must not bias the interval.  Stopping the first time the interval
    looked narrow enough picked samples whose spread read low by chance: such A/A rows held
    1.0 in ~94 % of runs at 6 % call noise (docs/studies/stop-rule.md)."""
    rng = random.Random(11)
    runs, held = 300, 0
    for _ in range(runs):
        def call() -> float:
            return 0.01 * math.exp(rng.gauss(0, 0.06))

        held += measure_pairs(call, call, Precision(0.05, budget_s=1.5, min_pairs=6)).result.contains(1.0)
    assert held / runs >= 0.95, held
