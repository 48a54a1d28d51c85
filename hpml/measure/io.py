"""Bytes read during a region by this process and its workers (docs/measurement.md)."""

from __future__ import annotations

import ctypes
import dataclasses
import multiprocessing
import os
import sys
from dataclasses import dataclass
from typing import Any, NamedTuple

import psutil

from hpml.measure.proctree import child_pids
from hpml.measure.tracking import Tracking

#: Linux folds a reaped child's I/O counters into its parent's (kernel/exit.c, wait_task_zombie).
EXITED_CHILDREN_FOLD_INTO_PARENT = sys.platform.startswith("linux")


#: Bytes the dataset readers fetched, in shared memory so forked workers add to it.
_DATASET_BYTES = multiprocessing.Value(ctypes.c_uint64, 0)


def note_dataset_read(nbytes: int) -> None:
    """Add ``nbytes`` (bytes) fetched from a dataset file to the logical read counter."""
    with _DATASET_BYTES.get_lock():
        _DATASET_BYTES.value += nbytes


def dataset_bytes_read() -> int:
    """Bytes fetched from dataset files so far, by this process and its forked workers."""
    return int(_DATASET_BYTES.value)


def read_dataset_file(path: str | os.PathLike) -> bytearray:
    """The whole file, read with ``read()`` and counted as dataset bytes; raises OSError."""
    with open(path, "rb") as f:
        buf = bytearray(os.fstat(f.fileno()).st_size)
        n = f.readinto(buf)
    del buf[n:]  # the file shrank since the stat
    note_dataset_read(n)
    return buf


def drop_page_cache(paths) -> int:
    """Evict ``paths`` from the page cache (dirty pages written back first); returns the bytes advised."""
    total = 0
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fdatasync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            total += os.fstat(fd).st_size
        finally:
            os.close(fd)
    return total


class _Counters(NamedTuple):
    read_bytes: int
    read_chars: int | None


_ZERO = _Counters(0, 0)

# pids are reused, so children are keyed by pid and start time
_ChildKey = tuple[int, float]


def _read(proc: psutil.Process) -> _Counters:
    """Raises psutil.Error, or AttributeError where psutil has no io_counters."""
    c = proc.io_counters()
    return _Counters(c.read_bytes, getattr(c, "read_chars", None))


def _read_children() -> tuple[dict[_ChildKey, _Counters], set[_ChildKey]]:
    """(readable descendants' counters, alive-but-unreadable descendants)."""
    readable: dict[_ChildKey, _Counters] = {}
    unreadable: set[_ChildKey] = set()
    for pid in child_pids():
        try:
            proc = psutil.Process(pid)
            key = (pid, proc.create_time())
        except psutil.Error:  # exited since listing
            continue
        try:
            readable[key] = _read(proc)
        except psutil.ZombieProcess:  # exited, not yet reaped: not folded into ours yet
            unreadable.add(key)
        except psutil.NoSuchProcess:
            continue
        except (psutil.Error, AttributeError):  # AccessDenied, or unsupported
            unreadable.add(key)
    return readable, unreadable


@dataclass(frozen=True)
class IoStats:
    """Bytes read in a region by the process tree; None where not measurable."""

    read_bytes: int | None  # from storage
    read_chars: int | None  # returned by read syscalls, page-cache hits included
    dataset_bytes: int = 0


class IoTracker(Tracking):
    """Counts bytes read by this process and its descendants between ``start()`` and ``stop()``."""

    def __init__(self) -> None:
        self.stats: IoStats | None = None
        self._main = psutil.Process()
        self._main_start: _Counters | None = None
        self._children_start: dict[_ChildKey, _Counters] = {}
        self._dataset_start = 0

    def start(self) -> None:
        self._dataset_start = dataset_bytes_read()
        try:
            self._main_start = _read(self._main)
        except (psutil.Error, AttributeError):  # unsupported platform or no permission
            self._main_start = None
            return
        self._children_start, _ = _read_children()

    def stop(self) -> dict[str, Any]:
        """``read_bytes``, ``read_chars``, ``dataset_bytes`` of the region (also in :attr:`stats`)."""
        dataset = dataset_bytes_read() - self._dataset_start
        if self._main_start is None:
            self.stats = IoStats(read_bytes=None, read_chars=None, dataset_bytes=dataset)
            return dataclasses.asdict(self.stats)
        # children first: a child reaped in the microseconds between is counted twice, not missed
        children_end, unreadable = _read_children()
        main_end = _read(self._main)
        start = self._main_start
        read_bytes = main_end.read_bytes - start.read_bytes
        read_chars = (
            main_end.read_chars - start.read_chars
            if main_end.read_chars is not None and start.read_chars is not None
            else None
        )
        for key, end in children_end.items():
            base = self._children_start.get(key, _ZERO)  # started inside the region: 0
            read_bytes += end.read_bytes - base.read_bytes
            if read_chars is not None and end.read_chars is not None and base.read_chars is not None:
                read_chars += end.read_chars - base.read_chars
        if EXITED_CHILDREN_FOLD_INTO_PARENT:
            for key, base in self._children_start.items():
                if key in children_end or key in unreadable:
                    continue
                # reaped inside the region: only its reads after start are ours
                read_bytes -= base.read_bytes
                if read_chars is not None and base.read_chars is not None:
                    read_chars -= base.read_chars
        self.stats = IoStats(
            read_bytes=max(0, read_bytes),
            read_chars=None if read_chars is None else max(0, read_chars),
            dataset_bytes=dataset,
        )
        return dataclasses.asdict(self.stats)

