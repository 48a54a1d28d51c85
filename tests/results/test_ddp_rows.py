"""DDP rows of one and two processes are different cases: each row's speedup is over the
baseline of its own world size, in the run summary, the gate and the report.

Before ``world_size`` was part of the case key, the one- and two-process baselines
collided (both ``ddp:cifar10:resnet50:cpu:sgd:baseline``), got their benchmark names as
variants, and every DDP row's same-run speedup was None.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from hpml.cli import main as cli_main
from hpml.report import add_report_arguments, run_report
from hpml.results.runfiles import load_run
from hpml.results.schema import CaseKey
from hpml.results.summary import build_summary, keyed_rows, load_summary, row_key

#: (optimization, world size, samples per measured call, median seconds per call), as
#: benchmarks/test_ddp.py records them: a call is one step on every rank.
DDP_ROWS = [
    ("baseline", 1, 32, 0.100),
    ("baseline", 2, 64, 0.125),
    ("grad_accum", 2, 256, 0.400),  # 4 micro-batches per rank and step: 4x the samples per call
    ("ddp_static_graph", 2, 64, 0.115),
]
#: What the rows above give: samples/s over the same world size's baseline samples/s.
EXPECTED = {("baseline", 1): 1.0, ("baseline", 2): 1.0,
            ("grad_accum", 2): (256 / 0.400) / (64 / 0.125), ("ddp_static_graph", 2): 0.125 / 0.115}
SPREAD = (0.98, 0.99, 1.0, 1.01, 1.02)  # each row's rounds around its median


def ddp_run_file(folder: Path) -> Path:
    """A pytest-benchmark run file holding the DDP rows of :data:`DDP_ROWS`."""
    benchmarks = []
    for optimization, world, samples, seconds in DDP_ROWS:
        name = f"test_ddp[cifar10-cpu-w{world}-{optimization}-sgd]"
        data = [seconds * f for f in SPREAD]
        benchmarks.append({
            "group": "ddp:cifar10:cpu", "name": name, "fullname": f"benchmarks/test_ddp.py::{name}",
            "params": None, "param": None,
            "extra_info": {"phase": "ddp", "dataset": "cifar10", "model": "resnet50", "device": "cpu",
                           "optimizer": "sgd", "optimization": optimization, "world_size": world,
                           "samples_per_round": samples, "samples_per_s": samples / seconds,
                           "speedup_interval": None, "speedup_pairs": 0, "speedup_significant": False,
                           "profile": "smoke"},
            "options": {}, "stats": {"min": min(data), "max": max(data), "mean": seconds, "median": seconds,
                                     "rounds": len(data), "iterations": 1, "data": data},
        })
    run = {"machine_info": {"node": "ddp-host", "system": "Linux", "machine": "x86_64",
                            "cpu": {"brand_raw": "Test CPU", "count": 2}},
           "commit_info": {"id": "d" * 40, "dirty": False}, "benchmarks": benchmarks,
           "datetime": "2026-11-28T12:00:00.000000+00:00", "version": "5.1.0"}
    path = folder / "ddp_run.json"
    path.write_text(json.dumps(run))
    return path


def by_case(summary: dict) -> dict[tuple[str, int], dict]:
    return {(r["optimization"], r["world_size"]): r for r in summary["rows"]}


def test_run_summary_has_both_baselines_and_every_ddp_speedup(tmp_path: Path) -> None:
    data = json.loads(ddp_run_file(tmp_path).read_text())
    summary = build_summary(data["benchmarks"], data["machine_info"], data["commit_info"])
    rows = by_case(summary)
    assert set(rows) == set(EXPECTED)  # four rows, none hidden behind another
    for case, speedup in EXPECTED.items():
        assert rows[case]["speedup"] == pytest.approx(speedup, rel=1e-3), case
    # the two-process rows are compared with the two-process baseline, not the one-process one
    assert rows[("grad_accum", 2)]["baseline_samples_per_s"] == pytest.approx(64 / 0.125)
    keys = list(keyed_rows(summary))
    assert not any(k.variant for k in keys)
    assert {k.label for k in keys} >= {"ddp:cifar10:resnet50:cpu:sgd:baseline",
                                       "ddp:cifar10:resnet50:cpu:sgd:baseline:w2"}


def test_run_file_keys_the_two_baselines_apart(tmp_path: Path) -> None:
    run = load_run(ddp_run_file(tmp_path))
    baselines = [k for k in run.benchmarks if k.optimization == "baseline"]
    assert sorted(k.world_size for k in baselines) == [1, 2] and not any(k.variant for k in baselines)


def test_rows_and_summaries_without_world_size_read_as_one_process(tmp_path: Path) -> None:
    """Old runs and summaries (no world_size anywhere) keep loading, as single-process rows."""
    old = next((Path(__file__).parents[1] / "report" / "fixtures" / "storage" / "summaries").glob("*.json"))
    assert all("world_size" not in r for r in json.loads(old.read_text())["rows"])
    keys = list(keyed_rows(load_summary(old)))
    assert keys and all(k.world_size == 1 for k in keys)
    assert row_key({"phase": "ddp", "dataset": "cifar10", "device": "cpu", "optimization": "baseline"}) == \
        CaseKey("ddp", "cifar10", "", "cpu", "", "baseline", world_size=1)


def test_a_damaged_world_size_is_one_line_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = ddp_run_file(tmp_path)
    data = json.loads(path.read_text())
    data["benchmarks"][1]["extra_info"]["world_size"] = "two"
    path.write_text(json.dumps(data))
    assert cli_main(["gate", "--summary", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "world_size is 'two'" in err and str(path) in err


@pytest.mark.parametrize("minimum, code", [(1.2, 0), (1.5, 1)])
def test_gate_checks_the_ddp_speedups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str], minimum: float, code: int) -> None:
    """grad_accum's two-process speedup (1.25x) passes a 1.2x floor and fails a 1.5x one."""
    run = ddp_run_file(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text(
        f'[tool.hpml.gate.min_speedup]\n"ddp:cifar10:cpu:grad_accum" = {minimum}\n')
    assert cli_main(["gate", "--summary", str(run)]) == code
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if "ddp:cifar10:resnet50:cpu:sgd:grad_accum:w2" in ln)
    assert "1.25" in line and ("ok" in line if code == 0 else "SLOWER" in line)


def test_report_shows_the_ddp_speedups(tmp_path: Path) -> None:
    run = ddp_run_file(tmp_path)
    parser = argparse.ArgumentParser()
    add_report_arguments(parser)
    (tmp_path / "pyproject.toml").touch()  # no gate config of the repository
    args = parser.parse_args([str(run), "--out", str(tmp_path / "out"), "--config", str(tmp_path / "pyproject.toml")])
    assert run_report(args) == 0
    md = (tmp_path / "out" / "index.md").read_text()
    assert "cifar10 · resnet50 · sgd · w2" in md  # the two-process column of the ddp heatmap
    assert "1.25x" in md and "1.09x" in md and "ddp:cifar10:resnet50:cpu:sgd:grad_accum:w2" in md
