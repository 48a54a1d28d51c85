"""The paired A/B test of ``hpml gate --base`` on synthetic rounds (no timing is measured here).

Each synthetic session pair holds, per row, rounds of the base and of the current side
taken next to each other: both carry the same "machine speed" factor of that moment.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
import pytest

from hpml.gate.checks import FASTER, OK, SLOWER, Unpaired, compare_ab, compare_paired, merge_runs, paired_rounds
from hpml.errors import HpmlError
from hpml.gate.significance import session_t_test
from hpml.results.schema import Benchmark, CaseKey, Run

KEYS = [CaseKey(name=f"test_row[{i}]") for i in range(3)]
ALPHA, MIN_EFFECT = 0.05, 0.05


def run(rows: dict[CaseKey, list[float]], label: str) -> Run:
    benches = {k: Benchmark(k, k.name, k.name, None, statistics.median(t), len(t), tuple(t)) for k, t in rows.items()}
    return Run(Path(f"{label}.json"), "2026-11-29T00:00:00", "abc", False, "5.3.1", {}, benches)


def sessions(rng: np.random.Generator, *, slowdown: float = 0.0, session_shift: float = 0.0, process: float = 0.0,
             drift: float = 0.02, noise: float = 0.01, rounds: int = 10, pairs: int = 4) -> tuple[list[Run], list[Run]]:
    """``pairs`` session pairs; the machine's speed per round (``drift``, log-sd) hits both calls of a pair,
    ``session_shift`` makes every other session pair that much slower on both sides, and ``process``
    (log-sd) gives each session's process its own speed for all its rounds (memory layout)."""
    base, current = [], []
    for j in range(pairs):
        b_rows, c_rows = {}, {}
        for k in KEYS:
            machine = np.exp(rng.normal(0.0, drift, rounds)) * (1 + session_shift * (j % 2))
            b_proc, c_proc = np.exp(rng.normal(0.0, process, 2))
            b_rows[k] = list(0.01 * b_proc * machine * np.exp(rng.normal(0.0, noise, rounds)))
            c_rows[k] = list(0.01 * (1 + slowdown) * c_proc * machine * np.exp(rng.normal(0.0, noise, rounds)))
        base.append(run(b_rows, f"base-{j}"))
        current.append(run(c_rows, f"current-{j}"))
    return base, current


def verdicts(base: list[Run], current: list[Run]) -> list[str]:
    return [c.verdict for c in compare_paired(base, current, alpha=ALPHA, min_effect=MIN_EFFECT)]


@pytest.mark.parametrize("seed", range(5))
def test_a_session_level_shift_on_both_sides_does_not_flag(seed: int) -> None:
    base, current = sessions(np.random.default_rng(seed), session_shift=0.20)
    assert verdicts(base, current) == [OK] * len(KEYS)


@pytest.mark.parametrize("seed", range(5))
def test_a_ten_percent_slowdown_per_pair_is_caught(seed: int) -> None:
    base, current = sessions(np.random.default_rng(seed), slowdown=0.10, session_shift=0.20)
    checks = compare_paired(base, current, alpha=ALPHA, min_effect=MIN_EFFECT)
    assert [c.verdict for c in checks] == [SLOWER] * len(KEYS)
    assert all(c.kind == "A/B paired" and 0.85 < c.ratio < 0.95 for c in checks)  # ratio = speed, ~1/1.1
    assert all(c.ci[0] <= c.ratio <= c.ci[1] for c in checks)


def test_a_speedup_is_faster() -> None:
    base, current = sessions(np.random.default_rng(0), slowdown=-0.2)
    assert verdicts(base, current) == [FASTER] * len(KEYS)


def test_the_pairing_is_what_catches_it() -> None:
    """The machine's speed moves a lot from round to round (50 %), the code 10 %: the pairs see
    the slowdown with a tight interval; the same rounds with the pairing removed give an interval
    several times wider, and the unpaired test on the pooled rounds does not see it."""
    rng = np.random.default_rng(7)
    base, current = sessions(rng, slowdown=0.10, drift=0.50, rounds=15, pairs=3)
    paired = compare_paired(base, current, alpha=ALPHA, min_effect=MIN_EFFECT)
    assert [c.verdict for c in paired] == [SLOWER] * len(KEYS)
    shuffled = [run({k: list(rng.permutation(r.benchmarks[k].data)) for k in KEYS}, "shuffled") for r in current]
    broken = compare_paired(base, shuffled, alpha=ALPHA, min_effect=MIN_EFFECT)  # each d_i mixes two machine states
    for tight, loose in zip(paired, broken):
        assert (loose.ci[1] - loose.ci[0]) > 3 * (tight.ci[1] - tight.ci[0])
    pooled = compare_ab(merge_runs(base), merge_runs(current), alpha=ALPHA, min_effect=MIN_EFFECT)
    assert SLOWER not in [c.verdict for c in pooled]  # the unpaired test on the same rounds


