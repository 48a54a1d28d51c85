"""Bytes read by the process tree, including workers that exit inside the region.

read_bytes only counts storage reads and the files here are fresh in the page cache,
so the assertions use read_chars (page-cache hits included) and only check read_bytes
for type; dropping caches would need root and is deliberately not done.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import psutil
import pytest

from hpml.measure import IoTracker, measure_phase

MiB = 1 << 20  # bytes
needs_io_counters = pytest.mark.skipif(
    not hasattr(psutil.Process, "io_counters"), reason="psutil has no io_counters on this platform"
)
needs_fold = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="exited children fold into the parent only on Linux"
)


def _file(tmp_path: Path, name: str, nbytes: int) -> Path:
    path = tmp_path / name
    path.write_bytes(os.urandom(nbytes))
    return path


def _read(path: Path) -> None:
    with open(path, "rb") as f:
        while f.read(1 << 20):
            pass


@needs_io_counters
def test_reading_a_file_counts_its_size(tmp_path: Path) -> None:
    path = _file(tmp_path, "data.bin", 4 * MiB)
    with measure_phase("load", "cpu") as m:
        _read(path)
    assert m.stats is not None
    assert m.stats.read_chars is not None and m.stats.read_chars >= 4 * MiB
    assert m.stats.read_bytes is None or m.stats.read_bytes >= 0


def _read_in_child(path: str) -> None:
    _read(Path(path))


@needs_io_counters
@needs_fold
def test_worker_reaped_inside_region_is_counted_once(tmp_path: Path) -> None:
    path = _file(tmp_path, "data.bin", 4 * MiB)
    ctx = mp.get_context("fork")
    with IoTracker() as io:
        worker = ctx.Process(target=_read_in_child, args=(str(path),))
        worker.start()
        worker.join(10)  # reaped: the kernel folds its counters into ours
    assert io.stats is not None and io.stats.read_chars is not None
    assert 4 * MiB <= io.stats.read_chars < 8 * MiB  # not twice


def _read_on_request(before: str, inside: str, go: mp.Event, done: mp.Event) -> None:  # type: ignore[valid-type]
    _read(Path(before))
    done.set()
    go.wait(10)
    _read(Path(inside))


@needs_io_counters
@needs_fold
def test_pre_existing_worker_counts_only_reads_inside_region(tmp_path: Path) -> None:
    before = _file(tmp_path, "before.bin", 16 * MiB)
    inside = _file(tmp_path, "inside.bin", 2 * MiB)
    ctx = mp.get_context("fork")
    go, done = ctx.Event(), ctx.Event()
    worker = ctx.Process(target=_read_on_request, args=(str(before), str(inside), go, done))
    worker.start()
    try:
        assert done.wait(10)  # it has read 16 MiB before the region
        with IoTracker() as io:
            go.set()
            worker.join(10)  # exits and is reaped inside the region
    finally:
        worker.join(10)
    assert io.stats is not None and io.stats.read_chars is not None
    assert 2 * MiB <= io.stats.read_chars < 8 * MiB


@needs_io_counters
def test_pre_existing_worker_alive_at_end(tmp_path: Path) -> None:
    inside = _file(tmp_path, "inside.bin", 2 * MiB)
    before = _file(tmp_path, "before.bin", 8 * MiB)
    ctx = mp.get_context("fork")
    go, done = ctx.Event(), ctx.Event()
    worker = ctx.Process(target=_read_on_request, args=(str(before), str(inside), go, done))
    worker.start()
    try:
        assert done.wait(10)
        with IoTracker() as io:
            go.set()
            while worker.is_alive() and psutil.Process(worker.pid).io_counters().read_chars < 10 * MiB:
                time.sleep(0.001)  # until it has read `inside`; it stays unreaped
    finally:
        worker.join(10)
    assert io.stats is not None and io.stats.read_chars is not None
    assert 2 * MiB <= io.stats.read_chars < 8 * MiB


def test_unavailable_counters_are_none_not_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(self: psutil.Process) -> None:
        raise psutil.AccessDenied(self.pid)

    monkeypatch.setattr(psutil.Process, "io_counters", denied, raising=False)
    with measure_phase("load", "cpu") as m:
        pass
    assert m.stats is not None
    assert m.stats.read_bytes is None and m.stats.read_chars is None
