"""pytest-benchmark's private API hpml uses (hpml.bench.compat): fails loudly when an upgrade moves it."""

from __future__ import annotations

import pytest
from pytest_benchmark.fixture import BenchmarkFixture
from pytest_benchmark.stats import Metadata

from hpml.bench.compat import record_rounds


def test_the_private_pieces_still_exist():
    assert callable(getattr(BenchmarkFixture, "_make_stats", None)), "BenchmarkFixture._make_stats moved"
    assert callable(getattr(Metadata, "update", None)), "pytest_benchmark.stats.Metadata.update moved"


def test_recorded_rounds_become_the_native_stats(benchmark):
    record_rounds(benchmark, [0.3, 0.1, 0.2])
    if benchmark.enabled:
        assert benchmark.stats.stats.rounds == 3 and benchmark.stats.stats.median == pytest.approx(0.2)
    with pytest.raises(RuntimeError, match="already used"):
        record_rounds(benchmark, [0.1])
