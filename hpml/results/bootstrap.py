"""The bootstrap interval of a ratio: a summary's ``speedup_spread`` and the gate's A/B intervals."""

from __future__ import annotations

from typing import Sequence

import numpy as np

#: Bootstrap resamples; 2000 keeps the 2.5 % / 97.5 % percentiles stable to ~1e-3 here.
BOOTSTRAP_RESAMPLES = 2000
#: Fixed seed: the same inputs always print the same numbers (CI logs are diffable).
SEED = 20240601


def bootstrap_ratio(
    numerator: Sequence[float],
    denominator: Sequence[float],
    *,
    q: float = 50.0,
    scale: float = 1.0,
    level: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = SEED,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``scale * P_q(numerator) / P_q(denominator)``, each side
    resampled independently (the rounds of two benchmarks are not paired)."""
    num, den = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    rng = np.random.default_rng(seed)
    p_num = np.percentile(num[rng.integers(0, len(num), size=(resamples, len(num)))], q, axis=1)
    p_den = np.percentile(den[rng.integers(0, len(den), size=(resamples, len(den)))], q, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = scale * p_num / p_den
    ratios = ratios[np.isfinite(ratios)]
    if ratios.size == 0:
        return (float("nan"), float("nan"))
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(ratios, [tail, 100.0 - tail])
    return (float(low), float(high))
