"""Workload builders on tiny sizes: what one measured call processes, and data skips."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from hpml.bench import workloads
from hpml.bench.session import BenchSession
from hpml.bench.sides import NotApplicable
from hpml.bench.matrix import Case
from hpml.bench.profiles import get_profile
from hpml.bench.realdata import RealData

TINY = dataclasses.replace(
    get_profile("smoke"), name="tiny-test", small_image_batch=2, large_image_batch=2, text_batch=2,
    seq_len=16, load_batches=2, e2e_batches=2, preprocess_samples=3, jpeg_size=(48, 40),
)


@pytest.fixture
def session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> BenchSession:
    monkeypatch.setenv("HPML_CACHE_DIR", str(tmp_path / "cache"))
    return BenchSession(TINY, RealData(None, tmp_path / "data", TINY, samples=8))


# Text rows read the benchmark-written CSVs (source="real"): their tokenizer trains in a
# moment, where the twins' default one reads 20k generated reviews.


def test_grad_accum_step_processes_accum_steps_micro_batches(session: BenchSession):
    spec = workloads.train_step_workload(Case("train", "amazon_polarity", "cpu", "grad_accum", "sgd", "real"), session)
    assert spec.samples_per_round == TINY.accum_steps * TINY.text_batch
    assert spec.batch_size == TINY.text_batch and spec.flops_per_sample > 0
    assert spec.compute_dtype == torch.float32
    assert torch.isfinite(spec.target())
    assert spec.extra["accum_steps"] == TINY.accum_steps and spec.extra["model_preset"] == "tiny"


def test_bf16_step_is_compared_with_the_bf16_peak(session: BenchSession):
    spec = workloads.train_step_workload(Case("train", "amazon_full", "cpu", "amp_bf16", "adam", "real"), session)
    assert spec.compute_dtype == torch.bfloat16 and spec.samples_per_round == TINY.text_batch


def test_inference_is_one_forward_of_a_batch(session: BenchSession):
    spec = workloads.inference_workload(Case("inference", "amazon_full", "cpu", "baseline", source="real"), session)
    assert spec.target().shape == (TINY.text_batch, 5)


@pytest.mark.parametrize("source", ["real", "synthetic"])
def test_a_loading_call_is_one_pass_over_the_batches(session: BenchSession, source: str):
    spec = workloads.loading_workload(Case("load", "cifar10", "cpu", "baseline", source=source), session)
    assert spec.samples_per_round == TINY.load_batches * TINY.small_image_batch
    assert spec.target() == spec.samples_per_round
    assert spec.target() == spec.samples_per_round  # a fresh pass every call


def test_device_loader_without_in_memory_arrays_is_not_applicable(session: BenchSession):
    with pytest.raises(NotApplicable, match="device_loader needs the split in memory"):
        workloads.loading_workload(Case("load", "imagenet", "cpu", "device_loader", source="real"), session)


def test_real_rows_without_their_data_are_not_applicable(tmp_path: Path):
    empty = tmp_path / "empty"
    empty.mkdir()
    session = BenchSession(TINY, RealData(empty, tmp_path / "scratch", TINY, samples=8))
    with pytest.raises(NotApplicable, match="real cifar100 data: cifar100 not found under .*empty"):
        workloads.preprocess_workload(Case("preprocess", "cifar100", "cpu", "baseline", source="real"), session)
    # the twin still runs, and digits is bundled
    workloads.preprocess_workload(Case("preprocess", "cifar100", "cpu", "baseline", source="synthetic"), session).target()
    workloads.preprocess_workload(Case("preprocess", "digits", "cpu", "baseline", source="real"), session).target()


def test_end_to_end_records_the_load_and_train_breakdown(session: BenchSession):
    spec = workloads.end_to_end_workload(Case("end_to_end", "amazon_polarity", "cpu", "baseline", "sgd", "real"), session)
    assert spec.samples_per_round == TINY.e2e_batches * TINY.text_batch
    spec.target()
    spec.target()
    phases = spec.phases(1)
    assert set(phases) == {"load", "train"}
    assert sum(p["fraction"] for p in phases.values()) == pytest.approx(1.0)


def copies_in(call, monkeypatch) -> list[str]:
    """``Tensor.to`` calls inside ``call`` that made a new tensor (a device copy or a layout conversion)."""
    made: list[str] = []
    real_to = torch.Tensor.to

    def to(self, *args, **kwargs):
        out = real_to(self, *args, **kwargs)
        if out is not self:
            made.append(f"{tuple(self.shape)} {self.device} -> {out.device}")
        return out

    with monkeypatch.context() as m:
        m.setattr(torch.Tensor, "to", to)
        call()
    return made


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
@pytest.mark.parametrize("phase", ["train", "inference"])
def test_step_rows_hold_their_batches_on_the_device_before_the_timed_call(session, monkeypatch, phase, device):
    """On CPU the copy a step row must not time is channels_last's layout conversion; on
    CUDA it is also the host-to-device copy (the load rows measure copies)."""
    build = workloads.train_step_workload if phase == "train" else workloads.inference_workload
    spec = build(Case(phase, "digits", device, "channels_last", "sgd" if phase == "train" else None,
                      model="resnet18"), session)
    assert copies_in(spec.target, monkeypatch) == []
