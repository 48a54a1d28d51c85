"""Steps in a series of runs, where a row's level moved and stayed (``hpml history``, the report's trend):
a penalized piecewise-constant fit, kept where the step beats the noise (docs/studies/step-detection.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

#: Breakpoint penalty in units of sigma^2 ln(n).
PENALTY = 4.0
#: Commits on each side of a step at the least.
MIN_SIDE = 2
#: z of the 90th percentile of |N(0, 1)| (the spread of two runs' difference).
Z90_ABS = 1.644854


@dataclass(frozen=True)
class Step:
    """A level change at ``index`` (the first commit of the new level)."""

    index: int
    ratio: float  # level after / level before, with its 95 % Welch t interval
    interval: tuple[float, float]
    before: int  # points in the segments before and after
    after: int


def noise_sigma(series: Sequence[Sequence[float]]) -> float | None:
    """Robust sd of one point around its level, from consecutive differences (1.4826 x MAD / sqrt 2)."""
    diffs = [abs(b - a) for s in series for a, b in zip(s, s[1:])]
    if len(diffs) < 3:
        return None
    return 1.4826 * float(np.median(diffs)) / math.sqrt(2.0)


def spread(sigma: float) -> float:
    """The run-to-run noise a step must exceed: the 90th percentile of ``|a / b - 1|`` of two points."""
    return math.expm1(Z90_ABS * math.sqrt(2.0) * sigma)


def segment(y: Sequence[float], penalty: float, min_size: int = MIN_SIDE) -> list[int]:
    """Start indices of the segments after the first: the exact penalized least-squares fit."""
    y = np.asarray(y, dtype=float)
    n = len(y)
    s1 = np.concatenate([[0.0], np.cumsum(y)])
    s2 = np.concatenate([[0.0], np.cumsum(y * y)])

    def cost(i: int, j: int) -> float:
        return float(s2[j] - s2[i] - (s1[j] - s1[i]) ** 2 / (j - i))

    best = [math.inf] * (n + 1)
    back = [0] * (n + 1)
    best[0] = -penalty
    for j in range(min_size, n + 1):
        for i in [0, *range(min_size, j - min_size + 1)]:
            if best[i] == math.inf:
                continue
            value = best[i] + cost(i, j) + penalty
            if value < best[j]:
                best[j], back[j] = value, i
    cuts, j = [], n
    while j > 0:
        j = back[j]
        if j > 0:
            cuts.append(j)
    return sorted(cuts)


def _welch(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """mean(b) - mean(a) and its 95 % Welch t interval."""
    from scipy.stats import t as student_t  # heavy: only when steps are computed

    diff = float(b.mean() - a.mean())
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0.0:
        return diff, diff, diff
    dof = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1)) if va and vb else len(a) + len(b) - 2
    half = float(student_t.ppf(0.975, dof)) * se
    return diff, diff - half, diff + half


def find_steps(log_values: Sequence[float], sigma: float, *, min_size: int = MIN_SIDE) -> list[Step]:
    """The steps of one series of log values, given the noise ``sigma`` of its kind of row."""
    y = np.asarray(log_values, dtype=float)
    n = len(y)
    if n < 2 * min_size or not sigma > 0:
        return []
    cuts = segment(y, PENALTY * sigma * sigma * math.log(n), min_size)
    bounds = [0, *cuts, n]
    floor = math.log1p(spread(sigma))
    steps = []
    for k, cut in enumerate(cuts, start=1):
        before, after = y[bounds[k - 1]:cut], y[cut:bounds[k + 1]]
        diff, lo, hi = _welch(before, after)
        if abs(diff) > floor and (lo > floor / 2 or hi < -floor / 2):
            steps.append(Step(cut, math.exp(diff), (math.exp(lo), math.exp(hi)), len(before), len(after)))
    return steps
