"""Host allocator tuning: raised glibc malloc thresholds keep freed activations in the heap, so a CPU
step stops touching fresh pages (fewer minor faults, 1.07-1.17x on ResNet-50: docs/studies/reference-run.md).

The cost is resident memory (``peak_rss_bytes``). It is process-wide and one-way: after ``mallopt`` glibc
stops adapting its thresholds, so its rows run after every row without it (:func:`host_allocator_tuned`)."""

from __future__ import annotations

import ctypes
import ctypes.util
import threading

from hpml.errors import HpmlError

# mallopt(3) parameter numbers (glibc's <malloc.h>).
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

#: Blocks up to this size come from the heap (32 MiB: glibc's upper bound on 64-bit).
MMAP_THRESHOLD = 32 << 20
#: Free memory at the heap top kept before returning any to the OS.
TRIM_THRESHOLD = 1 << 30
#: Extra memory requested with each heap growth (fewer brk calls).
TOP_PAD = 64 << 20

TUNING: dict[int, int] = {M_MMAP_THRESHOLD: MMAP_THRESHOLD, M_TRIM_THRESHOLD: TRIM_THRESHOLD, M_TOP_PAD: TOP_PAD}

_lock = threading.Lock()
_tuned = False
_libc: ctypes.CDLL | None = None


def _glibc() -> ctypes.CDLL | None:
    """The process's C library when it is glibc (has ``mallopt``), else None."""
    global _libc
    if _libc is None:
        name = ctypes.util.find_library("c")
        try:
            lib = ctypes.CDLL(name)
            lib.gnu_get_libc_version  # noqa: B018  (glibc only; AttributeError elsewhere)
            lib.mallopt  # noqa: B018
        except (OSError, AttributeError, TypeError):
            return None
        _libc = lib
    return _libc


def unavailable_reason() -> str | None:
    """Why the host allocator cannot be tuned here (None when it can)."""
    if _glibc() is None:
        return "host_allocator tunes glibc malloc (mallopt); this process's C library is not glibc"
    return None


def tune_host_allocator() -> None:
    """Apply :data:`TUNING` with ``mallopt`` (idempotent); HpmlError when glibc rejects it or is absent."""
    global _tuned
    with _lock:
        if _tuned:
            return
        reason = unavailable_reason()
        if reason:
            raise HpmlError(reason)
        libc = _glibc()
        for param, value in TUNING.items():
            if libc.mallopt(ctypes.c_int(param), ctypes.c_int(value)) != 1:
                raise HpmlError(f"glibc rejected mallopt({param}, {value}) while tuning the host allocator")
        _tuned = True


def host_allocator_tuned() -> bool:
    """Whether this process's allocator has been tuned (it cannot be undone)."""
    return _tuned
