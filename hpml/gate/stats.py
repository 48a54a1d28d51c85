"""The statistics behind the gate, kept small and deterministic.

**Paired test (``hpml gate --base``, the default there): a t-test across session pairs of
per-pair log ratios.**  The base and the current session run at the same time and hand
a baton over after every timed call (:mod:`hpml.bench.baton`), so round i of a row on
one side ran right next to round i on the other: both saw the same machine state.  Per
pair, ``d_i = log(t_current_i / t_base_i)``; whatever slowed the machine at that moment
(a neighbour, the clock) multiplies both times and cancels in ``d_i``.

What pairing cannot cancel is the *process*: each session is one process with its own
memory layout, allocator history and thread placement, and that lasts the whole session.
Two processes of identical code differ by ~4.7 % in step time, in every pair they share
(docs/studies/process-spread.md).  A test over the pairs of one session pair sees that as a real change (identical
code once read +5.8 % SLOWER, p = 0.001, that way).  So the unit of replication is the
session pair: per session pair ``j``, ``r_j = median_i d_i`` (the median: one
burst-disturbed pair weighs nothing), and the test is a one-sample t-test of the ``r_j``
against 0 (:func:`session_t_test`), one-sided in each direction: "slower" (what fails CI)
and "faster" (reported).  The effect is ``exp(mean r)``, its interval the t interval.
Who starts alternates over session pairs (ABBA), and within a session pair the first call
of each pair alternates too, so an effect of the position enters both signs alike.

With ``k`` session pairs the t-test has ``k - 1`` degrees of freedom: at least
:data:`MIN_SESSION_PAIRS` are needed, and its power grows with ``k`` (``tools/gate_power.py`` measures it for CI's selection).

**Unpaired tests** (``--ab BASE CURRENT``, and ``--base`` when the sessions could not be
paired, e.g. a base revision without the baton) compare the pooled rounds of each side:

Timings on a shared machine are not noisy around a centre: other processes only
ever *add* time, in bursts, so a round is either undisturbed or late (often 2-3x
on a 2-core box).  When the disturbed share of rounds differs between the two
sides, the median and the whole distribution move although the code did not.

**Default test ("quantile"): permutation test on the 25th percentile.**  The lower
quartile of the round times is "the time of an undisturbed round" and stays put
as long as three rounds in four are not all disturbed; pooling interleaved
sessions makes that very likely.  The statistic is the difference of the log
25th percentiles of the two sides; its p-value comes from random relabellings of
the pooled rounds (exact in distribution under "same code": the labels are then
exchangeable).  The effect size is the ratio of the 25th percentiles.

**Alternative ("mannwhitney"):** two-sided Mann-Whitney U on all rounds, effect =
ratio of medians.  More powerful on clean data with few rounds, and it sees
regressions that only slow the tail, but under load it both misses and invents
changes.

Evidence (the benchmark of ``tests/gate/tinybench.py``: 20 benchmarks of ~1.7 ms,
2 interleaved sessions x 20 rounds per side, planted slowdown = exactly 10 % more
work, each pair gated alone; 2-core VM):

* quiet machine: every test 0/20 false alarms and 20/20 slowdowns caught;
* two neighbours each switching a busy loop on and off every 2-6 s: Mann-Whitney
  2/20 false alarms and 1/20 caught, a permutation test on medians 2/20 and 18/20,
  the 25th-percentile permutation test 0/20 and 20/20;
* two neighbours busy 0.3-1.5 s / idle 0.2-1 s: Mann-Whitney caught 14/20 (7/20
  after Holm over the 20), the bootstrap interval of the median ratio was
  [0.35, 1.13] around a true 1.10, the quantile test caught 20/20 with no false alarm.

**Minimum effect:** a change smaller than ``min_effect`` (5 %) is never flagged,
however small its p-value: with many rounds a 0.5 % shift is "significant" and
irrelevant.

**Many benchmarks: Holm's step-down correction** keeps the family-wise false-alarm
rate at ``alpha`` like Bonferroni but rejects more real changes, and needs no
independence (our benchmarks share a machine).  The number of permutations grows
with the number of benchmarks so that the smallest attainable p-value,
1 / (permutations + 1), stays ten times below ``alpha / m`` (up to 250 benchmarks
at alpha = 0.05); a printed p of e.g. 0.005 for 20 benchmarks is that floor times 20.

Caveats: the unpaired permutation test treats rounds as independent, while rounds of
one session share its process and the machine's state at that time: when the machine's
speed moves between sessions, the pooled rounds of one side move with it (on CI's
machine identical code once read 11/20 "FASTER" this way).  That is why ``--base``
pairs rounds instead.  With very few rounds no test
can reach ``alpha / m`` at all (:func:`min_attainable_p`); the gate says so.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from hpml.results.stats import SEED  # one fixed seed for every resampling (the bootstrap: results.stats)

#: Percentile of the round times the quantile test compares (see module docstring).
QUANTILE = 25.0
MIN_PERMUTATIONS, MAX_PERMUTATIONS = 2000, 50_000


def mann_whitney_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Mann-Whitney U p-value that ``a`` and ``b`` come from the same distribution."""
    from scipy.stats import mannwhitneyu  # scipy is heavy; import only when a test runs

    a_arr, b_arr = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a_arr) < 2 or len(b_arr) < 2:
        return 1.0
    if np.ptp(np.concatenate([a_arr, b_arr])) == 0.0:
        return 1.0  # all identical: scipy warns and returns nan
    return float(mannwhitneyu(a_arr, b_arr, alternative="two-sided").pvalue)


