"""The registered trackers: what every measured region records besides its time.

:data:`TRACKERS` maps a name to a factory ``(device, interval_s) -> Tracker``;
:class:`Trackers` runs all of them around one region, as one tracker.  ``hpml train``'s
phases (:class:`hpml.measure.phases.measure_phase`), the benchmark harness's rows and
interleaved reference steps (:mod:`hpml.bench.sides`) and each DDP rank
(:mod:`hpml.bench.ddp`) all track through it, so a new measured quantity is one
tracker registered here plus its :class:`~hpml.results.metrics.Metric` declaration:
it then reaches ``extra_info``, ``hpml train --json``, the rank reduction, the run
summary, the report and the gate without further edits.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

from hpml.measure.gpu import EnergyTracker, PinnedHostTracker
from hpml.measure.io import IoTracker
from hpml.measure.memory import SAMPLE_INTERVAL_S, MemoryTracker
from hpml.measure.proctree import child_pids
from hpml.measure.timers import DeviceLike
from hpml.measure.tracking import Tracker, Tracking
from hpml.registry import Registry


@dataclass(frozen=True)
class Registered:
    """A tracker factory and the metrics its ``stop()`` returns (each declared in METRICS)."""

    metrics: tuple[str, ...]
    make: Callable[[DeviceLike, float], Tracker]  # (device, RSS sampling interval in s) -> tracker


TRACKERS: Registry[Registered] = Registry("tracker")
# Started in this order, stopped in the reverse one: the memory tracker's sampling
# thread runs inside the I/O counters' region.
TRACKERS.add("io", Registered(("read_bytes", "read_chars", "dataset_bytes"), lambda device, interval_s: IoTracker()))
TRACKERS.add("memory", Registered(
    ("peak_rss_bytes", "peak_device_bytes", "peak_reserved_bytes", "rss_method", "minor_faults", "major_faults",
     "worker_minor_faults"),
    lambda device, interval_s: MemoryTracker(device, interval_s=interval_s)))


class CpuTracker(Tracking):
    """CPU time (user + system, s) of this process and its descendants over a region:
    ``os.times()`` for this process and the children reaped in the region, ``/proc/<pid>/stat``
    for the live ones (loader workers, ranks), each from its own count at the start (0 when
    started inside the region).  A busy neighbour does not inflate it, unlike wall time; a
    call that waits (I/O, a worker's queue) costs wall time but no CPU."""

    TICK_S = 1 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01  # s per clock tick

    def _now(self) -> tuple[float, dict[tuple[int, int], float]]:
        t = os.times()
        live: dict[tuple[int, int], float] = {}
        for pid in child_pids():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()  # after "(comm)", which may hold spaces
            except OSError:  # exited since listing, or not Linux
                continue
            # stat(5) fields 14, 15 (utime, stime) and 22 (start time: pids are reused)
            live[(pid, int(fields[19]))] = (int(fields[11]) + int(fields[12])) * self.TICK_S
        return t.user + t.system + t.children_user + t.children_system, live

    def start(self) -> None:
        self._start = self._now()

    def stop(self) -> dict[str, Any]:
        (own0, live0), (own1, live1) = self._start, self._now()
        cpu = own1 - own0 + sum(v - live0.get(k, 0.0) for k, v in live1.items())
        cpu -= sum(v for k, v in live0.items() if k not in live1)  # reaped inside: its start count is in own1
        return {"cpu_seconds": max(0.0, cpu)}


TRACKERS.add("cpu", Registered(("cpu_seconds",), lambda device, interval_s: CpuTracker()))
# CUDA only, None with the reason elsewhere (hpml.measure.gpu)
TRACKERS.add("pinned_host", Registered(("peak_pinned_host_bytes", "pinned_host_reason"),
                                       lambda device, interval_s: PinnedHostTracker(device)))
TRACKERS.add("energy", Registered(("device_energy_j", "device_energy_reason"),
                                  lambda device, interval_s: EnergyTracker(device)))


def tracked_metrics() -> list[str]:
    """Every metric the registered trackers measure, in registration order."""
    return [m for name in TRACKERS for m in TRACKERS.get(name).metrics]


class Trackers(Tracking):
    """Every registered tracker (or those named in ``only``) around one region; ``stop()``
    merges their ``{metric: value}`` dicts."""

    def __init__(self, device: DeviceLike = "cpu", interval_s: float = SAMPLE_INTERVAL_S,
                 only: tuple[str, ...] | None = None) -> None:
        names = TRACKERS.names() if only is None else list(only)
        self.parts: dict[str, Tracker] = {name: TRACKERS.get(name).make(device, interval_s) for name in names}
        self._started: list[Tracker] = []

    def start(self) -> None:
        self._started = []
        try:
            for tracker in self.parts.values():
                tracker.start()
                self._started.append(tracker)
        except BaseException:
            self.stop()  # never leave a started tracker (a sampling thread) running
            raise

    def stop(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        errors: list[BaseException] = []
        for tracker in reversed(self._started):
            try:
                values.update(tracker.stop())
            except Exception as err:  # stop the others first, then report
                errors.append(err)
        self._started = []
        if errors:
            raise errors[0]
        return values
