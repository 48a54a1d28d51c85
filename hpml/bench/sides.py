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
from hpml.measure.trackers import Trackers
from hpml.results.metrics import per_unit
from hpml.train.optimizations import Settings
from hpml.train.state import apply_backend_flags


class NotApplicable(Exception):
    """Raised by a workload builder when the row cannot run here; the message is the skip reason."""



@dataclass
class Measured:
    """What a workload builder hands to the harness."""

    target: Callable[[], Any]  # one measured call
    samples_per_round: int  # samples processed by one call (accum_steps x batch for grad_accum)
    batch_size: int  # samples per (micro-)batch
    setup: Callable[[], None] | None = None  # before every call, untimed
    flops_per_sample: int | None = None  # None: no model compute in the call
    compute_dtype: torch.dtype | None = None  # dtype of the peak FLOP/s to compare with
    extra: dict[str, Any] = field(default_factory=dict)  # more extra_info (source, sizes, ...)
    phases: Callable[[int], dict[str, Any]] | None = None  # (measured calls) -> per-phase breakdown
    # (all calls) -> more extra_info measured elsewhere during the calls (e.g. in each rank)
    after: Callable[[int], dict[str, Any]] | None = None
    # the side's process-wide backend flags, re-applied before each of its calls (untimed)
    settings: Settings = Settings()



def timed_call(target: Callable[[], Any], device: str, slowdown: float = 0.0,
               compute: float | None = None) -> Callable[[], Any]:
    """``target`` followed by a device sync.  Testing the gate only: ``slowdown`` > 0 adds a
    sleep of that fraction of the call's own duration; ``compute`` > 0 (default: the
    ``HPML_PLANTED_COMPUTE`` fraction) adds that fraction of real work (:class:`PlantedCompute`).
    Both inside the timed region; every measured call of every row goes through here."""
    compute = planted_compute() if compute is None else compute
    planted = PlantedCompute(compute, device) if compute > 0 else None
    if slowdown <= 0 and planted is None:
        def call() -> Any:
            out = target()
            synchronize(device)  # host-device sync: the call's queued work is billed to it
            return out
        return call

    def slowed() -> Any:
        start = time.perf_counter()
        out = target()
        synchronize(device)  # host-device sync
        elapsed = time.perf_counter() - start
        if planted is not None:
            planted.after_call(elapsed)  # planted regression: real work (testing only)
        if slowdown > 0:
            time.sleep(slowdown * elapsed)  # planted slowdown: a sleep (testing only)
        return out
    slowed.planted = planted  # type: ignore[attr-defined]  # for the gate's tests
    return slowed



def release_memory(device: str) -> None:
    gc.collect()
    if device == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()


def dtype_name(dtype: torch.dtype | None) -> str | None:
    return str(dtype).removeprefix("torch.") if dtype is not None else None


#: Trackers counted around every timed call (counters without a sampling thread): the row's
#: per-call costs over its timed calls.  Peaks and faults come from the warm-up region.
CALL_COST_TRACKERS = ("io", "cpu")


class Side:
    """One side of a pair, built in this process: each call is timed here, around
    :func:`timed_call` (device sync included), after the workload's untimed setup."""

    def __init__(self, spec: Measured, device: str, slowdown: float = 0.0, optimization: str | None = None) -> None:
        self.spec = spec
        self.device = device
        # the measured call (setup not included)
        self.timed = timed_call(spec.target, device, slowdown, planted_compute(optimization=optimization))
        self.reset_costs()

    @property
    def samples_per_round(self) -> int:
        return self.spec.samples_per_round

    def __call__(self) -> float:
        # A side owns its process-wide flags: the other side of the pair set its own before its call.
        apply_backend_flags(self.spec.settings)
        if self.spec.setup is not None:
            self.spec.setup()
        # Per-call costs are counted around the timed region, not in it: counters only, no
        # sampling thread (peaks are left to the warm-up region, :meth:`warm`).
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
        """CPU seconds, bytes read... of the calls since :meth:`reset_costs`, per call or per
        sample as each metric is recorded; {} before any call."""
        if not self._calls:
            return {}
        return per_unit(self._costs, calls=self._calls, samples=self._calls * self.samples_per_round)

    def warm(self, calls: int) -> dict[str, Any]:
        """``calls`` unmeasured calls under the registered trackers; their readings, ``call``
        metrics per call and ``sample`` ones per sample (None where not measurable)."""
        trackers = Trackers(self.device)
        trackers.start()
        try:
            for _ in range(calls):
                self()
        finally:
            totals = trackers.stop()
            self.reset_costs()  # warm-up calls are no timed calls
        return per_unit(totals, calls=max(1, calls), samples=max(1, calls) * self.samples_per_round)

    def describe(self) -> dict[str, Any]:
        s = self.spec
        return {"samples_per_round": s.samples_per_round, "batch_size": s.batch_size,
                "flops_per_sample": s.flops_per_sample, "compute_dtype": dtype_name(s.compute_dtype),
                "extra": dict(s.extra)}

    def phases(self, measured: int) -> dict[str, Any] | None:
        return self.spec.phases(measured) if self.spec.phases is not None else None

    def close(self) -> None:
        self.spec = None  # type: ignore[assignment]  # drop the workload (model, data) now
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

