"""The run summary: same-run speedups, atomic writes, validation."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from hpml.errors import HpmlError
from hpml.results.summary import build_summary, latest_summary, load_summary, summary_path, write_summary

from .conftest import RUNS, read, write


def summarize(run: Path, profile: str | None = "smoke") -> dict:
    data = read(run)
    return build_summary(data["benchmarks"], data["machine_info"], data["commit_info"], profile)


def rows_by(summary: dict) -> dict[tuple, dict]:
    return {(r["phase"], r["dataset"], r["optimization"]): r for r in summary["rows"]}


def test_schema_and_provenance() -> None:
    summary = summarize(RUNS[-1])
    assert summary["hpml_schema"] == 1 and summary["profile"] == "smoke" and summary["dirty"] is False
    assert summary["commit"].startswith("c4d5e6f7")
    assert summary["machine"]["cores"] == 2 and summary["machine"]["torch"]  # torch from the installed package
    row = rows_by(summary)[("train", "cifar10", "amp_bf16")]
    assert set(row) >= {"phase", "dataset", "model", "device", "optimizer", "optimization", "median_s",
                        "samples_per_round", "samples_per_s", "baseline_samples_per_s", "speedup",
                        "speedup_spread", "rounds"}
    lo, hi = row["speedup_spread"]
    assert lo <= row["speedup"] <= hi and row["rounds"] == 15
    assert row["speedup"] == pytest.approx(row["samples_per_s"] / row["baseline_samples_per_s"], rel=1e-3)


def test_speedup_counts_samples_not_calls() -> None:
    """grad_accum processes 4x the samples per call: its speedup is a ratio of samples/s."""
    rows = rows_by(summarize(RUNS[-1]))
    accum, base = rows[("train", "cifar10", "grad_accum")], rows[("train", "cifar10", "baseline")]
    assert accum["samples_per_round"] == 4 * base["samples_per_round"]
    assert accum["speedup"] == pytest.approx(4 * base["median_s"] / accum["median_s"], rel=1e-3)
    assert base["speedup"] == 1.0 and base["speedup_spread"] is None


def test_rows_without_baseline_or_extra_info() -> None:
    data = read(RUNS[-1])
    benches = [b for b in data["benchmarks"]
               if not ((b.get("extra_info") or {}).get("phase") == "inference"
                       and b["extra_info"]["optimization"] == "baseline")]
    summary = build_summary(benches, data["machine_info"], data["commit_info"])
    assert rows_by(summary)[("inference", "cifar10", "amp_bf16")]["speedup"] is None
    plain = next(r for r in summary["rows"] if r["name"] == "test_plain")
    assert plain["phase"] is None and plain["speedup"] is None
    assert summary["profile"] == "smoke"  # taken from the rows when not given


def test_no_raw_data_means_no_spread() -> None:
    data = read(RUNS[-1])
    for b in data["benchmarks"]:
        b["stats"].pop("data")
    summary = build_summary(data["benchmarks"], data["machine_info"], data["commit_info"], "smoke")
    row = rows_by(summary)[("train", "cifar10", "amp_bf16")]
    assert row["speedup"] > 1 and row["speedup_spread"] is None


def test_write_is_atomic_and_readable(tmp_path: Path) -> None:
    summary = summarize(RUNS[0])
    path = summary_path(tmp_path, summary)
    assert path.parent == tmp_path / "summaries" and path.name.endswith("_3f2a9c1d.json")
    write_summary(path, summary)
    assert os.listdir(path.parent) == [path.name]  # no temp file left behind
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert load_summary(path) == json.loads(path.read_text()) == summary


def test_latest_summary_by_time(storage: Path) -> None:
    assert latest_summary(storage).name.startswith("20261123T180500Z")
    with pytest.raises(HpmlError, match="no run summary in"):
        latest_summary(storage / "nowhere")


def test_pytest_benchmark_file_is_summarized_on_the_fly() -> None:
    summary = load_summary(RUNS[-1])
    assert rows_by(summary)[("train", "cifar10", "amp_bf16")]["speedup"] > 1.5


@pytest.mark.parametrize(
    "obj, message",
    [
        ({"hpml_schema": 2, "rows": [{"name": "x"}]}, "schema 2"),
        ({"hpml_schema": 1, "rows": []}, "holds no rows"),
        ({"hpml_schema": 1, "rows": [{"speedup": 1}]}, "neither 'name' nor"),
        ({"kind": "convergence"}, "not an hpml run summary"),
    ],
)
def test_bad_summary(tmp_path: Path, obj: dict, message: str) -> None:
    with pytest.raises(HpmlError, match=message):
        load_summary(write(tmp_path / "s.json", obj))


def test_empty_benchmark_list_is_an_error() -> None:
    with pytest.raises(HpmlError, match="no benchmarks"):
        build_summary([], {}, {}, "smoke")


def test_summary_rows_carry_their_interval_kind_and_what_they_stand_for() -> None:
    """A reader of the summary finds which interval a row carries, and every CIFAR row's number
    through the row measured for it (dataset_aliases, stands_for, aliases, aa_control_in)."""
    from hpml.results.runfiles import load_run
    from hpml.results.summary import summarize_rows

    run = load_run(RUNS[-1])
    bench = next(b for k, b in run.benchmarks.items() if k.is_hpml and k.optimization == "amp_bf16")
    bench.extra.update(interval_kind="within + between-run", interval_note="'train' between-run sd 0.010 (log)",
                       speedup_interval_within=[1.1, 1.2], dataset_aliases=["cifar10", "cifar100"],
                       stands_for=["amazon_full"], aliases=["amp"], aa_control_in="train[digits-baseline]",
                       noise_floor_control="train: train[digits-baseline]")
    [row] = summarize_rows({bench.key: bench})
    assert row["interval_kind"] == "within + between-run" and row["speedup_interval_within"] == [1.1, 1.2]
    assert row["dataset_aliases"] == ["cifar10", "cifar100"] and row["stands_for"] == ["amazon_full"]
    assert row["aliases"] == ["amp"] and row["aa_control_in"] == "train[digits-baseline]"
    assert row["noise_floor_control"] == "train: train[digits-baseline]"
