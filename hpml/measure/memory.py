"""Peak host and device memory and page faults of a region, nesting-safe (docs/measurement.md)."""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import psutil
import torch

from hpml.measure.proctree import FAST_CHILD_LISTING, child_pids
from hpml.measure.timers import DeviceLike, as_device
from hpml.measure.tracking import Tracking

try:
    import resource
except ImportError:  # not POSIX
    resource = None  # type: ignore[assignment]

#: Poll period of the sampling thread (s): catches a worker's batch, costs little (docs/measurement.md).
SAMPLE_INTERVAL_S = 0.005

#: Ticks between looks for new descendants: a worker's first ~50 ms of memory can be missed.
RESCAN_INTERVALS = 10

_KIB = 1024


def _read_vm_hwm() -> int:
    """This process's peak RSS since the last reset (bytes), from /proc/self/status."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * _KIB  # the kernel reports kB
    raise OSError("no VmHWM line in /proc/self/status")


def _reset_vm_hwm() -> None:
    # "5" resets only mm->hiwater_rss (Linux >= 4.0); it does not walk page tables.
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


class Region:
    """One open measurement region of a :class:`HighWaterMark`."""

    __slots__ = ("carried",)

    def __init__(self, zero: Any) -> None:
        self.carried = zero  # bytes: the peak seen before a nested region reset the mark


def _peak(a: Any, b: Any) -> Any:
    """The larger of two readings; of tuples, element by element (peaks one reset clears together)."""
    return tuple(map(max, a, b)) if isinstance(a, tuple) else max(a, b)


class HighWaterMark:
    """A process-wide peak counter that measurement regions reset, nesting-safely."""

    def __init__(self, read: Callable[[], Any], reset: Callable[[], None], zero: Any = 0) -> None:
        self._read = read
        self._reset = reset
        self._zero = zero
        self._lock = threading.Lock()
        self._open: list[Region] = []

    def begin(self) -> Region:
        """Reset the mark for a new region; raises OSError when it cannot be reset."""
        with self._lock:
            if self._open:
                current = self._read()
                for region in self._open:
                    region.carried = _peak(region.carried, current)
            self._reset()
            region = Region(self._zero)
            self._open.append(region)
            return region

    def end(self, region: Region) -> Any:
        """The region's peak (bytes)."""
        with self._lock:
            self._open.remove(region)  # identity: Region defines no __eq__
            return _peak(region.carried, self._read())


_RSS_MARK = HighWaterMark(_read_vm_hwm, _reset_vm_hwm)
_vmhwm_usable = True  # flips to False the first time clear_refs cannot be written

_DEVICE_MARKS: dict[int, HighWaterMark] = {}


def _device_mark(device: torch.device) -> HighWaterMark:
    index = device.index if device.index is not None else torch.cuda.current_device()
    if index not in _DEVICE_MARKS:
        dev = torch.device("cuda", index)
        # one reset clears both peaks, so one mark carries both: (allocated, reserved) bytes
        _DEVICE_MARKS[index] = HighWaterMark(
            lambda: (torch.cuda.max_memory_allocated(dev), torch.cuda.max_memory_reserved(dev)),
            lambda: torch.cuda.reset_peak_memory_stats(dev),
            zero=(0, 0),
        )
    return _DEVICE_MARKS[index]


