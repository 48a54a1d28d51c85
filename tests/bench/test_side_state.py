"""A side owns its process-wide state: a pair's baseline never runs a call under its
optimization's global flags (TF32, cuDNN benchmark, matmul precision), although the
harness builds the baseline, then the optimization, then alternates their calls."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from hpml.bench import workloads
from hpml.bench.session import BenchSession
from hpml.bench.matrix import Case
from hpml.bench.pairing import Precision
from hpml.bench.realdata import RealData
from hpml.train.optimizations import OPTIMIZATIONS, Settings

from .test_measured_records import TINY, FakeBenchmark


def flags() -> dict:
    """The process-wide settings as a call sees them."""
    return {"cudnn_benchmark": torch.backends.cudnn.benchmark, "cudnn_deterministic": torch.backends.cudnn.deterministic,
            "cudnn_tf32": torch.backends.cudnn.allow_tf32, "matmul_tf32": torch.backends.cuda.matmul.allow_tf32,
            "matmul_precision": torch.get_float32_matmul_precision()}


def wanted(s: Settings) -> dict:
    return {"cudnn_benchmark": s.cudnn_benchmark, "cudnn_deterministic": False, "cudnn_tf32": s.tf32,
            "matmul_tf32": s.tf32, "matmul_precision": "high" if s.tf32 else "highest"}


@pytest.fixture
def session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HPML_CACHE_DIR", str(tmp_path / "cache"))
    before = flags()
    yield BenchSession(TINY, RealData(None, tmp_path / "data", TINY, samples=8),
                       precision=Precision(target_halfwidth=0.01, budget_s=1e-3, min_pairs=2))
    torch.backends.cudnn.benchmark = before["cudnn_benchmark"]
    torch.backends.cudnn.deterministic = before["cudnn_deterministic"]
    torch.backends.cudnn.allow_tf32 = before["cudnn_tf32"]
    torch.set_float32_matmul_precision(before["matmul_precision"])


def observe(monkeypatch, session: BenchSession, case: Case) -> list[tuple[Settings, dict]]:
    """Run ``case``'s paired train row; each measured call's side and the flags it ran under."""
    seen: list[tuple[Settings, dict]] = []
    step = workloads.train_step
    # Observed inside the timed call: train_step is what the row's measured call runs.
    monkeypatch.setattr(workloads, "train_step", lambda state, batches: seen.append((state.settings, flags()))
                        or step(state, batches))
    bench = FakeBenchmark()
    session.run(bench, case, workloads.train_step_workload)
    assert bench.extra_info["speedup_pairs"] >= 2  # paired: baseline and optimization calls alternated
    return seen


def check(seen: list[tuple[Settings, dict]]) -> None:
    assert {s.tf32 or s.cudnn_benchmark for s, _ in seen} == {False, True}  # both sides' calls were seen
    wrong = [(s, f) for s, f in seen if f != wanted(s)]
    assert not wrong, f"{len(wrong)} of {len(seen)} calls ran under another side's flags, e.g. {wrong[0][1]}"


def test_each_side_calls_under_its_own_global_flags(session, monkeypatch):
    # The flags are plain process globals, settable and observable without a GPU: an
    # optimization setting all of them, made available on CPU, stands for tf32 and cudnn_benchmark.
    opt = dataclasses.replace(OPTIMIZATIONS.get("tf32"), devices=frozenset({"cpu", "cuda"}),
                              apply=lambda s, ctx: dataclasses.replace(s, tf32=True, cudnn_benchmark=True))
    monkeypatch.setitem(OPTIMIZATIONS._entries, "tf32", opt)
    check(observe(monkeypatch, session, Case("train", "amazon_polarity", "cpu", "tf32", "sgd", "real")))


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["tf32", "cudnn_benchmark", "optimized"])
def test_each_side_calls_under_its_own_global_flags_on_cuda(session, monkeypatch, name):
    check(observe(monkeypatch, session, Case("train", "digits", "cuda", name, "sgd")))
