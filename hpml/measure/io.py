"""Bytes read during a region by this process and its descendants (DataLoader workers).

Two counters, both from ``psutil.Process.io_counters()`` (``/proc/<pid>/io``):

* ``read_bytes`` (bytes): what the process caused to be fetched from storage.  A read
  served from the page cache counts 0, so a warm-cache benchmark reports ~0 here;
  dropping the cache (``/proc/sys/vm/drop_caches``) needs root and is not done here.
* ``read_chars`` (bytes, the kernel's ``rchar``): what ``read()``-family syscalls
  returned, page-cache hits included; it is what a warm-cache epoch actually reads.
  It also counts pipes and sockets (e.g. batches sent from workers to the parent), and
  misses memory-mapped reads (``np.load(mmap_mode=...)``), which fault pages in without
  a syscall.

* ``dataset_bytes`` (bytes, logical): what the dataset readers fetched from dataset
  files, counted by the readers themselves (:func:`read_dataset_file`), in this process
  and in forked loader workers (one counter in shared memory, inherited on fork): a
  decoder that memory-maps its file (torchvision's ``decode_image(path)``) is invisible
  to ``read_chars``, and on ``workers`` rows ``read_chars`` is mostly worker-to-parent
  pipe traffic.  Not counted: workers started with ``spawn`` (they get their own
  counter), and sets read whole into memory when built (CIFAR, the CSVs), whose passes
  read no files.

:func:`drop_page_cache` evicts files from the page cache (``posix_fadvise``
``POSIX_FADV_DONTNEED``, no root needed), so a cold-cache row's ``read_bytes`` is the
storage traffic of a pass.

Where the counters cannot be read (macOS, no permission) both are None, not 0: "not
measured" must not look like "read nothing".

Exited workers (non-persistent DataLoader workers exit at the end of each epoch): on
Linux, when a parent reaps (waits for) a child, the kernel adds the child's whole I/O
count to the parent's own.  So a worker started and reaped inside the region is counted
exactly through this process's counters, with no sampling; polling the workers and also
adding their last sample would count them twice.  What needs care is a child that
existed before the region: its pre-region reads are subtracted when it is reaped inside
it (see :meth:`IoTracker.stop`); a zombie (exited, not yet reaped) still has readable
counters and is treated as alive.  Not counted: descendants orphaned and reaped by
init, and, off Linux, children that exit inside the region.  A child reaped in the
microseconds between the two reads in ``stop()`` can be counted twice or not at all.
"""

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

#: Linux folds a reaped child's I/O counters into its parent's (kernel/exit.c,
#: wait_task_zombie); other kernels do not.
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
    """The whole file, read with ``read()`` (so ``read_chars``/``read_bytes`` see it) and
    counted as dataset bytes; raises OSError."""
    with open(path, "rb") as f:
        buf = bytearray(os.fstat(f.fileno()).st_size)
        n = f.readinto(buf)
    del buf[n:]  # the file shrank since the stat
    note_dataset_read(n)
    return buf


def drop_page_cache(paths) -> int:
    """Evict ``paths`` from the page cache; returns the bytes advised.  Dirty pages are
    written back first (``fdatasync``), since the kernel keeps dirty pages cached."""
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
    read_bytes: int  # bytes from storage
    read_chars: int | None  # bytes returned by read syscalls; None off Linux


_ZERO = _Counters(0, 0)

# A pid can be reused after its process is reaped, so children are keyed by pid and
# start time.
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
        except psutil.ZombieProcess:  # where a zombie's counters are unreadable
            unreadable.add(key)  # exited, not yet reaped: not folded into ours yet
        except psutil.NoSuchProcess:
            continue
        except (psutil.Error, AttributeError):  # AccessDenied, or unsupported
            unreadable.add(key)
    return readable, unreadable


@dataclass(frozen=True)
class IoStats:
    """Bytes read in a region by the process tree; None where not measurable."""

    read_bytes: int | None  # bytes fetched from storage (page-cache hits count 0)
    read_chars: int | None  # bytes returned by read syscalls (page-cache hits included)
    dataset_bytes: int = 0  # bytes the dataset readers fetched from dataset files (logical)


class IoTracker(Tracking):
    """Counts bytes read by this process and its descendants between ``start()`` and ``stop()``.

    >>> with IoTracker() as io:
    ...     _ = open(__file__, "rb").read()
    >>> io.stats.read_chars is None or io.stats.read_chars > 0
    True
    """

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
        # Children first, then this process: a child reaped in between is folded into
        # our end count and also read as alive (counted twice); the other order would
        # miss it instead.  Either way the window is a few microseconds.
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
                # Reaped inside the region: its lifetime total is now in some tracked
                # process's count, of which only the part after start is ours.
                read_bytes -= base.read_bytes
                if read_chars is not None and base.read_chars is not None:
                    read_chars -= base.read_chars
        # Only the races described in the module docstring can drive these negative.
        self.stats = IoStats(
            read_bytes=max(0, read_bytes),
            read_chars=None if read_chars is None else max(0, read_chars),
            dataset_bytes=dataset,
        )
        return dataclasses.asdict(self.stats)

