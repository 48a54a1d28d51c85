"""``hpml history`` and its step detection (:mod:`hpml.results.steps`).

The run-to-run spread simulated here is the one ``python tools/compare_runs.py``
measured between two default runs of one commit on the 2-core machine (90th percentile of
``|a/b - 1|`` of quiet rows): 5.9 % for training steps, 26.5 % for loaders with worker
processes, the noisiest kind.  sigma is the log-sd one run has around its level.
"""

from __future__ import annotations

import copy
import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest

from hpml.cli import main as cli_main
from hpml.results.steps import Z90_ABS, find_steps, noise_sigma

TEMPLATE = (Path(__file__).parent / "report" / "fixtures" / "storage" / "Linux-CPython-3.11-64bit" /
            "0001_3f2a9c1d0b7e4a5f8c6d2e1b0a9f8e7d6c5b4a30_20261120_091500.json")
SPREADS = {"train": 0.059, "load, worker processes": 0.265}
COMMITS = 20


def sigma_of(spread: float) -> float:
    return math.log1p(spread) / (Z90_ABS * math.sqrt(2))


@pytest.mark.parametrize("kind", sorted(SPREADS))
def test_pure_noise_calls_a_step_in_at_most_5_of_100_histories(kind: str) -> None:
    sigma = sigma_of(SPREADS[kind])
    called = 0
    for seed in range(100):
        y = np.random.default_rng(seed).normal(0.0, sigma, COMMITS)
        called += bool(find_steps(y, noise_sigma([y])))
    assert called <= 5, called


def test_planted_15_percent_step_is_found_at_its_commit() -> None:
    sigma = sigma_of(SPREADS["train"])
    covered = 0
    for seed in range(20):
        y = np.random.default_rng(100 + seed).normal(0.0, sigma, COMMITS)
        y[12:] += math.log(1.15)
        steps = find_steps(y, noise_sigma([y]))
        assert [s.index for s in steps] == [12], seed
        lo, hi = steps[0].interval
        covered += lo < 1.15 < hi
        assert (steps[0].before, steps[0].after) == (12, 8)
    assert covered >= 17  # a 95 % interval, chosen where the fit put the step


def test_a_step_below_the_noise_is_not_a_step() -> None:
    y = np.random.default_rng(7).normal(0.0, sigma_of(SPREADS["train"]), 200)
    assert find_steps(y, noise_sigma([y])) == []
    y[100:] += math.log(1.03)  # 3 %: visible with 100 commits a side, but under the 5.9 % run-to-run spread
    assert find_steps(y, noise_sigma([y])) == []
    y[100:] += math.log(1.10 / 1.03)
    assert [s.index for s in find_steps(y, noise_sigma([y]))] == [100]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                          capture_output=True, text=True).stdout.strip()


def write_history(storage: Path, commits: list[str], times: list[int], slow_from: int, seed: int = 0) -> None:
    """One run per commit, every row with train-step noise; ``train...channels_last`` 15 % slower from
    commit ``slow_from`` on.  ``times``: each run's hour (the file's datetime)."""
    template = json.loads(TEMPLATE.read_text())
    rng = np.random.default_rng(seed)
    sigma = sigma_of(SPREADS["train"])
    folder = storage / "Linux-CPython-3.11-64bit"
    folder.mkdir(parents=True)
    for i, (commit, hour) in enumerate(zip(commits, times)):
        run = copy.deepcopy(template)
        run["commit_info"]["id"] = commit
        run["datetime"] = f"2026-11-{1 + hour // 24:02d}T{hour % 24:02d}:00:00.000000+00:00"
        for bench in run["benchmarks"]:
            factor = math.exp(rng.normal(0.0, sigma))
            if "train-cifar10-cpu-sgd-channels_last" in bench["name"] and i >= slow_from:
                factor *= 1.15
            bench["stats"]["median"] *= factor
            bench["stats"]["data"] = [t * factor for t in bench["stats"]["data"]]
            if bench["extra_info"].get("samples_per_s"):
                bench["extra_info"]["samples_per_s"] /= factor
        (folder / f"{i + 1:04d}_{commit}.json").write_text(json.dumps(run))


