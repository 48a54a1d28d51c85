"""The gate's significance tests: the paired t-test across session pairs, the unpaired quantile
permutation and Mann-Whitney tests, and Holm's correction (evidence: docs/studies/gate-tests.md)."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from hpml.results.bootstrap import SEED

#: Percentile of the round times the quantile test compares: an undisturbed round's time.
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
    """Two-sided permutation p-value that the log ``q``-th percentiles of ``a`` and ``b`` are equal."""
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
    """The smallest two-sided p-value any rank or permutation test can give for n_a vs n_b rounds."""
    return min(1.0, 2.0 / math.comb(n_a + n_b, n_a))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (same order as given): compare each to ``alpha`` directly."""
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
    """t-test of the session pairs' log time ratios ``r``: (p_slower, p_faster, t interval of exp(mean r))."""
    from scipy.stats import t as student_t

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
