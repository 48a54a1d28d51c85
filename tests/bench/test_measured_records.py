"""What benchmark rows record about what they measured (issue 13): the members of a
composite that ran, the data source, twins materialized before the timed region."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import pytest

from hpml.bench import workloads
from hpml.bench.harness import BenchSession, Measured
from hpml.bench.matrix import Case
from hpml.bench.profiles import get_profile
from hpml.bench.realdata import RealData
from hpml.data.synthetic import SyntheticImages
from hpml.train.optimizations import OPTIMIZED

TINY = dataclasses.replace(
    get_profile("smoke"), name="tiny-test", small_image_batch=2, large_image_batch=2, text_batch=2,
    seq_len=16, load_batches=2, e2e_batches=2, preprocess_samples=3, jpeg_size=(48, 40), rounds=2, warmup_rounds=1,
)


@pytest.fixture
def session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> BenchSession:
    monkeypatch.setenv("HPML_CACHE_DIR", str(tmp_path / "cache"))
    return BenchSession(TINY, RealData(None, tmp_path / "data", TINY, samples=8))


class FakeBenchmark:
    """pytest-benchmark's fixture, reduced to what the harness uses; rounds run for real."""

    enabled = True

    def __init__(self) -> None:
        self.extra_info: dict = {}
        self.group = None
        self.stats = SimpleNamespace(stats=SimpleNamespace(median=0.5))

    def pedantic(self, target, setup=None, rounds=1, warmup_rounds=0, iterations=1):
        for _ in range(warmup_rounds + rounds):
            if setup is not None:
                setup()
            target()


def test_a_composite_row_records_the_members_that_ran(session: BenchSession):
    bench = FakeBenchmark()
    case = Case("train", "cifar10", "cpu", "optimized", "sgd")
    session.run(bench, case, lambda c, s: Measured(target=lambda: None, samples_per_round=2, batch_size=2))
    assert bench.extra_info["expanded_optimizations"] == list(OPTIMIZED["cpu"])
    assert bench.extra_info["source"] == "synthetic"


@pytest.mark.parametrize("phase", ["load", "preprocess"])
def test_twin_rows_time_the_loader_not_the_generator(session: BenchSession, monkeypatch, phase):
    generated = []
    real_sample = SyntheticImages.sample
    monkeypatch.setattr(SyntheticImages, "sample", lambda self, i: generated.append(i) or real_sample(self, i))
    build = workloads.loading_workload if phase == "load" else workloads.preprocess_workload
    spec = build(Case(phase, "cifar10", "cpu", "baseline", source="synthetic"), session)
    before = len(generated)
    assert before > 0  # generated while building the row
    spec.target()
    assert len(generated) == before, "the timed call generated twin samples"
    assert spec.extra["twin_materialized"] is True