def history(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli_main(["history", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_history_finds_the_planted_step_in_git_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    commits = []
    for i in range(COMMITS):
        git(repo, "commit", "-q", "--allow-empty", "-m", f"c{i}")
        commits.append(git(repo, "rev-parse", "HEAD"))
    # the first slow commit measured last: by time the step would sit at the commit after it
    times = list(range(COMMITS))
    times[12] = 99
    write_history(tmp_path / "storage", commits, times, slow_from=12)
    monkeypatch.chdir(repo)
    code, out, err = history(capsys, "--storage", str(tmp_path / "storage"))
    assert code == 0, err
    assert "ordered by commit, in git's order" in out
    steps = [line for line in out.splitlines() if line.startswith("  ")]
    assert len(steps) == 1, out
    assert "train:cifar10:resnet50:cpu:sgd:channels_last" in steps[0] and f"at {commits[12][:8]}" in steps[0]
    assert "12 run(s) before, 8 after" in steps[0]
    code, out, _ = history(capsys, "--storage", str(tmp_path / "storage"), "-k", "inference")
    assert code == 0 and "no step in 2 row(s)" in out


def test_history_outside_git_orders_by_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    commits = [f"{i:02x}" * 20 for i in range(1, COMMITS + 1)]
    write_history(tmp_path / "storage", commits, list(range(COMMITS)), slow_from=5, seed=3)
    monkeypatch.chdir(tmp_path)
    code, out, _ = history(capsys, "--storage", "storage", "-k", "channels_last and train")
    assert code == 0 and "ordered by time" in out
    assert f"at {commits[5][:8]}" in out and "no step" not in out


@pytest.mark.parametrize("argv, message", [
    (["--storage", "nowhere"], "no benchmark storage"),
    (["-k", "and and"], "-k 'and and'"),
    (["-k", "no_such_row"], "matches no row"),
])
def test_bad_input_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, argv, message) -> None:
    write_history(tmp_path / "storage", [f"{i:02x}" * 20 for i in range(1, 5)], [0, 1, 2, 3], slow_from=9)
    monkeypatch.chdir(tmp_path)
    if "--storage" not in argv:
        argv = ["--storage", "storage", *argv]
    code, out, err = history(capsys, *argv)
    assert code == 2 and message in err and err.count("\n") == 1 and out == ""


def test_one_comparable_run_is_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    write_history(tmp_path / "storage", ["a" * 40], [0], slow_from=9)
    code, _, err = history(capsys, "--storage", str(tmp_path / "storage"))
    assert code == 2 and "no comparable runs" in err


def test_the_reports_trend_marks_the_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hpml.gate.config import config_from_table
    from hpml.report import charts, trend
    from hpml.results.runfiles import discover

    commits = [f"{i:02x}" * 20 for i in range(1, COMMITS + 1)]
    write_history(tmp_path / "storage", commits, list(range(COMMITS)), slow_from=12)
    runs = discover([tmp_path / "storage"]).runs
    config = config_from_table({"min_speedup": {"train:*:cpu:*": 0.1}}, tmp_path / "pyproject.toml")
    drawn = []
    monkeypatch.setattr(charts, "gated_trend", lambda panels, *a, path, **k: drawn.extend(panels) or path)
    section = trend.trend_section(runs, runs[-1], config, tmp_path)
    lines = {label: points for _, _, by_label in drawn for label, points in by_label.items()}
    marked = {label: [p.run for p in points if p.step] for label, points in lines.items()}
    assert marked.pop("train:cifar10:resnet50:cpu:sgd:channels_last") == [12]  # 15 % slower: its speedup x0.87
    assert all(v == [] for v in marked.values()), marked
    table = section.blocks[-1]
    row = next(r for r in table.rows if r[0].endswith("channels_last"))
    assert row[-1].startswith(f"{commits[12][:8]}: x0.")  # the step's commit and its size (a drop)
