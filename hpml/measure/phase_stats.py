"""Per-phase measurement in one ``with``: time, samples/s, every tracker (docs/measurement.md)."""

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
    """What one phase measured (the trackers' fields; ``more``: every other tracker's), None if not measurable."""

    phase: str
    seconds: float  # wall clock between device syncs
    samples: int
    samples_per_s: float
    peak_rss_bytes: int
    peak_device_bytes: int
    read_bytes: int | None
    read_chars: int | None
    dataset_bytes: int = 0
    rss_method: str = "vmhwm"
    minor_faults: int | None = None
    worker_minor_faults: int | None = None
    more: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (pytest-benchmark ``extra_info``, reports): the fields and ``more``, flat."""
        out = dataclasses.asdict(self)
        out.update(out.pop("more"))
        return out


_FIELDS = {f.name for f in dataclasses.fields(PhaseStats)} - {"more"}


class measure_phase:
    """Context manager measuring one phase (``.stats`` after exit, even on error); set ``.samples`` inside."""

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
