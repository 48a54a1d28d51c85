"""Peak host/device memory: allocations inside a region show up, outside ones do not."""

from __future__ import annotations

import multiprocessing as mp
import threading
import time

import psutil
import pytest
import torch

from hpml.measure import MemoryTracker, measure_phase
from hpml.measure import memory as memory_mod

MiB = 1 << 20  # bytes
ALLOC = 200 * MiB  # bytes


def _rss() -> int:
    return psutil.Process().memory_info().rss


def _touch(nbytes: int) -> torch.Tensor:
    # torch.ones writes every page, so they are resident (an untouched buffer is not).
    return torch.ones(nbytes // 4, dtype=torch.float32)


def test_allocation_inside_phase_raises_peak_rss() -> None:
    baseline = _rss()
    with measure_phase("train", "cpu") as m:
        buf = _touch(ALLOC)
        del buf
    assert m.stats is not None
    assert m.stats.peak_rss_bytes >= baseline + ALLOC - 10 * MiB


def test_phase_without_allocation_stays_near_baseline() -> None:
    import psutil

    # peak_rss_bytes counts this process and its children: a child still alive from an earlier
    # test of the session (a loader worker, a fresh-process server) belongs to the baseline too
    baseline = _rss() + sum(c.memory_info().rss for c in psutil.Process().children(recursive=True))
    with measure_phase("train", "cpu") as m:
        time.sleep(0.01)
    assert m.stats is not None
    assert m.stats.peak_rss_bytes < baseline + ALLOC // 2


def test_sampled_fallback_sees_a_held_allocation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory_mod, "_vmhwm_usable", False)
    baseline = _rss()
    with MemoryTracker("cpu") as mem:
        buf = _touch(ALLOC)
        time.sleep(0.05)  # ~10 sampling intervals: sampling only sees what is held
        del buf
    assert mem.stats is not None and mem.stats.rss_method == "sampled"
    assert mem.stats.main_peak_rss_bytes >= baseline + ALLOC - 10 * MiB


def test_nested_region_does_not_erase_the_outer_peak() -> None:
    if not memory_mod._vmhwm_usable:
        pytest.skip("clear_refs is not writable here: the sampled method needs no nesting care")
    baseline = _rss()
    with MemoryTracker("cpu") as outer:
        buf = _touch(ALLOC)
        del buf
        with MemoryTracker("cpu") as inner:  # resets the process-wide high-water mark
            pass
    assert inner.stats is not None and outer.stats is not None
    assert inner.stats.main_peak_rss_bytes < baseline + ALLOC // 2
    assert outer.stats.main_peak_rss_bytes >= baseline + ALLOC - 10 * MiB


def _hold_memory(nbytes: int, ready: mp.Event, release: mp.Event) -> None:  # type: ignore[valid-type]
    blob = b"x" * nbytes  # resident: bytes multiplication writes every byte
    ready.set()
    release.wait(10)
    del blob


def test_worker_process_memory_is_included() -> None:
    ctx = mp.get_context("fork")  # like DataLoader workers on Linux
    ready, release = ctx.Event(), ctx.Event()
    with MemoryTracker("cpu") as mem:
        worker = ctx.Process(target=_hold_memory, args=(ALLOC, ready, release))
        worker.start()
        assert ready.wait(10)
        deadline = time.monotonic() + 5
        while mem._sampler.children_peak < ALLOC and time.monotonic() < deadline:  # type: ignore[union-attr]
            time.sleep(0.01)  # new workers are found within RESCAN_INTERVALS samples
        release.set()
        worker.join(10)
    assert mem.stats is not None
    assert mem.stats.children_peak_rss_bytes >= ALLOC
    assert mem.stats.peak_rss_bytes == mem.stats.main_peak_rss_bytes + mem.stats.children_peak_rss_bytes


def test_sampling_thread_is_stopped() -> None:
    with MemoryTracker("cpu"):
        assert any(t.name == "hpml-rss-sampler" for t in threading.enumerate())
    assert not any(t.name == "hpml-rss-sampler" for t in threading.enumerate())


def test_cpu_has_no_device_peak() -> None:
    with MemoryTracker("cpu") as mem:
        pass
    assert mem.stats is not None and mem.stats.peak_device_bytes == 0


@pytest.mark.gpu
def test_cuda_peak_counts_a_region_allocation() -> None:
    keep = torch.empty(64 * MiB, dtype=torch.uint8, device="cuda")
    with MemoryTracker("cuda") as mem:
        tmp = torch.empty(ALLOC, dtype=torch.uint8, device="cuda")
        del tmp
    assert mem.stats is not None
    assert mem.stats.peak_device_bytes >= ALLOC + keep.numel()
    with MemoryTracker("cuda") as idle:
        pass
    assert idle.stats is not None and idle.stats.peak_device_bytes < ALLOC


def test_minor_faults_count_the_pages_a_region_touches_first():
    size = 64 << 20  # bytes: 16,384 pages of 4 KiB, fresh from the OS (above any mmap threshold)
    with MemoryTracker("cpu") as mem:
        block = b"\x01" * size  # allocated and written: every page faults once
    assert len(block) == size
    assert mem.stats.minor_faults is not None and mem.stats.minor_faults >= size // 4096 // 2
    with MemoryTracker("cpu") as idle:
        pass
    assert idle.stats.minor_faults < 1000


def _touch_pages(nbytes: int, ready, release) -> None:
    blob = b"\x01" * nbytes  # every page faults once, in this (the worker's) process
    ready.set()
    release.wait(10)
    del blob


@pytest.mark.parametrize("reaped", [True, False], ids=["reaped-inside", "alive-at-the-end"])
def test_worker_faults_are_counted_in_their_own_process(reaped: bool) -> None:
    size = 64 << 20  # bytes: 16,384 pages of 4 KiB
    ctx = mp.get_context("fork")  # like DataLoader workers on Linux
    ready, release = ctx.Event(), ctx.Event()
    with MemoryTracker("cpu") as mem:
        worker = ctx.Process(target=_touch_pages, args=(size, ready, release))
        worker.start()
        assert ready.wait(10)
        if reaped:
            release.set()
            worker.join(10)
    release.set()
    worker.join(10)
    assert mem.stats.worker_minor_faults is not None and mem.stats.worker_minor_faults >= size // 4096 // 2
    assert mem.stats.minor_faults >= mem.stats.worker_minor_faults


def test_a_workers_faults_before_the_region_are_not_counted() -> None:
    size = 64 << 20  # bytes
    ctx = mp.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    worker = ctx.Process(target=_touch_pages, args=(size, ready, release))
    worker.start()
    assert ready.wait(10)  # its pages were touched before the region
    with MemoryTracker("cpu") as mem:
        release.set()
        worker.join(10)  # reaped inside: RUSAGE_CHILDREN gains its whole lifetime
    assert mem.stats.worker_minor_faults < size // 4096 // 4