def permutations_for(tests: int, alpha: float) -> int:
    """Permutations so that 1/(n+1), the smallest p, is 10x below Holm's first threshold alpha/m."""
    return int(min(MAX_PERMUTATIONS, max(MIN_PERMUTATIONS, math.ceil(10 * max(tests, 1) / alpha))))


def quantile_perm_test(
    a: Sequence[float],
    b: Sequence[float],
    *,
    q: float = QUANTILE,
    permutations: int = MIN_PERMUTATIONS,
    seed: int = SEED,
) -> float:
    """Two-sided permutation p-value for "the ``q``-th percentiles of ``a`` and ``b`` are equal".

    Works on log times, so the statistic is a ratio and symmetric in slow-down vs speed-up.
    """
    la, lb = np.log(np.asarray(a, dtype=float)), np.log(np.asarray(b, dtype=float))
    observed = abs(np.percentile(lb, q) - np.percentile(la, q))
    pool = np.concatenate([la, lb])
    rng = np.random.default_rng(seed)
    exceed = 0
    chunk = max(1, 2_000_000 // len(pool))  # bound memory: <= 2e6 floats (16 MB) per batch
    for start in range(0, permutations, chunk):
        n = min(chunk, permutations - start)
        shuffled = rng.permuted(np.broadcast_to(pool, (n, len(pool))), axis=1)
        diff = np.percentile(shuffled[:, len(la):], q, axis=1) - np.percentile(shuffled[:, :len(la)], q, axis=1)
        exceed += int(np.sum(np.abs(diff) >= observed * (1 - 1e-12)))
    return (exceed + 1) / (permutations + 1)  # +1: the observed labelling is one of the permutations


def min_attainable_p(n_a: int, n_b: int) -> float:
    """The smallest two-sided p-value any rank or permutation test can give for n_a vs n_b rounds.

    Only C(n_a + n_b, n_a) labellings exist; the most extreme two of them (all of one
    side below all of the other, either way round) bound the p-value from below.

    >>> round(min_attainable_p(5, 5), 4)
    0.0079
    """
    return min(1.0, 2.0 / math.comb(n_a + n_b, n_a))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (same order as given): compare each to ``alpha`` directly.

    >>> [round(p, 3) for p in holm([0.01, 0.04, 0.03])]
    [0.03, 0.06, 0.06]
    """
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))  # monotone step-down
        adjusted[i] = running
    return adjusted


def log_ratios(base: Sequence[float], current: Sequence[float]) -> np.ndarray:
    """Per-pair ``log(current / base)`` (> 0: the current call was slower)."""
    if len(base) != len(current):
        raise ValueError(f"unpaired rounds: {len(base)} base, {len(current)} current")
    b, c = np.asarray(base, dtype=float), np.asarray(current, dtype=float)
    return np.log(c) - np.log(b)


#: Session pairs the paired test needs at the least (a t-test with 1 degree of freedom is no test).
MIN_SESSION_PAIRS = 3


def session_t_test(r: Sequence[float], *, level: float = 0.95) -> tuple[float, float, tuple[float, float]]:
    """One-sample t-test of the per-session-pair log time ratios ``r`` against 0.

    Returns ``(p_slower, p_faster, (low, high))``: the one-sided p-values of "the mean is
    above 0" (current slower) and "below 0", and the two-sided ``level`` t interval of
    ``exp(mean r)`` (a time ratio).  Identical ``r`` (no spread): p is 0 in the direction
    of a nonzero mean and 1 otherwise.

    >>> p_slow, p_fast, (lo, hi) = session_t_test([0.10, 0.12, 0.08, 0.11])
    >>> p_slow < 0.001 < 0.999 < p_fast, round(lo, 3), round(hi, 3)
    (True, 1.081, 1.135)
    """
    from scipy.stats import t as student_t  # scipy is heavy; import only when a test runs

    r = np.asarray(r, dtype=float)
    k = len(r)
    if k < 2:
        raise ValueError(f"a t-test needs at least 2 values, got {k}")
    mean = float(r.mean())
    se = float(r.std(ddof=1)) / math.sqrt(k)
    if se == 0.0:
        slower, faster = (0.0 if mean > 0 else 1.0), (0.0 if mean < 0 else 1.0)
        return slower, faster, (math.exp(mean), math.exp(mean))
    t = mean / se
    half = float(student_t.ppf(0.5 + level / 2.0, k - 1)) * se
    return float(student_t.sf(t, k - 1)), float(student_t.cdf(t, k - 1)), (math.exp(mean - half), math.exp(mean + half))
