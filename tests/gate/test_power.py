"""``python tools/gate_power.py``: the counting, the CLI's bad input, and CI's selection.

The study itself measures for minutes: on CI's selection it is ``slow``; a stand-in
project with two cheap rows runs the same plumbing (sessions, baton, paired test) here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hpml.gate.config import load_gate_config
from hpml.gate.checks import FASTER, OK, SLOWER
from tools.gate_power import case_env, main, markdown, tally, target_row

ROOT = Path(__file__).parents[2]
ROWS = ["train:digits:resnet50:cpu:sgd:baseline", "train:digits:resnet50:cpu:sgd:channels_last"]


def test_tally_counts_alarms_and_detections() -> None:
    trials = [dict(zip(("identical", "uniform", "one_optimization"), (dict(zip(ROWS, v)) for v in t))) for t in [
        ([OK, OK], [SLOWER, OK], [OK, SLOWER]),
        ([OK, FASTER], [OK, OK], [SLOWER, OK]),
        ([OK, OK], [SLOWER, SLOWER], [OK, SLOWER]),
    ]]
    target, knob = target_row(ROWS)
    assert (target, knob) == (ROWS[1], "channels_last")
    cases = tally(trials, target)
    assert cases["identical"]["count"] == 1  # a FASTER verdict is a false alarm too
    assert cases["uniform"]["count"] == 2  # the gate failed: any row SLOWER
    one = cases["one_optimization"]
    assert one["count"] == 2 and one["other_rows_flagged"] == 1  # only the slowed row counts as caught
    assert "channels_last" in one["what"]
    text = markdown({"command": "python tools/gate_power.py --trials 3", "trials_completed": 3,
                     "seconds_per_trial": 30.0, "machine": "cpu", "rows": ROWS, "repeats": 2, "pairs": 10,
                     "slowdown": 0.1, "unpaired_runs": 0, "cases": cases})
    assert "| false alarms on identical code | 1/3 |" in text and "2/3 (other rows flagged: 1)" in text


def test_each_case_plants_the_work_on_the_current_side_only() -> None:
    assert case_env("identical", 0.1) == {}
    assert case_env("uniform", 0.1) == {"current": {"HPML_PLANTED_COMPUTE": "0.1"}}
    assert case_env("one_optimization", 0.1, "channels_last") == {
        "current": {"HPML_PLANTED_COMPUTE": "0.1", "HPML_PLANTED_COMPUTE_ONLY": "channels_last"}}


def test_the_knobs_are_the_harness_ones() -> None:
    from hpml.bench.planted import PLANTED_COMPUTE_ENV, PLANTED_ONLY_ENV
    from tools import gate_power as power

    assert (power.PLANTED_ENV, power.PLANTED_ONLY_ENV) == (PLANTED_COMPUTE_ENV, PLANTED_ONLY_ENV)


@pytest.mark.parametrize("argv", [["--trials", "0"], ["--slowdown", "1.5"], ["--pairs", "0"], ["--repeats", "2"],
                                  ["--cases", "identical,typo"]])
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "error" in err


def test_ci_selection_collects_the_rows_the_study_measures(monkeypatch: pytest.MonkeyPatch) -> None:
    """CI's A/B stage and the power study share [tool.hpml.gate] bench_args; it must select
    the plain step and one optimization, or the study's third case has nothing to slow down."""
    config = load_gate_config(ROOT / "pyproject.toml")

    class Collected:
        ids: list[str] = []

        def pytest_collection_finish(self, session: pytest.Session) -> None:
            self.ids = [item.name for item in session.items]

    collected = Collected()
    # in this process (torch and hpml are imported already): a subprocess spent ~5 s importing them again
    monkeypatch.chdir(ROOT)  # bench_args are relative to the project's root, as CI runs them
    code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", *config.bench_args], plugins=[collected])
    assert code == 0
    assert collected.ids == ["test_train_step[digits-cpu-baseline-sgd]", "test_train_step[digits-cpu-channels_last-sgd]"]


STAND_IN = '''\
import os

import pytest


def work(units):
    total = 0
    for i in range(units):
        total += i * i
    return total


@pytest.mark.parametrize("row", ["a", "b"])
def test_row(benchmark, row):
    planted = float(os.environ.get("HPML_PLANTED_COMPUTE", "0"))
    only = os.environ.get("HPML_PLANTED_COMPUTE_ONLY")
    if only and only != f"test_row[{row}]":
        planted = 0.0
    benchmark.pedantic(work, args=(int(20_000 * (1 + planted)),), rounds=6, warmup_rounds=1, iterations=1)
'''


@pytest.mark.slow  # ~28 s of gate sessions; the study's counting and refusals are tested without sessions below
def test_study_runs_end_to_end_on_a_stand_in_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """The study's plumbing through the gate's own sessions (baton, pairing, test, tally, JSON) on a
    cheap stand-in project; no verdict is asserted (that would be a timing assertion)."""
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "test_rows.py").write_text(STAND_IN)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "pyproject.toml").write_text('[tool.hpml.gate]\nbench_args = "benchmarks"\nrepeats = 3\n')
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "p.json"
    assert main(["--trials", "1", "--cases", "identical,one_optimization", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result["cases"]) == {"identical", "one_optimization"}
    assert all(c["trials"] == 1 and 0 <= c["count"] <= 1 for c in result["cases"].values())
    assert result["rows"] == ["test_row[a]", "test_row[b]"] and result["unpaired_runs"] == 0
    assert "test_row[b] alone" in result["cases"]["one_optimization"]["what"]
    assert len(result["session_ratios"][0]["identical"]["test_row[a]"]) == 3  # one ratio per session pair
    assert result["command"] == "python tools/gate_power.py --trials 1 --cases identical,one_optimization"
    assert "false alarms on identical code" in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".p.json")] == []  # no temporary left


@pytest.mark.slow
def test_one_short_trial_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert main(["--trials", "1", "--repeats", "3", "--pairs", "4", "--json", str(tmp_path / "p.json")]) == 0
    result = json.loads((tmp_path / "p.json").read_text())
    assert set(result["cases"]) == {"identical", "uniform", "one_optimization"}
    assert all(c["trials"] == 1 for c in result["cases"].values()) and result["unpaired_runs"] == 0


def test_a_comparison_refused_on_a_busy_machine_is_listed_not_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The gate refuses a row measured while something else ran (exit 2 there); the study lists
    that comparison, leaves it out of the counts and goes on with the next trial."""
    from hpml.errors import HpmlError
    from tools import gate_power as power

    calls = []

    def fake_run_case(root, config, case, env, log=None):
        calls.append(case)
        if len(calls) == 2:  # trial 1's uniform comparison
            raise HpmlError("base run: row x was measured on a busy machine (load 2.5 on 2 cores)")
        return {ROWS[0]: OK, ROWS[1]: OK}, None, {ROWS[0]: [1.0, 1.0, 1.0]}

    monkeypatch.setattr(power, "run_case", fake_run_case)
    (tmp_path / "pyproject.toml").write_text('[tool.hpml.gate]\nbench_args = "benchmarks"\n')
    monkeypatch.chdir(tmp_path)
    assert main(["--trials", "2", "--cases", "identical,uniform", "--json", str(tmp_path / "p.json")]) == 0
    result = json.loads((tmp_path / "p.json").read_text())
    assert result["refused_busy"] == ["trial 1 uniform: base run: row x was measured on a busy machine "
                                      "(load 2.5 on 2 cores)"]
    assert result["cases"]["identical"]["trials"] == 2 and result["cases"]["uniform"]["trials"] == 1
    assert "1 refused on a busy machine (not counted)" in capsys.readouterr().out
