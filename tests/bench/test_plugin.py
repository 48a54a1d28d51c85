"""The benchmark plugin end to end, in inner pytest sessions over a tiny benchmark file.

The inner benchmarks time ``time.sleep`` instead of a model, so a session takes a
second, while going through the real plugin, harness and pytest-benchmark.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = """
from hpml.bench.plugin import (
    hpml_bench, hpml_profile, pytest_addoption, pytest_benchmark_update_machine_info,
    pytest_collection_modifyitems, pytest_configure, pytest_sessionfinish, pytest_terminal_summary,
)
"""

INI = """
[pytest]
markers =
    gpu: needs CUDA
    slow: slow
"""

# Baselines listed last and the process-wide row first on purpose: the plugin must run
# baselines first and the process-wide row (host_allocator) after everything else.
BENCHMARKS = """
import time

import pytest
import torch

from hpml.bench.harness import Measured, NotApplicable
from hpml.bench.matrix import Case
from hpml.train.allocator import tune_host_allocator

SECONDS = {"baseline": 0.02, "channels_last": 0.01, "host_allocator": 0.01}
CASES = [
    Case("train", "cifar10", "cpu", "host_allocator", "sgd"),
    Case("train", "cifar10", "cpu", "channels_last", "sgd"),
    Case("train", "cifar10", "cpu", "amp_fp16", "sgd"),
    Case("train", "cifar10", "cpu", "workers", "sgd"),
    Case("train", "cifar10", "cpu", "fused_optimizer", "sgd"),
    Case("train", "cifar10", "cpu", "amp_bf16", "sgd"),
    Case("train", "cifar10", "cpu", "baseline", "sgd"),
]


def sleeper(case, session):
    if case.optimization == "fused_optimizer":
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    if case.optimization == "amp_bf16":
        raise NotApplicable("no bf16 here")
    if case.optimization == "host_allocator":
        tune_host_allocator()  # the tests' recording fake of glibc's mallopt
    seconds = SECONDS[case.optimization]
    return Measured(target=lambda: time.sleep(seconds), samples_per_round=8, batch_size=8)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bench(benchmark, hpml_bench, case):
    hpml_bench.run(benchmark, case, sleeper)
