"""Was anything else using the cores while a row was measured?  ``others_cores`` (CPU s per wall s outside
this process tree, from ``/proc/stat``), ``steal`` and ``loadavg`` over the row's build and measurement;
a row next to a process burning both cores of a 2-core machine ran 25x slower and nothing said so."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import psutil

from hpml.measure.proctree import child_pids

#: Others' share of all cores that makes a window busy: far above idle daemons', enough to shift a ratio.
BUSY_OTHERS_SHARE = 0.10
BUSY_OTHERS_MIN_CORES = 0.10
#: Steal at or above this share of CPU time (a contended VM host) makes a window busy.
BUSY_STEAL = 0.05
#: Windows shorter than this (s) are not judged: jiffies (10 ms) make them too coarse.
MIN_WINDOW_S = 0.2


@dataclass(frozen=True)
class Snapshot:
    wall: float  # s, monotonic
    busy_s: float | None  # s of non-idle CPU time, all cores, since boot (None: no /proc/stat)
    steal_s: float | None
    total_s: float | None
    cores: int
    own_s: float  # s of CPU used by this process tree (live descendants + reaped children)
    loadavg: float | None


def _read_stat(proc: Path) -> tuple[float, float, float, int] | None:
    """(busy s, steal s, total s, cores) from ``proc/stat``; None when unreadable."""
    try:
        lines = (proc / "stat").read_text().splitlines()
    except OSError:
        return None
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    cpu = next((ln.split() for ln in lines if ln.startswith("cpu ")), None)
    if cpu is None:
        return None
    # guest time is already inside user/nice: not added again
    fields = [float(v) for v in cpu[1:9]] + [0.0] * max(0, 9 - len(cpu))
    user, nice, system, idle, iowait, irq, softirq, steal = fields[:8]
    busy = user + nice + system + irq + softirq + steal
    total = busy + idle + iowait
    cores = sum(1 for ln in lines if ln.startswith("cpu") and ln[3:4].isdigit())
    return busy / hz, steal / hz, total / hz, max(1, cores)


def _read_loadavg(proc: Path) -> float | None:
    try:
        return float((proc / "loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


#: The gate's pid, set by the baton on both sessions of a pair: "own" is then the gate's whole tree.
BATON_ROOT_ENV = "HPML_BATON_ROOT"


def _tree_root() -> int | None:
    """The baton's gate process when this session runs under one (and it is alive), else None."""
    raw = os.environ.get(BATON_ROOT_ENV, "")
    if not raw.isdigit() or int(raw) == os.getpid() or not psutil.pid_exists(int(raw)):
        return None
    return int(raw)


def own_cpu_seconds() -> float:
    """CPU seconds of this process tree, reaped children included (under the baton: the gate's tree)."""
    root = _tree_root()
    if root is not None:
        try:
            c = psutil.Process(root).cpu_times()
            return c.user + c.system + c.children_user + c.children_system + _descendants_seconds(root)
        except psutil.Error:  # the gate exited meanwhile: count this process's tree alone
            pass
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system + _descendants_seconds(None)


def _descendants_seconds(root: int | None) -> float:
    total = 0.0
    for pid in child_pids(root):
        try:
            c = psutil.Process(pid).cpu_times()
        except psutil.Error:  # exited meanwhile: its time moves to its parent's children_*
            continue
        total += c.user + c.system + getattr(c, "children_user", 0.0) + getattr(c, "children_system", 0.0)
    return total


def snapshot(proc: Path = Path("/proc"), own: Callable[[], float] = own_cpu_seconds,
             clock: Callable[[], float] = time.monotonic) -> Snapshot:
    stat = _read_stat(proc)
    busy, steal, total, cores = stat if stat is not None else (None, None, None, os.cpu_count() or 1)
    return Snapshot(clock(), busy, steal, total, cores, own(), _read_loadavg(proc))


@dataclass(frozen=True)
class Window:
    """What others did between two snapshots."""

    seconds: float
    others_cores: float | None  # CPU s per wall s used by other processes
    steal: float | None  # share of all CPU time
    cores: int
    loadavg: float | None  # 1-min load average at the window's end

    @property
    def judged(self) -> bool:
        return self.others_cores is not None and self.seconds >= MIN_WINDOW_S

    @property
    def crowded(self) -> bool:
        """Other processes of this machine used the cores."""
        return (self.judged and self.others_cores is not None
                and self.others_cores >= max(BUSY_OTHERS_MIN_CORES, BUSY_OTHERS_SHARE * self.cores))

    @property
    def stolen(self) -> bool:
        """The hypervisor gave the vCPUs' time to other guests."""
        return self.judged and self.steal is not None and self.steal >= BUSY_STEAL

    @property
    def busy(self) -> bool:
        return self.crowded or self.stolen

    def reason(self) -> str:
        """The causes that made the window busy, then the load average as evidence."""
        parts = []
        if self.crowded:
            parts.append(f"other processes used {self.others_cores:.1f} cores")
        if self.stolen:
            parts.append(f"steal {self.steal:.0%}: the hypervisor gave the vCPUs to other guests")
        if self.loadavg is not None:
            parts.append(f"load {self.loadavg:.1f} on {self.cores} cores")
        return "; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 3),
            "others_cores": None if self.others_cores is None else round(self.others_cores, 3),
            "steal": None if self.steal is None else round(self.steal, 4),
            "loadavg": self.loadavg,
            "cores": self.cores,
        }


def window(start: Snapshot, end: Snapshot) -> Window:
    seconds = max(0.0, end.wall - start.wall)
    others = steal = None
    if start.busy_s is not None and end.busy_s is not None and seconds > 0:
        stolen_s = (end.steal_s or 0.0) - (start.steal_s or 0.0)
        # steal is busy time in /proc/stat, but no process here ran in it: not "other processes"
        others = max(0.0, (end.busy_s - start.busy_s) - stolen_s - (end.own_s - start.own_s)) / seconds
        total = (end.total_s or 0.0) - (start.total_s or 0.0)
        steal = stolen_s / total if total > 0 else 0.0
    return Window(seconds, others, steal, end.cores, end.loadavg)


@dataclass(frozen=True)
class Verdict:
    """A row's busy flag, reason and evidence (the ``busy*`` keys of its extra_info)."""

    busy: bool
    reason: str | None
    evidence: dict[str, Any]

    def as_extra(self) -> dict[str, Any]:
        return {"busy": self.busy, "busy_reason": self.reason, "busy_evidence": self.evidence}


def verdict(before: Window | None, during: Window) -> Verdict:
    """Busy when the window before the row (its build) or the one during it was busy."""
    evidence: dict[str, Any] = {"during": during.as_dict()}
    if before is not None:
        evidence["before"] = before.as_dict()
    if during.others_cores is None:
        evidence["note"] = "no /proc/stat: other processes' CPU use not measured"
    flagged = [(name, w) for name, w in (("during", during), ("before", before)) if w is not None and w.busy]
    if not flagged:
        return Verdict(False, None, evidence)
    name, w = flagged[0]
    return Verdict(True, f"{w.reason()} ({name} the row)", evidence)


class RowMonitor:
    """Snapshots at a row's start, at the start of its measurement, and at its end."""

    def __init__(self, snap: Callable[[], Snapshot] = snapshot) -> None:
        self._snap = snap
        self._start = snap()
        self._measure: Snapshot | None = None

    def measuring(self) -> None:
        self._measure = self._snap()

    def finish(self) -> Verdict:
        end = self._snap()
        if self._measure is None:
            return verdict(None, window(self._start, end))
        return verdict(window(self._start, self._measure), window(self._measure, end))
