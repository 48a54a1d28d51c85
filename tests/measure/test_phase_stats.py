"""measure_phase composes timer, memory and I/O into one PhaseStats."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from hpml.errors import HpmlError
from hpml.measure import PHASES, PhaseStats, measure_phase


def test_stats_are_populated() -> None:
    with measure_phase("load", "cpu") as m:
        time.sleep(0.01)
        m.samples = 100
    stats = m.stats
    assert isinstance(stats, PhaseStats)
    assert stats.phase == "load" and stats.samples == 100
    assert stats.seconds >= 0.01
    assert stats.samples_per_s == pytest.approx(100 / stats.seconds)
    assert stats.peak_rss_bytes > 0 and stats.peak_device_bytes == 0
    assert set(stats.as_dict()) >= {
        "phase", "seconds", "samples", "samples_per_s", "peak_rss_bytes",
        "peak_device_bytes", "read_bytes", "read_chars",
    }


def test_samples_given_up_front() -> None:
    with measure_phase("inference", "cpu", samples=8) as m:
        pass
    assert m.stats is not None and m.stats.samples == 8


def test_empty_phase_has_zero_rate_not_an_error() -> None:
    with measure_phase("preprocess", "cpu") as m:
        pass
    assert m.stats is not None and m.stats.samples_per_s == 0.0


def test_unknown_phase_names_the_allowed_ones() -> None:
    with pytest.raises(HpmlError) as info:
        measure_phase("training", "cpu")
    assert all(phase in str(info.value) for phase in PHASES)


def test_negative_samples_is_an_hpml_error() -> None:
    with pytest.raises(HpmlError, match="samples"):
        measure_phase("train", "cpu", samples=-1)


def test_exception_in_body_propagates_and_stops_tracking() -> None:
    with pytest.raises(ValueError):
        with measure_phase("train", "cpu") as m:
            raise ValueError("boom")
    assert m.stats is not None and m.stats.seconds >= 0
    assert not any(t.name == "hpml-rss-sampler" for t in threading.enumerate())


@pytest.mark.gpu
def test_cuda_phase() -> None:
    with measure_phase("train", "cuda", samples=4) as m:
        x = torch.randn(4096, 4096, device="cuda")
        for _ in range(10):
            x = x @ x / 4096
    assert m.stats is not None
    assert m.stats.peak_device_bytes >= 2 * 4096 * 4096 * 4
    assert m.stats.samples_per_s > 0
