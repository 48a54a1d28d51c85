"""One side of a pair, built in this process: what a workload hands over and how its calls are timed."""

from __future__ import annotations

import gc
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from hpml.bench import baton
from hpml.bench.planted import PlantedCompute, planted_compute
from hpml.measure import synchronize
from hpml.measure.tracker_registry import Trackers
from hpml.results.metric_registry import per_unit
from hpml.train.optimizations import Settings
from hpml.train.state import apply_backend_flags


class NotApplicable(Exception):
    """Raised by a workload builder when the row cannot run here; the message is the skip reason."""


@dataclass
class Measured:
    """What a workload builder hands to the harness."""

    target: Callable[[], Any]
    samples_per_round: int  # samples processed by one call (accum_steps x batch for grad_accum)
    batch_size: int
    setup: Callable[[], None] | None = None  # before every call, untimed
    flops_per_sample: int | None = None  # None: no model compute in the call
    compute_dtype: torch.dtype | None = None  # dtype of the peak FLOP/s to compare with
    extra: dict[str, Any] = field(default_factory=dict)
    phases: Callable[[int], dict[str, Any]] | None = None  # (measured calls) -> per-phase breakdown
    # (all calls) -> extra_info measured elsewhere (each DDP rank)
    after: Callable[[int], dict[str, Any]] | None = None
    settings: Settings = Settings()


def timed_call(target: Callable[[], Any], device: str, slowdown: float = 0.0,
               compute: float | None = None) -> Callable[[], Any]:
    """``target`` followed by a device sync, plus any planted regression (:mod:`hpml.bench.planted`)
    inside the timed region; every measured call of every row goes through here."""
    compute = planted_compute() if compute is None else compute
    planted = PlantedCompute(compute, device) if compute > 0 else None
    if slowdown <= 0 and planted is None:
        def call() -> Any:
            out = target()
            synchronize(device)  # host-device sync: queued work is billed to the call
            return out
        return call

    def slowed() -> Any:
        start = time.perf_counter()
        out = target()
        synchronize(device)
        elapsed = time.perf_counter() - start
        if planted is not None:
            planted.after_call(elapsed)
        if slowdown > 0:
            time.sleep(slowdown * elapsed)
        return out
    slowed.planted = planted  # type: ignore[attr-defined]  # for the gate's tests
    return slowed


def release_memory(device: str) -> None:
    gc.collect()
    if device == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()


def dtype_name(dtype: torch.dtype | None) -> str | None:
    return str(dtype).removeprefix("torch.") if dtype is not None else None


#: Trackers counted around every timed call (counters, no sampling thread); peaks come from the warm-up.
CALL_COST_TRACKERS = ("io", "cpu")


class Side:
    """One side of a pair, built in this process: untimed setup, then :func:`timed_call`."""

    def __init__(self, spec: Measured, device: str, slowdown: float = 0.0, optimization: str | None = None) -> None:
        self.spec = spec
        self.device = device
        self.timed = timed_call(spec.target, device, slowdown, planted_compute(optimization=optimization))
        self.reset_costs()

    @property
    def samples_per_round(self) -> int:
        return self.spec.samples_per_round

    def __call__(self) -> float:
        # a side owns its process-wide flags: the other side set its own
        apply_backend_flags(self.spec.settings)
        if self.spec.setup is not None:
            self.spec.setup()
        costs = Trackers(self.device, only=CALL_COST_TRACKERS)
        costs.start()
        start = time.perf_counter()
        self.timed()
        elapsed = time.perf_counter() - start
        for name, value in costs.stop().items():
            if isinstance(value, (int, float)):
                self._costs[name] = self._costs.get(name, 0) + value
        self._calls += 1
        baton.handover()  # `hpml gate --base`: the other session's turn, outside the timed region
        return elapsed

    def reset_costs(self) -> None:
        self._costs: dict[str, float] = {}
        self._calls = 0

    def call_costs(self) -> dict[str, Any]:
        """Costs of the calls since :meth:`reset_costs`, per call or per sample; {} before any call."""
        if not self._calls:
            return {}
        return per_unit(self._costs, calls=self._calls, samples=self._calls * self.samples_per_round)

    def warm(self, calls: int) -> dict[str, Any]:
        """``calls`` unmeasured calls under every tracker; their readings per call or per sample."""
        trackers = Trackers(self.device)
        trackers.start()
        try:
            for _ in range(calls):
                self()
        finally:
            totals = trackers.stop()
            self.reset_costs()
        return per_unit(totals, calls=max(1, calls), samples=max(1, calls) * self.samples_per_round)

    def describe(self) -> dict[str, Any]:
        s = self.spec
        return {"samples_per_round": s.samples_per_round, "batch_size": s.batch_size,
                "flops_per_sample": s.flops_per_sample, "compute_dtype": dtype_name(s.compute_dtype),
                "extra": dict(s.extra)}

    def phases(self, measured: int) -> dict[str, Any] | None:
        return self.spec.phases(measured) if self.spec.phases is not None else None

    def close(self) -> None:
        self.spec = None  # type: ignore[assignment]
        self.timed = None  # type: ignore[assignment]


def median_breakdown(calls: list[dict[str, float]], measured: int) -> dict[str, Any]:
    """Per-phase seconds (median over the last ``measured`` calls) and their share of the total."""
    recent = calls[-measured:] if measured else calls
    if not recent:
        return {}
    medians = {name: statistics.median(c[name] for c in recent) for name in recent[0]}
    total = sum(medians.values())
    return {
        name: {"seconds": seconds, "fraction": seconds / total if total > 0 else None}
        for name, seconds in medians.items()
    }

