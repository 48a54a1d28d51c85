"""The benchmark plugin end to end, in inner pytest sessions over a tiny benchmark file.

The inner benchmarks time ``time.sleep`` instead of a model, so a session takes a
second, while going through the real plugin, harness and pytest-benchmark.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
# Imported here, before any inner session: pytester drops the modules an inner run imported,
# and torch._dynamo (imported by the FLOP counter) registers a torch library that cannot be
# registered twice in one process.  Run alone, this file would otherwise fail from its second session.
import torch._dynamo  # noqa: F401

pytest_plugins = ["pytester"]

CONFTEST = """
from hpml.bench.plugin import (
    hpml_bench, hpml_profile, pytest_addoption, pytest_benchmark_update_machine_info,
    pytest_collection_modifyitems, pytest_configure, pytest_runtestloop, pytest_sessionfinish, pytest_terminal_summary,
)
"""

# A short row budget (s of measured calls per row): the sleeps are 10-20 ms, so a row
# still gets ~5-10 pairs, and the whole file stays well under a minute.
INI = """
[pytest]
addopts = --hpml-row-budget=0.15
markers =
    gpu: needs CUDA
    slow: slow
"""

# Baselines listed last on purpose: the plugin must run each group's baseline first.
# (Process-wide rows go to fresh processes with a real builder: tests/bench/test_fresh.py.)
BENCHMARKS = """
import time

import pytest
import torch

from hpml.bench.sides import Measured, NotApplicable
from hpml.bench.matrix import Case

SECONDS = {"baseline": 0.02, "channels_last": 0.01, "grad_accum": 0.02}
CASES = [
    Case("train", "cifar10", "cpu", "grad_accum", "sgd"),
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
    seconds = SECONDS[case.optimization]
    with open("built.txt", "a") as f:  # which sides were built (the A/A control builds its own)
        f.write(case.optimization + "\\n")
    samples = 16 if case.optimization == "grad_accum" else 8  # twice the samples in the same time: 2x
    return Measured(target=lambda: time.sleep(seconds), samples_per_round=samples, batch_size=8)


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
        "*amp_bf16 = amp on cpu (same settings): measured once, as amp*",
    ])
    order = [line for line in result.outlines if "::test_bench[" in line and ("PASSED" in line or "SKIPPED" in line)]
    assert "baseline" in order[0]
    rows = _rows(suite.path / "out.json")
    assert set(rows) == {"baseline", "channels_last", "grad_accum"}  # the OOM row left no (broken) stats behind
    base, fast = rows["baseline"]["extra_info"], rows["channels_last"]["extra_info"]
    assert base["speedup_vs_baseline"] == 1.0 and base["speedup_interval"] is None
    assert base["aa_control"]["pairs"] >= 4  # the baseline paired with a second baseline: the noise floor
    # two separately built baseline sides (one object paired with itself cannot tell A B from B A)
    assert (suite.path / "built.txt").read_text().split().count("baseline") == 2
    assert base["aa_control"]["sides"] == "two separately built baselines"
    assert 1.3 < fast["speedup_vs_baseline"] < 3.5  # 20 ms vs 10 ms sleeps
    # the row's native pytest-benchmark stats are its own calls, one round per pair
    assert rows["channels_last"]["stats"]["rounds"] == fast["speedup_pairs"] >= 3
    assert fast["samples_per_s"] == pytest.approx(8 / rows["channels_last"]["stats"]["median"])
    assert fast["profile"] == "smoke" and fast["phase"] == "train" and fast["dataset"] == "cifar10"
    assert rows["baseline"]["group"] == "train:cifar10:cpu"
    from hpml.bench.session import PAIRED_KEYS
    from hpml.measure.tracker_registry import tracked_metrics

    assert set(PAIRED_KEYS) <= set(fast) and {"phase", "dataset", "model", "device", "optimizer", "optimization"} <= set(fast)
    assert set(tracked_metrics()) <= set(fast)  # every registered tracker's metrics, registered once
    assert fast["peak_rss_bytes"] > 0 and fast["samples_per_round"] == 8
    regions = fast["resource_regions"]  # what each resource figure was measured over
    assert regions["cpu_seconds"].startswith("this row's timed calls") and "warm-up" in regions["peak_rss_bytes"]
    lo, hi = fast["speedup_interval"]
    assert lo <= fast["speedup_vs_baseline"] <= hi
    assert fast["speedup_halfwidth"] == pytest.approx((hi - lo) / 2 / fast["speedup_vs_baseline"])
    assert fast["speedup_target_halfwidth"] == 0.05 and isinstance(fast["busy"], bool)
    assert isinstance(fast["speedup_significant"], bool) and fast["aliases"] == []
    assert len(fast["baseline_interleaved_s"]) == fast["speedup_pairs"]
    accum = rows["grad_accum"]["extra_info"]  # same call time, twice the samples: a throughput ratio of 2
    assert 1.4 < accum["speedup_vs_baseline"] < 2.8
    # one workload: the phase's cells on one line
    result.stdout.fnmatch_lines(["*hpml speedups*", "train (c10): grad_accum *x*, channels_last *x*", "noise floor: train *"])
    assert fast["noise_floor_control"] == "train: two separately built baselines"


