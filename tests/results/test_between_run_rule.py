"""The between-run spread's rule: an upper confidence bound on the 95 % quantile of what each row
needs, the kinds other than loading pooled (docs/studies/between-run-coverage.md), and controls
judged with the interval of the rows they stand for."""

from __future__ import annotations

import math

import pytest

from hpml.bench import screen
from hpml.results.between_run import OTHER, WITHIN, apply, derive_pairs, upper_rank, widen
from tools.compare_runs import coverage


def row(phase, speedup, halfwidth=0.02, **extra):
    return {"phase": phase, "optimization": "opt", "num_workers": 0, "speedup_vs_baseline": speedup,
            "speedup_interval": [speedup * math.exp(-halfwidth), speedup * math.exp(halfwidth)], "busy": False, **extra}


def pair(jumps: dict[str, float]):
    """Ten train and ten inference rows that read alike in two runs, but for ``jumps`` (name: log difference)."""
    a, b = {}, {}
    for phase in ("train", "inference"):
        for i in range(10):
            name = f"{phase}{i}"
            a[name], b[name] = row(phase, 1.5), row(phase, 1.5 * math.exp(jumps.get(name, 0.0)))
    return a, b


def test_the_bound_is_the_largest_value_of_a_small_calibration_and_settles_on_the_quantile():
    assert [upper_rank(n) for n in (1, 20, 44)] == [1, 20, 44]  # P(all below the 95 % quantile) > 10 %
    for n in (45, 100, 1000):
        rank = upper_rank(n)
        below = [math.fsum(math.comb(n, i) * 0.95 ** i * 0.05 ** (n - i) for i in range(k)) for k in (rank, rank - 1)]
        assert below[0] >= 0.9 > below[1]  # P(Bin(n, 0.95) < rank): the smallest rank with 90 % confidence
    assert 950 < upper_rank(1000) < 1000


def test_one_jump_in_twenty_rows_sets_the_spread_where_the_95_quantile_read_zero():
    a, b = pair({"train0": 0.15})
    spread = derive_pairs([(a, b)])[OTHER]
    assert spread["rows"] == 20 and spread["kinds"] == {"inference": 10, "train": 10}
    assert spread["sd"] == pytest.approx(math.sqrt((0.15 ** 2 - 2 * 0.02 ** 2) / 2) / 1.959964, abs=1e-4)


def test_a_jump_in_a_kind_that_did_not_jump_in_calibration_is_covered():
    spreads = derive_pairs([pair({"train0": 0.15})])  # only a train row moved in the calibration runs
    a, b = pair({"inference0": 0.12, "inference1": -0.12, "train1": 0.12})
    assert coverage(a, b)["covered"] == 17  # within-run: the three jumps are out
    for run in (a, b):
        apply(run.values(), {"kinds": spreads})
    c = coverage(a, b)
    assert (c["covered"], c["rows"]) == (20, 20)


def test_controls_are_widened_by_the_spread_of_the_rows_they_stand_for():
    calibration = {"kinds": {"load, in process": {"sd": 0.1, "rows": 20}, OTHER: {"sd": 0.03, "rows": 80}}}
    loader = {"phase": "load", "optimization": "baseline", "num_workers": 0, "speedup_vs_baseline": 1.0,
              "speedup_interval": None,
              "aa_control": {"speedup": 1.03, "interval": [1.005, 1.06], "halfwidth": 0.027, "pairs": 20}}
    fresh = row("train", 1.4, fresh_process=True,
                fresh_control={"speedup": 1.08, "interval": [1.01, 1.17], "halfwidth": 0.074, "pairs": 6})
    workers = {"phase": "load", "optimization": "baseline", "num_workers": 2, "speedup_vs_baseline": 1.0,
               "aa_control": {"speedup": 1.03, "interval": [1.005, 1.06], "pairs": 20}}
    apply([loader, fresh, workers], calibration)
    aa, fc = loader["aa_control"], fresh["fresh_control"]
    assert aa["interval_within"] == [1.005, 1.06] and aa["interval"] == pytest.approx(widen(1.03, (1.005, 1.06), 0.1), abs=1e-4)
    assert fc["interval"] == pytest.approx(widen(1.08, (1.01, 1.17), 0.03), abs=1e-4)  # the fresh kind's group, not loading's
    assert aa["interval"][0] < 1.0 < aa["interval"][1] and fc["interval"][0] < 1.0
    assert aa["halfwidth"] == pytest.approx((aa["interval"][1] - aa["interval"][0]) / 2 / 1.03, abs=1e-4)
    assert workers["aa_control"]["interval"] == [1.005, 1.06]  # its kind has no spread: within-run, as its rows
    floors = screen.finalize([loader, fresh])
    assert floors["load"]["interval"] == aa["interval"]  # the noise floor is the widened control
    assert fresh["interval_kind"] != WITHIN


def test_a_calibration_by_an_older_rule_is_not_used(tmp_path):
    from hpml.results.between_run import RULE, load, store

    machine = {"system": "Linux", "machine": "x86_64", "cpu": {"brand_raw": "Test CPU", "count": 2}}
    path = store(machine, {OTHER: {"sd": 0.03, "rows": 80}}, ["a.json"], tmp_path / "between_run.json")
    assert load(machine, path)["rule"] == RULE
    path.write_text(path.read_text().replace(RULE, "per kind, the 95% order statistic"))
    assert load(machine, path) is None  # its groups are not today's: the run says to calibrate again
