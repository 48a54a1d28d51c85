"""``python -m hpml.gate.power``: the counting, the CLI's bad input, and CI's selection.

The study itself measures for minutes; the end-to-end run is ``slow``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hpml.gate.config import load_gate_config
from hpml.gate.checks import FASTER, OK, SLOWER
from hpml.gate.power import Row, collect_ids, main, markdown, tally
from hpml.results.schema import CaseKey

ROOT = Path(__file__).parents[2]
ROWS = [Row(CaseKey("train", "digits", "resnet50", "cpu", "sgd", opt), lambda f: (lambda: None))
        for opt in ("baseline", "channels_last")]


def test_tally_counts_alarms_and_detections() -> None:
    trials = [
        {"identical": [OK, OK], "uniform": [SLOWER, OK], "one_optimization": [OK, SLOWER]},
        {"identical": [OK, FASTER], "uniform": [OK, OK], "one_optimization": [SLOWER, OK]},
        {"identical": [OK, OK], "uniform": [SLOWER, SLOWER], "one_optimization": [OK, SLOWER]},
    ]
    cases = tally(trials, ROWS)
    assert cases["identical"]["count"] == 1  # a FASTER verdict is a false alarm too
    assert cases["uniform"]["count"] == 2  # the gate failed: any row SLOWER
    one = cases["one_optimization"]
    assert one["count"] == 2 and one["other_rows_flagged"] == 1  # only the slowed row counts as caught
    assert "channels_last" in one["what"]
    text = markdown({"command": "python -m hpml.gate.power --trials 3", "trials": 3, "seconds_per_trial": 30.0,
                     "machine": "cpu", "rows": ["a", "b"], "rounds": 6, "slowdown": 0.1, "cases": cases})
    assert "| false alarms on identical code | 1/3 |" in text and "2/3 (other rows flagged: 1)" in text


@pytest.mark.parametrize("argv", [["--trials", "0"], ["--slowdown", "1.5"], ["--rounds", "2"]])
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "error" in err


def test_ci_selection_collects_the_rows_the_study_measures() -> None:
    """CI's A/B stage and the power study share [tool.hpml.gate] bench_args; it must select
    the plain step and one optimization, or the study's third case cannot run."""
    config = load_gate_config(ROOT / "pyproject.toml")
    ids = collect_ids(config.bench_args, ROOT)
    assert ids == ["test_train_step[digits-cpu-baseline-sgd]", "test_train_step[digits-cpu-channels_last-sgd]"]


def _spin(units: float) -> None:
    total = 0
    for i in range(int(units)):
        total += i * i


def test_study_runs_end_to_end_on_a_stand_in_selection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """The study's own plumbing (trials, tally, table, JSON) on two cheap stand-in rows; the
    real selection is built by the slow test below."""
    import hpml.gate.power as power

    def fake_rows(ids):
        def build(fraction: float):
            return lambda: _spin(20_000 * (1 + fraction))
        return [Row(CaseKey("train", "digits", "resnet50", "cpu", "sgd", opt), build)
                for opt in ("baseline", "channels_last")]

    monkeypatch.setattr(power, "collect_ids", lambda args, cwd: ["a", "b"])
    monkeypatch.setattr(power, "build_rows", fake_rows)
    assert main(["--trials", "2", "--rounds", "6", "--json", str(tmp_path / "p.json")]) == 0
    result = json.loads((tmp_path / "p.json").read_text())
    assert set(result["cases"]) == {"identical", "uniform", "one_optimization"}
    assert all(c["trials"] == 2 and 0 <= c["count"] <= 2 for c in result["cases"].values())
    assert result["rounds"] == 6 and "false alarms on identical code" in capsys.readouterr().out


@pytest.mark.slow
def test_one_short_trial_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert main(["--trials", "1", "--rounds", "4", "--json", str(tmp_path / "p.json")]) == 0
    result = json.loads((tmp_path / "p.json").read_text())
    assert set(result["cases"]) == {"identical", "uniform", "one_optimization"}
    assert all(c["trials"] == 1 for c in result["cases"].values())
