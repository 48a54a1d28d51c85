"""Paired measurement: a speedup from calls interleaved with the baseline's (``A B B A ...``; rules for
users in ``benchmarks/README.md``, "Paired rows"); the stop rule is :func:`measure_pairs`."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from hpml.errors import HpmlError

#: Fewer pairs than this give no interval (a bootstrap of 1-2 pairs is the pairs themselves).
MIN_PAIRS_FOR_INTERVAL = 3
#: Two-sided level of the bootstrap interval.
LEVEL = 0.95
#: Bootstrap resamples: the pilot's sizing uses fewer (only its half-width matters), the recorded interval more.
CHECK_RESAMPLES = 1000
FINAL_RESAMPLES = 4000


@dataclass(frozen=True)
class Precision:
    """When a row stops adding pairs."""

    target_halfwidth: float  # relative half-width of the 95 % interval, e.g. 0.05 = +-5 %
    budget_s: float  # s of measured calls (both sides) per row; the row stops when spent
    min_pairs: int = 6  # the pilot; from 6 pairs the median's rank interval reaches 95 %
    max_pairs: int = 200  # bounds a fast row (microsecond calls) that never reaches the target
    fixed_pairs: int | None = None  # exactly this many pairs, no adaptive stop (gate sessions: same calls per side)

    def __post_init__(self) -> None:
        for name in ("target_halfwidth", "budget_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise HpmlError(f"{name} must be a number > 0, got {value!r}")
        if self.min_pairs < 1 or self.max_pairs < self.min_pairs:
            raise HpmlError(f"pairs: need 1 <= min_pairs <= max_pairs, got {self.min_pairs}, {self.max_pairs}")
        if self.fixed_pairs is not None and self.fixed_pairs < 1:
            raise HpmlError(f"fixed_pairs must be >= 1, got {self.fixed_pairs}")


@dataclass(frozen=True)
class PairedResult:
    """A paired speedup (optimization over baseline throughput) and how precise it is."""

    estimate: float
    interval: tuple[float, float] | None  # 95 % bootstrap; None with < MIN_PAIRS_FOR_INTERVAL pairs
    pairs: int

    @property
    def halfwidth(self) -> float | None:
        """Relative half-width ``(hi - lo) / 2 / estimate``; None without an interval."""
        if self.interval is None or self.estimate <= 0:
            return None
        lo, hi = self.interval
        return (hi - lo) / 2 / self.estimate

    def contains(self, value: float) -> bool:
        return self.interval is not None and self.interval[0] <= value <= self.interval[1]

    def as_dict(self) -> dict[str, Any]:
        return {
            "speedup": round(self.estimate, 5),
            "interval": None if self.interval is None else [round(v, 5) for v in self.interval],
            "halfwidth": None if self.halfwidth is None else round(self.halfwidth, 5),
            "pairs": self.pairs,
        }


def pair_ratios(base_s: Sequence[float], opt_s: Sequence[float], scale: float = 1.0) -> np.ndarray:
    """Per-pair throughput ratios ``scale * base / opt``."""
    if len(base_s) != len(opt_s):
        raise ValueError(f"unpaired times: {len(base_s)} baseline, {len(opt_s)} optimization")
    base, opt = np.asarray(base_s, dtype=float), np.asarray(opt_s, dtype=float)
    if np.any(base <= 0) or np.any(opt <= 0):
        raise ValueError("call times must be > 0 s")
    return scale * base / opt


def median_rank_interval(n: int, level: float = LEVEL) -> tuple[int, int]:
    """0-based ranks ``(lo, hi)`` bounding a distribution-free ``level`` interval of the median of
    ``n`` sorted values (binomial ranks); below 6 values none reaches 95 %, then (min, max)."""
    tail = (1 - level) / 2
    k, cumulative = 0, 0.0
    while True:
        cumulative += math.comb(n, k) / 2 ** n
        if cumulative > tail:
            break
        k += 1
    k = max(k, 1)
    return k - 1, n - k


def balanced(ratios: np.ndarray) -> np.ndarray:
    """The ratios of whole ``A B | B A`` blocks (a trailing one-order pair would tip the median)."""
    return ratios[: len(ratios) - len(ratios) % 2] if len(ratios) > 1 else ratios


def paired_speedup(base_s: Sequence[float], opt_s: Sequence[float], scale: float = 1.0,
                   resamples: int = FINAL_RESAMPLES, seed: int = 0) -> PairedResult:
    """Median of the per-pair ratios over whole blocks, with a fixed-seed bootstrap interval of the
    log ratios widened to :func:`median_rank_interval` (a percentile bootstrap alone is too narrow
    at a smoke row's 6-10 pairs)."""
    ratios = balanced(pair_ratios(base_s, opt_s, scale))
    n = len(ratios)
    if n == 0:
        raise ValueError("no pairs")
    estimate = float(statistics.median(ratios))
    if n < MIN_PAIRS_FOR_INTERVAL:
        return PairedResult(estimate, None, n)
    logs = np.log(ratios)
    rng = np.random.default_rng(seed)
    medians = np.median(logs[rng.integers(0, n, size=(resamples, n))], axis=1)
    tail = (1 - LEVEL) / 2 * 100
    lo, hi = np.exp(np.percentile(medians, [tail, 100 - tail]))
    ordered = np.sort(ratios)
    rank_lo, rank_hi = median_rank_interval(n)
    lo, hi = min(float(lo), float(ordered[rank_lo])), max(float(hi), float(ordered[rank_hi]))
    # lumpy resampled medians can miss the estimate by a hair
    return PairedResult(estimate, (min(lo, estimate), max(hi, estimate)), n)


@dataclass
class PairedRun:
    """The raw times of a paired measurement and its result."""

    base_s: list[float]
    opt_s: list[float]
    result: PairedResult
    stop: str  # "target" (the pairs the pilot planned) | "budget" | "max_pairs" | "fixed"


#: Pairs a row measures beyond its pilot at least, even when the pilot meets the target.
PAST_PILOT = 2


def planned_pairs(pilot: PairedResult, target_halfwidth: float) -> int | None:
    """Pairs for ``target_halfwidth`` at the pilot's spread (half-widths shrink as 1/sqrt(pairs))."""
    if pilot.halfwidth is None:
        return None
    wanted = max(pilot.pairs + PAST_PILOT, math.ceil(pilot.pairs * (pilot.halfwidth / target_halfwidth) ** 2))
    return wanted + wanted % 2  # whole A B | B A blocks


def measure_pairs(base: Callable[[], float], opt: Callable[[], float], precision: Precision,
                  scale: float = 1.0) -> PairedRun:
    """Alternate the warmed-up ``base`` and ``opt`` (ABBA; each returns its seconds) until ``precision`` stops it.

    The stop rule: the first ``min_pairs`` pairs (the pilot) size the row once (:func:`planned_pairs`)
    and it stops there, or earlier at its budget or ``max_pairs``, always after whole blocks.  It never
    stops when the interval first looks narrow: that picks low spreads by chance and such intervals
    miss (docs/studies/stop-rule.md).  ``fixed_pairs`` (``hpml gate --base``) turns it off.
    """
    base_s: list[float] = []
    opt_s: list[float] = []
    spent = 0.0
    planned: int | None = None  # pairs the pilot asked for; None: pilot not done, or no interval
    piloted = False
    while True:
        k = len(base_s)
        if k % 2 == 0:
            b, o = base(), opt()
        else:  # B A: the other order, so a steady drift biases half the pairs each way
            o, b = opt(), base()
        base_s.append(b)
        opt_s.append(o)
        spent += b + o
        n = k + 1
        stop = None
        if precision.fixed_pairs is not None:
            if n >= precision.fixed_pairs:
                return PairedRun(base_s, opt_s, paired_speedup(base_s, opt_s, scale), "fixed")
            continue
        if n % 2 or n < precision.min_pairs:  # adaptive rules stop after whole A B | B A blocks only
            continue
        if not piloted:
            piloted = True
            pilot = paired_speedup(base_s, opt_s, scale, resamples=CHECK_RESAMPLES)
            planned = planned_pairs(pilot, precision.target_halfwidth)
        if planned is not None and n >= planned:
            stop = "target"
        elif spent >= precision.budget_s:
            stop = "budget"
        elif n >= precision.max_pairs - 1:
            stop = "max_pairs"
        if stop is not None:
            return PairedRun(base_s, opt_s, paired_speedup(base_s, opt_s, scale), stop)


def sequential_speedup(base_s: Sequence[float], opt_s: Sequence[float], scale: float = 1.0) -> float:
    """What rows measured one after another report: ratio of the two rows' medians."""
    return scale * statistics.median(base_s) / statistics.median(opt_s)


def noise_floor(controls: Sequence[PairedResult]) -> PairedResult | None:
    """Of a phase's A/A controls, the one whose interval reaches farthest from 1.0 (conservative)."""
    with_interval = [c for c in controls if c.interval is not None]
    if not with_interval:
        return None
    return max(with_interval, key=lambda c: max(c.interval[1] - 1.0, 1.0 - c.interval[0]))


def is_significant(result: PairedResult, floor: tuple[float, float] | None) -> bool:
    """Interval excludes 1.0 and the estimate lies outside the noise floor (if one was measured)."""
    if result.interval is None or result.contains(1.0):
        return False
    if floor is not None and floor[0] <= result.estimate <= floor[1]:
        return False
    return True