class RssSampler:
    """Daemon thread recording the peak RSS of the descendants (and this process) every ``interval_s`` s."""

    def __init__(self, *, sample_main: bool, interval_s: float = SAMPLE_INTERVAL_S) -> None:
        self.sample_main = sample_main
        self.interval_s = interval_s
        self.main_peak = 0  # bytes
        self.children_peak = 0  # bytes: the summed descendants' RSS
        self.samples = 0
        self._main = psutil.Process()
        self._children: dict[int, psutil.Process] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._sample(rescan=True)
        self._thread = threading.Thread(target=self._run, name="hpml-rss-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._sample(rescan=True)

    def _run(self) -> None:
        # listing descendants costs ~30-70 us (~1 ms via psutil), so it runs every RESCAN_INTERVALS ticks
        rescan_s = self.interval_s * (RESCAN_INTERVALS if FAST_CHILD_LISTING else 5 * RESCAN_INTERVALS)
        next_rescan = time.monotonic() + rescan_s
        while True:
            busy = self.sample_main or bool(self._children)
            timeout = self.interval_s if busy else max(0.0, next_rescan - time.monotonic())
            if self._stop.wait(timeout):
                return
            now = time.monotonic()
            rescan = now >= next_rescan
            if rescan:
                next_rescan = now + rescan_s
            self._sample(rescan=rescan)

    def _sample(self, *, rescan: bool) -> None:
        if rescan:
            pids = set(child_pids())
            for pid in list(self._children):
                if pid not in pids:
                    del self._children[pid]
            for pid in pids:
                if pid not in self._children:
                    try:
                        self._children[pid] = psutil.Process(pid)
                    except psutil.Error:  # exited since listing
                        pass
        total = 0
        for pid, proc in list(self._children.items()):
            try:
                total += proc.memory_info().rss
            except psutil.Error:  # exited: its memory is freed, drop it
                del self._children[pid]
        self.children_peak = max(self.children_peak, total)
        if self.sample_main:
            self.main_peak = max(self.main_peak, self._main.memory_info().rss)
        self.samples += 1


@dataclass(frozen=True)
class MemoryStats:
    """Peak memory of a region, in bytes."""

    peak_rss_bytes: int  # main + children (docs/measurement.md defines each field)
    main_peak_rss_bytes: int
    children_peak_rss_bytes: int
    peak_device_bytes: int
    rss_method: str  # "vmhwm" or "sampled"
    peak_reserved_bytes: int | None = None
    minor_faults: int | None = None
    major_faults: int | None = None
    worker_minor_faults: int | None = None


def _faults(who: int | None = None) -> tuple[int, int] | None:
    if resource is None:
        return None
    usage = resource.getrusage(resource.RUSAGE_SELF if who is None else who)
    return usage.ru_minflt, usage.ru_majflt


_ChildKey = tuple[int, int]  # (pid, start time in clock ticks): pids are reused


def _child_faults() -> dict[_ChildKey, tuple[int, int]]:
    """(minor, major) faults so far of every live (or zombie) descendant."""
    out: dict[_ChildKey, tuple[int, int]] = {}
    for pid in child_pids():
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()  # after "(comm)", which may hold spaces
        except OSError:  # exited and reaped since listing, or not Linux
            continue
        # fields[0] is the state (field 3 of stat(5)): minflt is field 10, majflt 12, starttime 22
        out[(pid, int(fields[19]))] = (int(fields[7]), int(fields[9]))
    return out


class _TreeFaults:
    """Faults of this process's descendants between ``start()`` and ``stop()``."""

    def start(self) -> None:
        self._live = _child_faults()
        self._reaped = _faults(resource.RUSAGE_CHILDREN) if resource is not None else None

    def stop(self) -> tuple[int, int] | None:
        if self._reaped is None:
            return None
        live = _child_faults()
        reaped = _faults(resource.RUSAGE_CHILDREN)
        minor = reaped[0] - self._reaped[0]
        major = reaped[1] - self._reaped[1]
        for key, (mi, ma) in live.items():
            base = self._live.get(key, (0, 0))  # started inside the region: from 0
            minor += mi - base[0]
            major += ma - base[1]
        for key, (mi, ma) in self._live.items():
            if key not in live:  # reaped inside the region: only its faults after start are ours
                minor -= mi
                major -= ma
        return max(0, minor), max(0, major)


class MemoryTracker(Tracking):
    """Tracks peak host and device memory between ``start()`` and ``stop()``."""

    def __init__(self, device: DeviceLike = "cpu", interval_s: float = SAMPLE_INTERVAL_S) -> None:
        self.device = as_device(device)
        self.interval_s = interval_s
        self.stats: MemoryStats | None = None
        self._rss_region: Region | None = None
        self._device_region: Region | None = None
        self._sampler: RssSampler | None = None
        self._faults: tuple[int, int] | None = None

    def start(self) -> None:
        global _vmhwm_usable
        self._faults = _faults()
        self._tree_faults = _TreeFaults()
        self._tree_faults.start()
        self._rss_region = None
        if _vmhwm_usable:
            try:
                self._rss_region = _RSS_MARK.begin()
            except OSError:  # not Linux, or clear_refs not writable (some sandboxes)
                _vmhwm_usable = False
        try:
            if self.device.type == "cuda":
                self._device_region = _device_mark(self.device).begin()
            self._sampler = RssSampler(sample_main=self._rss_region is None, interval_s=self.interval_s)
            self._sampler.start()
        except BaseException:
            if self._rss_region is not None:  # do not leave a dangling open region
                _RSS_MARK.end(self._rss_region)
            raise

    def stop(self) -> dict[str, Any]:
        """The region's peaks and faults, by metric name (all of :attr:`stats` but the two parts of the RSS peak)."""
        assert self._sampler is not None, "MemoryTracker.stop() without start()"
        self._sampler.stop()
        if self._rss_region is not None:
            main_peak, method = _RSS_MARK.end(self._rss_region), "vmhwm"
        else:
            main_peak, method = self._sampler.main_peak, "sampled"
        device_peak, reserved_peak = 0, None
        if self._device_region is not None:
            device_peak, reserved_peak = _device_mark(self.device).end(self._device_region)
        children_peak = self._sampler.children_peak
        self._sampler = self._rss_region = self._device_region = None
        end = _faults()
        tree = self._tree_faults.stop()
        minor = major = workers = None
        if self._faults is not None and end is not None:
            minor, major = end[0] - self._faults[0], end[1] - self._faults[1]
            if tree is not None:
                workers = tree[0]
                minor, major = minor + tree[0], major + tree[1]
        self.stats = MemoryStats(
            peak_rss_bytes=main_peak + children_peak,
            main_peak_rss_bytes=main_peak,
            children_peak_rss_bytes=children_peak,
            peak_device_bytes=device_peak,
            rss_method=method,
            peak_reserved_bytes=reserved_peak,
            minor_faults=minor,
            major_faults=major,
            worker_minor_faults=workers,
        )
        values = dataclasses.asdict(self.stats)
        del values["main_peak_rss_bytes"], values["children_peak_rss_bytes"]
        return values

