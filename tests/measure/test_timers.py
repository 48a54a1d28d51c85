"""Timer correctness: it measures what it wraps and syncs the device it is given."""

from __future__ import annotations

import time

import pytest
import torch

from hpml.errors import HpmlError
from hpml.measure import Timer, synchronize


def test_timer_measures_a_sleep() -> None:
    with Timer("cpu") as t:
        time.sleep(0.05)
    # A correctness bound (sleep never returns early), not a performance claim.
    assert 0.05 <= t.seconds < 1.0


def test_timer_is_reusable() -> None:
    timer = Timer("cpu")
    with timer:
        time.sleep(0.02)
    first = timer.seconds
    with timer:
        pass
    assert timer.seconds < first


def test_synchronize_cpu_is_a_no_op() -> None:
    synchronize("cpu")
    synchronize(torch.device("cpu"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_cuda_device_without_cuda_is_an_hpml_error() -> None:
    with pytest.raises(HpmlError, match="cuda"):
        Timer("cuda")


def test_invalid_device_is_an_hpml_error() -> None:
    with pytest.raises(HpmlError, match="invalid device"):
        Timer("no-such-device")


@pytest.mark.gpu
def test_cuda_timer_waits_for_queued_kernels() -> None:
    a = torch.randn(4096, 4096, device="cuda")
    _ = a @ a  # warm-up: cuBLAS init
    with Timer("cuda") as t:
        for _ in range(20):
            a = a @ a / 4096
    # The end is synchronized: nothing queued in the region is still running.
    assert torch.cuda.current_stream().query() and t.seconds > 0
