"""Per-phase measurement: time, samples/s, peak memory and bytes read, in one ``with``.

The workload (a step, an epoch) stays free of measurement code; the benchmark wraps
it::

    with measure_phase("train", device) as m:
        for x, y in loader:
            step(x, y)
            m.samples += len(x)
    record(m.stats.as_dict())

Achieved FLOP/s is ``flops_per_sample(model, batch) * m.stats.samples_per_s``.

Overhead, measured on a shared 2-core CPU VM (torch 2.14.1, no GPU, load average ~5
from other jobs, so only CPU-time figures are stable):

* entering + leaving an empty phase costs ~0.4 ms of wall time (thread start/join,
  /proc reads); the ``seconds`` it reports for an empty body is ~2-3 us.  Measure
  phases or epochs, not single millisecond steps.
* the sampling thread uses ~0.5% of one core with no workers (it wakes 20x/s to look
  for them) and ~3% with 4 DataLoader-style workers (200 wakes/s, one RSS read each).
* a ~1 s CPU matmul loop timed bare and inside ``measure_phase`` (12 interleaved runs)
  differed by less than the run-to-run noise of that loaded machine (medians 1.96 s
  vs 2.11 s, minima 1.73 s vs 1.50 s).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from hpml.errors import HpmlError
from hpml.measure.memory import SAMPLE_INTERVAL_S
from hpml.measure.timers import DeviceLike, Timer, as_device
from hpml.measure.tracker_registry import Trackers
from hpml.results.metric_registry import per_unit
from hpml.results.phase_names import phase_names

#: The phases ``hpml train`` measures (:mod:`hpml.results.phase_names` holds them all, in order).
PHASES = phase_names(train=True)


@dataclass
class PhaseStats:
    """What one phase measured; units in the field names, None where not measurable."""

    phase: str
    seconds: float  # s, wall clock between device syncs
    samples: int
    samples_per_s: float  # samples / seconds, 0.0 for an empty phase
    peak_rss_bytes: int  # this process's peak + its workers' summed peak (memory.py)
    peak_device_bytes: int  # torch.cuda.max_memory_allocated; 0 off CUDA
    read_bytes: int | None  # from storage, page-cache hits count 0 (io.py)
    read_chars: int | None  # returned by read syscalls, page-cache hits included
    dataset_bytes: int = 0  # fetched from dataset files by the readers, workers included (io.py)
    rss_method: str = "vmhwm"  # how this process's peak was taken: "vmhwm" or "sampled"
    minor_faults: int | None = None  # pages mapped on first touch during the phase: this process + workers
    worker_minor_faults: int | None = None  # the workers' (descendants') part of minor_faults
    # every other registered tracker's metrics (hpml.measure.tracker_registry), by name
    more: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (pytest-benchmark ``extra_info``, reports): the fields and ``more``, flat."""
        out = dataclasses.asdict(self)
        out.update(out.pop("more"))
        return out


_FIELDS = {f.name for f in dataclasses.fields(PhaseStats)} - {"more"}


class measure_phase:
    """Context manager measuring one phase; ``.stats`` is a :class:`PhaseStats` after exit.

    Set or increment ``.samples`` inside the block when the count is only known there.
    The device is synchronized at both ends (see :class:`~hpml.measure.timers.Timer`);
    the registered trackers (:class:`~hpml.measure.tracker_registry.Trackers`: memory, I/O, ...)
    start before the timer and stop after it, so their set-up is not timed.  Statistics
    are filled in even when the block raises.  ``sample_interval_s`` (s) is the RSS
    polling period of worker processes (see :mod:`hpml.measure.memory`); raise it when
    a phase has many workers.
    """

    def __init__(
        self,
        phase: str,
        device: DeviceLike,
        samples: int = 0,
        *,
        sample_interval_s: float = SAMPLE_INTERVAL_S,
    ) -> None:
        if phase not in PHASES:
            raise HpmlError(f"unknown phase {phase!r}; choose from {', '.join(PHASES)}")
        if samples < 0:
            raise HpmlError(f"samples must be >= 0, got {samples}")
        self.phase = phase
        self.device = as_device(device)
        self.samples = samples
        self.stats: PhaseStats | None = None
        self._timer = Timer(self.device)
        self._trackers = Trackers(self.device, interval_s=sample_interval_s)

    def __enter__(self) -> measure_phase:
        self._trackers.start()
        try:
            self._timer.start()  # host-device sync
        except BaseException:
            self._trackers.stop()  # never leave the sampling thread running
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._timer.stop()  # host-device sync, then the clock stops
        finally:
            tracked = self._trackers.stop()
        seconds = self._timer.seconds
        samples = int(self.samples)
        # the phase is one region: "call" metrics stay its totals, "sample" ones per sample
        tracked = per_unit(tracked, calls=1, samples=samples)
        self.stats = PhaseStats(
            phase=self.phase,
            seconds=seconds,
            samples=samples,
            samples_per_s=samples / seconds if seconds > 0 else 0.0,
            **{k: v for k, v in tracked.items() if k in _FIELDS},
            more={k: v for k, v in tracked.items() if k not in _FIELDS},
        )
