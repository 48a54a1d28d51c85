"""Listing the measured process's descendants (DataLoader workers, spawned ranks)."""

from __future__ import annotations

import os

import psutil


def _proc_children_supported() -> bool:
    # /proc/<pid>/task/<tid>/children needs CONFIG_PROC_CHILDREN (most distro kernels).
    pid = os.getpid()
    return os.path.exists(f"/proc/{pid}/task/{pid}/children")


#: True when descendants can be listed from /proc (~30 us; psutil's fallback scans every pid, ~1 ms).
FAST_CHILD_LISTING = _proc_children_supported()


def _direct_children(pid: int) -> list[int]:
    # A child forked by any thread is listed under that thread, so read every task.
    found: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                found.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return found


def child_pids(pid: int | None = None) -> list[int]:
    """Pids of all descendants of ``pid`` (default: this process), children first: a snapshot."""
    root = os.getpid() if pid is None else pid
    if not FAST_CHILD_LISTING:
        try:
            return [p.pid for p in psutil.Process(root).children(recursive=True)]
        except psutil.Error:
            return []
    found: list[int] = []
    frontier = [root]
    while frontier:
        kids = [c for p in frontier for c in _direct_children(p)]
        found.extend(kids)
        frontier = kids
    return found
