"""The ``host_allocator`` optimization: glibc malloc keeps freed memory.

The real effect is checked in fresh processes (the tuning is one-way per process); the
wiring with the recording fake of tests/conftest.py."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch.nn as nn

from hpml.errors import HpmlError
from hpml.train import OptContext, compose, expand, make_state
from hpml.train import malloc
from hpml.train.optimizations import is_process_wide, validate_optimizations

# Allocate, touch and free 16 blocks of 8 MiB (128 MiB: above glibc's default trim
# threshold even after it adapts), then report the fraction of those pages that faulted
# again in the fourth round.
_FAULTS = textwrap.dedent("""
    import ctypes, resource, sys
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    if sys.argv[1] == "tuned":
        from hpml.train.malloc import tune_host_allocator
        tune_host_allocator()
    BLOCK, COUNT = 8 << 20, 16
    def one_round():
        ptrs = [libc.malloc(BLOCK) for _ in range(COUNT)]
        for p in ptrs:
            ctypes.memset(p, 1, BLOCK)
        for p in ptrs:
            libc.free(p)
    for _ in range(3):
        one_round()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    one_round()
    print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / (BLOCK * COUNT / 4096))
""")


def _refault_fraction(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", _FAULTS, mode], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return float(out.stdout)


@pytest.mark.skipif(malloc.unavailable_reason() is not None, reason="needs glibc")
def test_tuned_allocator_stops_refaulting_freed_memory():
    """With glibc's defaults the 128 MiB freed each round goes back to the OS and every
    page faults again; tuned, the memory stays in the heap and is reused."""
    assert _refault_fraction("default") > 0.5
    assert _refault_fraction("tuned") < 0.05


def test_host_allocator_tunes_once_with_the_documented_values(fake_allocator):
    settings = compose(["host_allocator"], OptContext("cpu"))
    assert settings.host_allocator
    make_state(nn.Linear(4, 2), device="cpu", settings=settings)
    make_state(nn.Linear(4, 2), device="cpu", settings=settings)
    assert fake_allocator.calls == list(malloc.TUNING.items())  # once: tuning is idempotent
    assert malloc.host_allocator_tuned()
    assert dict(fake_allocator.calls)[malloc.M_MMAP_THRESHOLD] == 32 << 20


def test_default_settings_leave_the_allocator_alone(fake_allocator):
    make_state(nn.Linear(4, 2), device="cpu", settings=compose(["amp_bf16", "channels_last"], OptContext("cpu")))
    assert fake_allocator.calls == [] and not malloc.host_allocator_tuned()


def test_a_rejected_value_is_a_clear_error(fake_allocator):
    fake_allocator.accept = False
    with pytest.raises(HpmlError, match="glibc rejected mallopt"):
        malloc.tune_host_allocator()
    assert not malloc.host_allocator_tuned()


def test_host_allocator_is_cpu_only_and_process_wide():
    with pytest.raises(HpmlError, match="host_allocator applies only to cpu"):
        validate_optimizations(["host_allocator"], "cuda")
    assert is_process_wide(["host_allocator"], "cpu") and is_process_wide(["optimized"], "cpu")
    assert not is_process_wide(["amp_bf16", "channels_last"], "cpu")
    assert not is_process_wide(["optimized"], "cuda")


def test_without_glibc_it_says_why_and_optimized_leaves_it_out(monkeypatch):
    import hpml.machine

    monkeypatch.setattr(hpml.machine, "cpu_has_bf16", lambda: True)  # bf16 stays: only the allocator is left out
    monkeypatch.setattr(malloc, "_glibc", lambda: None)
    with pytest.raises(HpmlError, match="not glibc"):
        validate_optimizations(["host_allocator"], "cpu")
    assert expand(["optimized"], "cpu") == ("amp_bf16", "channels_last")
    validate_optimizations(["optimized"], "cpu")