def test_non_positive_target_or_budget_is_a_usage_error(suite: pytest.Pytester):
    from hpml.bench.plugin import precision_from_options
    from hpml.bench.profiles import get_profile
    from hpml.errors import HpmlError

    smoke = get_profile("smoke")
    for target, budget, flag in [(0, None, "--hpml-target-halfwidth"), (None, -1, "--hpml-row-budget"),
                                 (float("nan"), None, "--hpml-target-halfwidth")]:
        with pytest.raises(HpmlError, match=f"^{flag}: .*must be a number > 0"):
            precision_from_options(smoke, target, budget)
    # the wiring: one run, as a user would type it (a fresh process: pytest.exit ends the run)
    result = suite.runpytest_subprocess("--hpml-row-budget=-1")
    assert result.ret == 2
    result.stderr.fnmatch_lines(["*--hpml-row-budget*must be a number > 0*"])


def test_long_tables_are_one_option_away(suite: pytest.Pytester):
    quiet = suite.runpytest("-k", "baseline or channels_last")
    assert not any("Name (time in" in line for line in quiet.outlines)
    quiet.stdout.fnmatch_lines(["*hpml speedups*"])
    loud = suite.runpytest("-k", "baseline or channels_last", "--hpml-tables")
    assert any("Name (time in" in line for line in loud.outlines)


def test_a_row_is_paired_even_when_its_baseline_row_is_deselected(suite: pytest.Pytester):
    result = suite.runpytest("--benchmark-json=out.json", "-k", "channels_last")
    result.assert_outcomes(passed=1)
    assert 1.3 < _rows(suite.path / "out.json")["channels_last"]["extra_info"]["speedup_vs_baseline"] < 3.5


CONTROLS = BENCHMARKS.replace("""CASES = [""", """CASES = [
    Case("train", "cifar10", "cpu", "baseline", "adam"),
    Case("train", "cifar10", "cpu", "channels_last", "adam"),
    Case("inference", "cifar10", "cpu", "baseline"),""")


