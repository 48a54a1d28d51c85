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
from hpml.gate.stats import min_attainable_paired_p, sign_flip_test
from hpml.results.schema import Benchmark, CaseKey, Run

KEYS = [CaseKey(name=f"test_row[{i}]") for i in range(3)]
ALPHA, MIN_EFFECT = 0.05, 0.05


def run(rows: dict[CaseKey, list[float]], label: str) -> Run:
    benches = {k: Benchmark(k, k.name, k.name, None, statistics.median(t), len(t), tuple(t)) for k, t in rows.items()}
    return Run(Path(f"{label}.json"), "2026-11-29T00:00:00", "abc", False, "5.3.1", {}, benches)


def sessions(rng: np.random.Generator, *, slowdown: float = 0.0, session_shift: float = 0.0,
             drift: float = 0.02, noise: float = 0.01, rounds: int = 10, pairs: int = 2) -> tuple[list[Run], list[Run]]:
    """``pairs`` session pairs; the machine's speed per round (``drift``, log-sd) hits both calls of a pair,
    ``session_shift`` makes every other session pair that much slower on both sides."""
    base, current = [], []
    for j in range(pairs):
        b_rows, c_rows = {}, {}
        for k in KEYS:
            machine = np.exp(rng.normal(0.0, drift, rounds)) * (1 + session_shift * (j % 2))
            b_rows[k] = list(0.01 * machine * np.exp(rng.normal(0.0, noise, rounds)))
            c_rows[k] = list(0.01 * (1 + slowdown) * machine * np.exp(rng.normal(0.0, noise, rounds)))
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
    """The machine's speed moves a lot from round to round (30 %), the code 10 %: the pairs see
    the slowdown; the same rounds with the pairing removed do not."""
    rng = np.random.default_rng(7)
    base, current = sessions(rng, slowdown=0.10, drift=0.30, rounds=15)
    assert verdicts(base, current) == [SLOWER] * len(KEYS)
    shuffled = [run({k: list(rng.permutation(r.benchmarks[k].data)) for k in KEYS}, "shuffled") for r in current]
    assert SLOWER not in verdicts(base, shuffled)  # pairs broken: each d_i mixes two machine states
    pooled = compare_ab(merge_runs(base), merge_runs(current), alpha=ALPHA, min_effect=MIN_EFFECT)
    assert SLOWER not in [c.verdict for c in pooled]  # the unpaired test on the same rounds


def test_unequal_round_counts_cannot_be_paired() -> None:
    base, current = sessions(np.random.default_rng(0))
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


def test_sign_flip_p_is_exact_for_few_pairs() -> None:
    """Every sign pattern is tried: p is Wilcoxon's exact signed-rank p-value, and the smallest
    p (all pairs one way) is 2 / 2**n."""
    from scipy.stats import wilcoxon

    d = np.random.default_rng(3).normal(0.02, 0.05, 12)
    assert sign_flip_test(d, permutations=5000) == pytest.approx(wilcoxon(d).pvalue)
    assert sign_flip_test(np.full(8, 0.1), permutations=5000) == pytest.approx(min_attainable_paired_p(8))
    # Under "same code" each sign is a coin flip: over all 2**n equally likely sign patterns of
    # the same |d|, p < 0.05 comes up at most 5 % of the time (the test's size, exactly).
    magnitudes = np.abs(np.random.default_rng(4).normal(0, 1, 9))
    signs = ((np.arange(2 ** 9)[:, None] >> np.arange(9)) & 1) * 2 - 1
    ps = np.array([sign_flip_test(s * magnitudes, permutations=5000) for s in signs])
    assert 0 < np.mean(ps < 0.05) <= 0.05