def per_pair_p(base: list[Run], current: list[Run]) -> float:
    """What the gate's test was before: a sign-flip (Wilcoxon) test over all pairs pooled, as if
    the pairs of one session pair were independent."""
    from scipy.stats import wilcoxon

    d = np.concatenate([np.log(np.array(c.benchmarks[KEYS[0]].data) / np.array(b.benchmarks[KEYS[0]].data))
                        for b, c in zip(base, current)])
    return float(wilcoxon(d).pvalue)


def test_process_to_process_spread_is_not_a_change() -> None:
    """Identical code, each session's process 4 % (log-sd) faster or slower for all of its rounds,
    as measured on the 2-core machine.  Tested across session pairs, "slower" comes up within
    alpha; tested over the pooled pairs, the same sessions read "significant" most of the time."""
    trials = [sessions(np.random.default_rng(100 + i), process=0.04) for i in range(200)]
    session_level = [compare_paired(b, c, alpha=ALPHA, min_effect=0.0)[0] for b, c in trials]
    assert np.mean([c.verdict == SLOWER for c in session_level]) <= ALPHA
    assert np.mean([per_pair_p(b, c) < ALPHA for b, c in trials]) >= 0.5


def test_enough_session_pairs_catch_ten_percent_through_process_spread() -> None:
    """The same 4 % process spread and a 10 % slowdown on the current side: eight session pairs
    catch it nearly always (the power study measures this on real sessions)."""
    trials = [sessions(np.random.default_rng(300 + i), slowdown=0.10, process=0.04, pairs=8) for i in range(100)]
    caught = np.mean([verdicts(b, c)[0] == SLOWER for b, c in trials])
    assert caught >= 0.9


def test_fewer_than_three_session_pairs_are_refused() -> None:
    base, current = sessions(np.random.default_rng(0), pairs=2)
    with pytest.raises(HpmlError, match=r"ran in 2 session pair\(s\); the paired test needs at least 3"):
        compare_paired(base, current, alpha=ALPHA, min_effect=MIN_EFFECT)


def test_session_t_test_matches_scipy() -> None:
    from scipy.stats import ttest_1samp

    r = np.random.default_rng(3).normal(0.02, 0.05, 7)
    p_slow, p_fast, (low, high) = session_t_test(r)
    assert p_slow == pytest.approx(ttest_1samp(r, 0.0, alternative="greater").pvalue)
    assert p_fast == pytest.approx(ttest_1samp(r, 0.0, alternative="less").pvalue)
    assert low < np.exp(r.mean()) < high
    assert session_t_test([0.0, 0.0, 0.0])[:2] == (1.0, 1.0)
    # Under "same code" with normal session effects, p < 0.05 comes up ~5 % of the time (the test's size).
    rng = np.random.default_rng(4)
    ps = np.array([session_t_test(rng.normal(0.0, 0.05, 6))[0] for _ in range(2000)])
    assert 0.03 <= np.mean(ps < 0.05) <= 0.07


def test_unequal_round_counts_cannot_be_paired() -> None:
    base, current = sessions(np.random.default_rng(0), pairs=2)
    rows = {k: list(current[1].benchmarks[k].data) for k in KEYS}
    rows[KEYS[1]] = rows[KEYS[1]][:-1]
    with pytest.raises(Unpaired, match=r"session pair 2: test_row\[1\] has 10 base and 9 current rounds"):
        compare_paired(base, [current[0], run(rows, "short")], alpha=ALPHA, min_effect=MIN_EFFECT)
    with pytest.raises(Unpaired, match="2 base session"):
        paired_rounds(base, current[:1])
    # a row that ran on each side, but never in the same session pair
    crossed = [run({KEYS[0]: list(base[0].benchmarks[KEYS[0]].data)}, "b1"),
               run({KEYS[1]: list(base[1].benchmarks[KEYS[1]].data)}, "b2")]
    swapped = [run({KEYS[1]: list(current[0].benchmarks[KEYS[1]].data)}, "c1"),
               run({KEYS[0]: list(current[1].benchmarks[KEYS[0]].data)}, "c2")]
    with pytest.raises(Unpaired, match="never ran in both sessions"):
        compare_paired(crossed, swapped, alpha=ALPHA, min_effect=MIN_EFFECT)


def test_rows_on_one_side_only_are_missing_or_new() -> None:
    base, current = sessions(np.random.default_rng(0))
    only_base = [run({k: list(r.benchmarks[k].data) for k in KEYS}, "b") for r in base]
    trimmed = [run({k: list(r.benchmarks[k].data) for k in KEYS[:2]}, "c") for r in current]
    checks = compare_paired(only_base, trimmed, alpha=ALPHA, min_effect=MIN_EFFECT)
    assert [(c.case, c.verdict) for c in checks][-1] == ("test_row[2]", "missing")