def test_one_a_a_control_per_phase_and_model_the_other_baselines_timed_alone(suite: pytest.Pytester):
    """The first baseline row of a phase and model holds the A/A control; the next group's
    baseline (adam: same phase and model) is timed alone, the profile's rounds, and names
    it; its group's rows are still paired with it; another phase gets its own control."""
    suite.makepyfile(test_bench=CONTROLS)
    result = suite.runpytest("--benchmark-json=out.json", "-k", "baseline or channels_last")
    result.assert_outcomes(passed=5)
    rows = {b["name"]: b for b in json.loads((suite.path / "out.json").read_text())["benchmarks"]}
    sgd, adam = rows["test_bench[cifar10-cpu-baseline-sgd]"], rows["test_bench[cifar10-cpu-baseline-adam]"]
    held = [b for b in (sgd, adam) if "aa_control" in b["extra_info"]]
    assert len(held) == 1  # one control for the two train groups of one model
    alone = adam if held[0] is sgd else sgd
    assert alone["extra_info"]["aa_control_in"] == held[0]["name"][len("test_bench["):-1]
    assert alone["stats"]["rounds"] == alone["extra_info"]["rounds"] == 3  # smoke's rounds, not pairs
    assert alone["extra_info"]["speedup_vs_baseline"] == 1.0 and alone["extra_info"]["samples_per_s"] > 0
    assert held[0]["extra_info"]["aa_control"]["pairs"] >= 6
    assert rows["test_bench[cifar10-cpu-baseline]"]["extra_info"]["aa_control"]["pairs"] >= 6  # inference: its own
    fast = rows["test_bench[cifar10-cpu-channels_last-adam]"]["extra_info"]
    assert 1.3 < fast["speedup_vs_baseline"] < 3.5 and fast["speedup_pairs"] >= 6


def test_a_row_whose_baseline_cannot_run_is_skipped_with_that_reason(suite: pytest.Pytester):
    suite.makepyfile(test_nobase=BENCHMARKS.replace(
        'SECONDS = {', 'SECONDS = {"nothing": 0, ').replace(
        '    seconds = SECONDS[case.optimization]',
        '    if case.is_baseline:\n        raise NotApplicable("no baseline data")\n    seconds = SECONDS[case.optimization]'))
    result = suite.runpytest("test_nobase.py", "-rs", "-k", "channels_last")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*its baseline cannot run here: no baseline data*"])


def test_unknown_profile_is_a_usage_error(suite: pytest.Pytester):
    result = suite.runpytest("--hpml-profile=huge")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown benchmark profile 'huge'; choose from smoke, cpu, standard, full*"])