"""


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("HPML_PLANTED_SLOWDOWN", raising=False)
    monkeypatch.delenv("HPML_BENCH_PROFILE", raising=False)
    pytester.makeconftest(CONFTEST)
    pytester.makeini(INI)
    pytester.makepyfile(test_bench=BENCHMARKS)
    return pytester


def _rows(path: Path) -> dict[str, dict]:
    data = json.loads(path.read_text())
    return {b["extra_info"]["optimization"]: b for b in data["benchmarks"]}


def test_rows_are_measured_skipped_with_reasons_and_ordered(suite: pytest.Pytester):
    result = suite.runpytest("--hpml-profile=smoke", "--benchmark-json=out.json", "-rs", "-v")
    result.assert_outcomes(passed=3, skipped=4)
    result.stdout.fnmatch_lines_random([
        "*amp_fp16 applies only to cuda, not cpu*",
        "*loader optimization: measured in loading/end-to-end rows*",
        "*out of memory on cpu at batch size 8: CUDA out of memory. Tried to allocate 2.00 GiB*",
        "*no bf16 here*",
    ])
    order = [line for line in result.outlines if "::test_bench[" in line and ("PASSED" in line or "SKIPPED" in line)]
    assert "baseline" in order[0] and "host_allocator" in order[-1]
    rows = _rows(suite.path / "out.json")
    assert set(rows) == {"baseline", "channels_last", "host_allocator"}  # the OOM row left no (broken) stats behind
    base, fast = rows["baseline"]["extra_info"], rows["channels_last"]["extra_info"]
    assert base["speedup_vs_baseline"] == 1.0
    assert 1.3 < fast["speedup_vs_baseline"] < 3.5  # 20 ms vs 10 ms sleeps
    assert fast["samples_per_s"] == pytest.approx(8 / rows["channels_last"]["stats"]["median"])
    assert fast["profile"] == "smoke" and fast["phase"] == "train" and fast["dataset"] == "cifar10"
    assert rows["baseline"]["group"] == "train:cifar10:cpu"
    assert rows["baseline"]["stats"]["rounds"] == 3
    from hpml.bench.harness import EXTRA_KEYS

    assert set(EXTRA_KEYS) <= set(fast)


def test_a_default_row_is_not_measured_in_a_process_the_allocator_tuning_changed(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
):
    from hpml.train import allocator

    monkeypatch.setattr(allocator, "_tuned", True)
    result = suite.runpytest("-rs", "-v", "-k", "channels_last or host_allocator")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines_random([
        "*channels_last*SKIPPED*", "*host_allocator*PASSED*",
        "*host allocator was tuned by an earlier row in this process*run it in a fresh process*",
    ])
    result = suite.runpytest("-k", "channels_last", "--benchmark-disable")  # nothing measured: runs
    result.assert_outcomes(passed=1)


def test_speedup_is_null_without_a_baseline_in_the_run(suite: pytest.Pytester):
    result = suite.runpytest("--benchmark-json=out.json", "-k", "channels_last")
    result.assert_outcomes(passed=1)
    assert _rows(suite.path / "out.json")["channels_last"]["extra_info"]["speedup_vs_baseline"] is None


def test_unknown_profile_is_a_usage_error(suite: pytest.Pytester):
    result = suite.runpytest("--hpml-profile=huge")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown benchmark profile 'huge'; choose from smoke, cpu, standard, full*"])


def test_bad_planted_slowdown_is_a_usage_error(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HPML_PLANTED_SLOWDOWN", "lots")
    result = suite.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*HPML_PLANTED_SLOWDOWN='lots'*"])


def test_planted_slowdown_slows_every_measured_call(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    suite.runpytest("--benchmark-json=plain.json", "-k", "baseline").assert_outcomes(passed=1)
    monkeypatch.setenv("HPML_PLANTED_SLOWDOWN", "0.5")
    suite.runpytest("--benchmark-json=slow.json", "-k", "baseline").assert_outcomes(passed=1)
    plain = _rows(suite.path / "plain.json")["baseline"]
    slow = _rows(suite.path / "slow.json")["baseline"]
    assert slow["extra_info"]["planted_slowdown"] == 0.5
    assert slow["stats"]["median"] / plain["stats"]["median"] > 1.3  # 1.5 on a quiet machine


def test_summary_is_written_next_to_the_stored_runs(suite: pytest.Pytester):
    result = suite.runpytest("--benchmark-autosave", "--benchmark-storage=file://store")
    result.stdout.fnmatch_lines(["hpml: run summary written to *store*summaries*.json"])
    summaries = list((suite.path / "store" / "summaries").glob("*.json"))
    assert len(summaries) == 1
    summary = json.loads(summaries[0].read_text())
    assert summary["hpml_schema"] == 1 and summary["profile"] == "smoke"
    rows = {r["optimization"]: r for r in summary["rows"]}
    assert rows["baseline"]["speedup"] == pytest.approx(1.0)
    assert 1.3 < rows["channels_last"]["speedup"] < 3.5
    stored = list((suite.path / "store").glob("*/0001_*.json"))
    assert len(stored) == 1
    machine = json.loads(stored[0].read_text())["machine_info"]["hpml"]
    assert {"torch", "torchvision", "cuda", "cudnn", "gpu", "gpu_count", "cpu", "cpu_count", "torch_threads"} <= set(machine)
    assert machine["profile"] == "smoke"


def test_no_summary_when_benchmarks_are_disabled(suite: pytest.Pytester):
    result = suite.runpytest("--benchmark-disable", "--benchmark-storage=file://store")
    result.assert_outcomes(passed=3, skipped=4)
    assert not (suite.path / "store" / "summaries").exists()


def test_no_summary_when_nothing_was_measured(suite: pytest.Pytester):
    result = suite.runpytest("--benchmark-storage=file://store", "-k", "amp_fp16")
    result.assert_outcomes(skipped=1)
    assert not (suite.path / "store" / "summaries").exists()
