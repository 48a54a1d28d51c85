"""What benchmark rows record about what they measured (issue 13): the members of a
composite that ran, the data source, twins materialized before the timed region."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from hpml.bench import workloads
from hpml.bench.session import BenchSession
from hpml.bench.sides import Measured
from hpml.bench.matrix import Case
from hpml.bench.profiles import get_profile
from hpml.bench.realdata import RealData
from hpml.data.synthetic import SyntheticImages
from hpml.measure.tracker_registry import tracked_metrics
from hpml.results.record import BenchRow, declared_keys
from hpml.train.optimizations import expand

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

    def _make_stats(self, iterations):  # what hpml.bench.compat.record_rounds uses for paired rows
        self.recorded = []
        return SimpleNamespace(update=self.recorded.append)

    def pedantic(self, target, setup=None, rounds=1, warmup_rounds=0, iterations=1):
        for _ in range(warmup_rounds + rounds):
            if setup is not None:
                assert setup() is None  # pytest-benchmark unpacks anything else as (args, kwargs)
            target()


def test_a_composite_row_records_the_members_that_ran(session: BenchSession):
    bench = FakeBenchmark()
    case = Case("train", "cifar10", "cpu", "optimized", "sgd")
    # paired=False: the CPU `optimized` row is process-wide, and a fresh process could not take a lambda
    session.run(bench, case, lambda c, s: Measured(target=lambda: None, samples_per_round=2, batch_size=2),
                paired=False)
    assert bench.extra_info["expanded_optimizations"] == list(expand(("optimized",), "cpu"))
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


def _imagenet_files(session: BenchSession) -> list[Path]:
    root = session.real_data.root("imagenet")
    return sorted(p for p in Path(root).rglob("*") if p.suffix.lower() in (".jpeg", ".jpg", ".png"))


def test_a_loading_row_counts_the_bytes_its_decoder_reads(session: BenchSession):
    bench = FakeBenchmark()
    case = Case("load", "imagenet", "cpu", "baseline", source="real")
    session.run(bench, case, workloads.loading_workload)
    info = bench.extra_info
    read_per_pass = TINY.load_batches * TINY.large_image_batch  # files decoded per call
    sizes = sorted(p.stat().st_size for p in _imagenet_files(session))
    assert info["dataset_bytes"] >= read_per_pass * sizes[0] > 0  # what decode read, not ~0
    assert info["read_chars"] >= info["dataset_bytes"]  # the read() syscalls see it too
    assert info["source"] == "real"


def test_a_cold_cache_row_fetches_its_files_from_storage(session: BenchSession):
    import pytest as _pytest

    bench = FakeBenchmark()
    case = Case("load", "imagenet", "cpu", "baseline", source="real", cold_cache=True)
    session.run(bench, case, workloads.loading_workload)
    info = bench.extra_info
    assert info["cold_cache"] is True and case.label == "imagenet-coldcache"
    if info["read_bytes"] is None:
        _pytest.skip("no /proc/<pid>/io here")
    # evicted before every call: the pass reads its files from storage (page granularity)
    assert info["read_bytes"] >= info["dataset_bytes"] // 2 > 0


def test_a_cold_cache_row_of_an_in_memory_set_is_skipped_with_the_reason(session: BenchSession):
    with pytest.raises(pytest.skip.Exception, match="read into memory when built"):
        session.run(FakeBenchmark(), Case("load", "cifar10", "cpu", "baseline", source="real", cold_cache=True),
                    workloads.loading_workload)


def test_the_loading_matrix_has_a_cold_cache_row_per_dataset():
    from hpml.bench.matrix import loading_cases
    from hpml.data import list_datasets

    cold = [c for c in loading_cases(TINY) if c.cold_cache]
    assert sorted(c.dataset for c in cold) == sorted(list_datasets())
    assert all(c.source == "real" and c.is_baseline for c in cold)


def test_rows_record_the_declared_keys(session: BenchSession):
    """A paired row and its A/A baseline record :class:`BenchRow`'s keys; anything else is a
    tracked metric or the workload's own ``extra``."""
    extra = {"image_size": 8}
    build = lambda c, s: Measured(target=lambda: None, samples_per_round=2, batch_size=2, flops_per_sample=10,
                                  compute_dtype=torch.float32, extra=extra)  # noqa: E731
    optional = declared_keys(BenchRow) - BenchRow.__required_keys__
    for optimization, present in (("baseline", {"aa_control", "speedup_stop"}),
                                  ("channels_last", {"speedup_stop", "baseline_interleaved_s"})):
        bench = FakeBenchmark()
        session.run(bench, Case("train", "digits", "cpu", optimization, "sgd"), build)
        keys = set(bench.extra_info)
        assert BenchRow.__required_keys__ <= keys
        assert keys & optional == present
        assert keys - declared_keys(BenchRow) == set(tracked_metrics()) | set(extra)
    assert bench.extra_info["achieved_flops"] == 10 * bench.extra_info["samples_per_s"]