def test_bad_planted_slowdown_is_a_usage_error(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HPML_PLANTED_SLOWDOWN", "lots")
    result = suite.runpytest_subprocess()  # pytest.exit while configuring: in-process pytester cannot report it
    assert result.ret == 2  # hpml's exit for a bad value (hpml.environment, checked before any row)
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
    fast = rows["channels_last"]
    stored_rows = _rows(next((suite.path / "store").glob("*/0001_*.json")))
    assert fast["speedup"] == pytest.approx(stored_rows["channels_last"]["extra_info"]["speedup_vs_baseline"])  # paired
    assert fast["pairs"] >= 3 and len(fast["speedup_interval"]) == 2 and isinstance(fast["significant"], bool)
    assert fast["busy"] in (True, False) and "busy_reason" in fast
    assert summary["noise_floor"]["train"]["pairs"] >= 3 and summary["busy_rows"] >= 0
    stored = list((suite.path / "store").glob("*/0001_*.json"))
    assert len(stored) == 1
    machine = json.loads(stored[0].read_text())["machine_info"]["hpml"]
    assert {"torch", "torchvision", "cuda", "cudnn", "gpu", "gpu_count", "cpu", "cpu_count", "torch_threads"} <= set(machine)
    assert machine["profile"] == "smoke"
    idle = machine["cpu_idle"]  # what the idle CPUs did while the rows were measured (hpml.bench.idle)
    assert idle["policy"] == "awake" and isinstance(idle["held"], bool) and idle["detail"]
    assert summary["machine"]["cpu_idle"] == idle
    result.stdout.fnmatch_lines(["idle CPUs: *"])


def test_idle_policy_is_recorded_and_an_unknown_one_is_a_usage_error(suite: pytest.Pytester):
    result = suite.runpytest("--hpml-idle=os", "--benchmark-json=out.json")
    assert json.loads((suite.path / "out.json").read_text())["machine_info"]["hpml"]["cpu_idle"]["held"] is False
    result.stdout.fnmatch_lines(["idle CPUs: left to the OS (--hpml-idle os)*"])
    result = suite.runpytest_subprocess("--hpml-idle=sleepy")
    assert result.ret == 2
    result.stderr.fnmatch_lines(["*hpml: --hpml-idle: unknown idle policy 'sleepy': pick one of awake, os"])


def test_no_summary_when_benchmarks_are_disabled(suite: pytest.Pytester):
    result = suite.runpytest("--benchmark-disable", "--benchmark-storage=file://store")
    result.assert_outcomes(passed=3, skipped=4)
    assert not (suite.path / "store" / "summaries").exists()
    assert not any("hpml speedups" in line for line in result.outlines)
    assert not any("not used at all" in line for line in result.outlines)  # the warm-up ran: no fixture warning


def test_a_gate_session_times_each_row_alone_exactly_the_fixed_calls(suite: pytest.Pytester, monkeypatch):
    """``hpml gate --base`` (HPML_BENCH_PAIRS=4): a row's pairs are the other revision's calls, so it
    is timed alone, 4 calls, with no baseline calls in between (no same-run interval)."""
    monkeypatch.setenv("HPML_BENCH_PAIRS", "4")
    result = suite.runpytest("--benchmark-json=out.json", "-k", "baseline or channels_last")
    result.assert_outcomes(passed=2)
    rows = _rows(suite.path / "out.json")
    for name in ("baseline", "channels_last"):
        assert rows[name]["stats"]["rounds"] == 4 and len(rows[name]["stats"]["data"]) == 4
        info = rows[name]["extra_info"]
        assert info["speedup_interval"] is None and "baseline_interleaved_s" not in info and "aa_control" not in info
        assert info["rounds"] == 4
    assert rows["channels_last"]["extra_info"]["speedup_vs_baseline"] > 1.3  # 10 vs 20 ms, sequential: unpaired


def test_no_summary_when_nothing_was_measured(suite: pytest.Pytester):
    result = suite.runpytest("--benchmark-storage=file://store", "-k", "amp_fp16")
    result.assert_outcomes(skipped=1)
    assert not (suite.path / "store" / "summaries").exists()


TWINS = """
import time

import pytest

from hpml.bench.sides import Measured
from hpml.bench.matrix import Case

CASES = [Case("train", d, "cpu", o, "sgd") for d in ("cifar10", "digits") for o in ("baseline", "channels_last")]


def sleeper(case, session):
    return Measured(target=lambda: time.sleep(0.01), samples_per_round=8, batch_size=8)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_twin(benchmark, hpml_bench, case):
    hpml_bench.run(benchmark, case, sleeper)
"""


def test_a_dataset_doing_the_same_work_is_measured_once_unless_its_twin_is_deselected(suite: pytest.Pytester):
    """CIFAR-10's training step at 32 px is the digits one: with both selected the cifar10 rows are
    skipped naming digits, whose row lists cifar10; with the digits rows deselected they run."""
    suite.makepyfile(test_twins=TWINS)
    result = suite.runpytest("test_twins.py", "--benchmark-json=both.json", "-rs")
    result.assert_outcomes(passed=2, skipped=2)
    result.stdout.fnmatch_lines(["*train on cifar10 = train on digits at this profile*measured once, as digits*"])
    assert _rows(suite.path / "both.json")["channels_last"]["extra_info"]["dataset_aliases"] == ["cifar10"]
    alone = suite.runpytest("test_twins.py", "-k", "cifar10", "--benchmark-json=alone.json")
    alone.assert_outcomes(passed=2, deselected=2)
    assert _rows(suite.path / "alone.json")["channels_last"]["extra_info"]["dataset_aliases"] == []


REAL = """
import pytest

from hpml.bench import workloads
from hpml.bench.matrix import Case

CASES = [Case("inference", "digits", "cpu", name) for name in ("host_allocator", "channels_last", "baseline")]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_real(benchmark, hpml_bench, case):
    hpml_bench.run(benchmark, case, workloads.inference_workload)
"""


def test_real_rows_hold_every_contract_key(suite: pytest.Pytester):
    """A tiny real workload (ResNet-18 inference on digits) through plugin, harness, fresh
    processes and pytest-benchmark: the JSON every reader relies on."""
    from hpml.bench.session import PAIRED_KEYS
    from hpml.train.malloc import host_allocator_tuned, unavailable_reason

    suite.makepyfile(test_real=REAL)
    result = suite.runpytest("test_real.py", "--benchmark-json=real.json", "-rs")
    fresh = unavailable_reason() is None  # host_allocator needs glibc
    result.assert_outcomes(passed=3 if fresh else 2, skipped=0 if fresh else 1)
    rows = _rows(suite.path / "real.json")
    cl = rows["channels_last"]["extra_info"]
    assert set(PAIRED_KEYS) <= set(cl) and cl["aliases"] == []
    assert cl["speedup_pairs"] >= 3 and cl["speedup_interval"][0] <= cl["speedup_vs_baseline"] <= cl["speedup_interval"][1]
    assert cl["busy_evidence"]["during"]["seconds"] > 0
    assert rows["baseline"]["extra_info"]["aa_control"]["pairs"] >= 3
    if fresh:
        row = rows["host_allocator"]["extra_info"]
        assert set(PAIRED_KEYS) <= set(row) and row["fresh_process"] is True and row["speedup_pairs"] >= 3
        assert not host_allocator_tuned()  # both sides ran in fresh processes, not in this one
        # held to the fresh-vs-fresh control: the baseline's process against a second fresh one
        assert row["fresh_control"]["sides"] == "two fresh baseline processes" and row["fresh_control"]["pairs"] >= 4
        assert row["noise_floor_control"] == "inference (fresh): two fresh baseline processes"


REFERENCE_BENCHMARKS = """
import time

import pytest

from hpml.bench.sides import Measured
from hpml.bench.matrix import Case

CASES = [Case("overhead", "cifar10", "cpu", "baseline", "sgd"), Case("overhead", "cifar10", "cpu", "channels_last", "sgd")]


def ours(case, session):
    return Measured(target=lambda: time.sleep(0.01), samples_per_round=8, batch_size=8)


def handwritten(case, session):
    return Measured(target=lambda: time.sleep(0.02), samples_per_round=8, batch_size=8)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bench(benchmark, hpml_bench, case):
    hpml_bench.run(benchmark, case, ours, reference=handwritten)
"""


def test_interleaved_reference_steps_give_every_row_a_speedup_over_the_reference(suite: pytest.Pytester):
    suite.makepyfile(test_bench=REFERENCE_BENCHMARKS)
    result = suite.runpytest("--hpml-profile=smoke", "--benchmark-json=out.json")
    result.assert_outcomes(passed=2)
    rows = _rows(suite.path / "out.json")
    for name in ("baseline", "channels_last"):  # the baseline row too: it is paired with the reference
        info = rows[name]["extra_info"]
        assert info["phase"] == "overhead" and info["reference"] == "handwritten"
        assert 1.3 < info["speedup_vs_baseline"] < 3.5  # 10 ms vs the reference's 20 ms
        lo, hi = info["speedup_interval"]
        assert lo <= info["speedup_vs_baseline"] <= hi and info["speedup_pairs"] >= 3
        assert "aa_control" not in info
    from hpml.results.summary import build_summary

    data = json.loads((suite.path / "out.json").read_text())
    summary = build_summary(data["benchmarks"], data["machine_info"], data["commit_info"])
    base = next(r for r in summary["rows"] if r["optimization"] == "baseline")
    assert base["reference"] == "handwritten" and base["speedup"] > 1.3  # gateable, not 1x by definition
    from hpml.gate.config import config_from_table
    from hpml.gate.checks import SLOWER, check_expectations

    config = config_from_table({"min_speedup": {"overhead:cifar10:cpu:baseline": 5.0}}, Path("pyproject.toml"))
    for row in summary["rows"]:
        row["busy"] = False  # this machine may be crowded; the gate would refuse a busy row (tested elsewhere)
    [check] = [c for c in check_expectations(summary, config) if c.case.endswith(":baseline")]
    assert check.verdict == SLOWER  # ~2x < 5x: the overhead phase is a real, gateable phase
