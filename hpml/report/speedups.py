"""The speedup of each row as the report shows it: the paired estimate and its interval, or, for older
runs, the same-run ratio of median throughputs with no interval (docs/report.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hpml.results.summary import summary_from_run
from hpml.results.schema import Benchmark, CaseKey, Run

#: extra_info keys whose presence marks a row measured with paired rounds.
PAIRED_KEYS = ("speedup_significant", "speedup_pairs", "speedup_interval")


@dataclass(frozen=True)
class Speedup:
    """One optimization row's speedup over its baseline (x baseline throughput)."""

    estimate: float
    interval: tuple[float, float] | None  # 95 % interval of a paired estimate; None: not measured
    significant: bool | None  # None: no interval (run before paired measurement, too few pairs)
    pairs: int | None = None
    busy_reason: str | None = None  # the machine was busy while this row ran
    aliases: tuple[str, ...] = ()
    dataset_aliases: tuple[str, ...] = ()  # datasets whose rows do the same work, measured once as this row
    interval_kind: str | None = None  # "within-run" or "within + between-run" (hpml.results.between_run); None: older run

    @property
    def cell(self) -> str:
        """Heatmap text: ``1.93x``; ``~`` when not significant; ``1.93x*`` when nobody knows."""
        if self.significant is False:
            return "~"
        return f"{self.estimate:.2f}x" + ("*" if self.significant is None else "")

    @property
    def interval_text(self) -> str:
        if self.interval is None:
            return "no interval"
        kind = f" {self.interval_kind}" if self.interval_kind else ""
        return f"[{self.interval[0]:.2f}, {self.interval[1]:.2f}]{kind}"

    @property
    def text(self) -> str:
        """``1.93x [1.80, 2.05]``, ``~ (1.02x [0.97, 1.08])`` or ``1.93x (no interval)``; ``, busy`` when it was."""
        busy = ", machine busy" if self.busy_reason else ""
        if self.interval is None:
            return f"{self.estimate:.2f}x (no interval{busy})"
        if self.significant is False:  # the contract: a row that is not significant reads "~" everywhere
            return f"~ ({self.estimate:.2f}x {self.interval_text}{busy})"
        return f"{self.estimate:.2f}x {self.interval_text}{busy}"


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _interval(value: Any) -> tuple[float, float] | None:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        return None
    lo, hi = _finite(value[0]), _finite(value[1])
    return (lo, hi) if lo is not None and hi is not None and 0 < lo <= hi else None


def paired_speedup(bench: Benchmark) -> Speedup | None:
    """The contract's paired fields of one row, or None when the row predates them."""
    extra = bench.extra
    if not any(k in extra for k in PAIRED_KEYS):
        return None
    estimate = _finite(extra.get("speedup_vs_baseline"))
    if estimate is None or estimate <= 0:
        return None
    interval = _interval(extra.get("speedup_interval"))
    significant = extra.get("speedup_significant") if isinstance(extra.get("speedup_significant"), bool) else None
    if interval is None:
        significant = None  # a verdict without its interval cannot be shown honestly
    pairs = extra.get("speedup_pairs")
    aliases = extra.get("aliases") if isinstance(extra.get("aliases"), list) else []
    twins = extra.get("dataset_aliases") if isinstance(extra.get("dataset_aliases"), list) else []
    return Speedup(estimate, interval, significant,
                   pairs=int(pairs) if isinstance(pairs, int) and not isinstance(pairs, bool) else None,
                   busy_reason=str(extra.get("busy_reason") or "busy") if extra.get("busy") else None,
                   aliases=tuple(str(a) for a in aliases), dataset_aliases=tuple(str(d) for d in twins),
                   interval_kind=str(extra["interval_kind"]) if extra.get("interval_kind") else None)


def speedups(run: Run) -> dict[CaseKey, Speedup]:
    """Every hpml optimization row of ``run`` that has a speedup (baselines left out)."""
    out: dict[CaseKey, Speedup] = {}
    fallback: dict[CaseKey, dict[str, Any]] | None = None
    for key, bench in run.benchmarks.items():
        if not key.is_hpml or (key.optimization == "baseline" and not bench.extra.get("reference")):
            continue  # a baseline row is 1x, unless paired with a reference (interleaved reference steps)
        found = paired_speedup(bench)
        if found is None:
            if fallback is None:  # summary rows follow the run's row order
                fallback = dict(zip(run.benchmarks, summary_from_run(run)["rows"]))
            estimate = _finite(fallback[key].get("speedup"))
            if estimate is None or estimate <= 0:
                continue
            found = Speedup(estimate, None, None)
        out[key] = found
    return out
