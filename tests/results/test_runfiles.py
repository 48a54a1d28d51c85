"""The one reader of run files: report, gate, ``hpml calibrate`` and compare_runs all refuse a
broken file with one line naming it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hpml.cli import main as hpml_main
from hpml.errors import HpmlError
from hpml.results.runfiles import hpml_rows, load_run


def _run_file(path: Path, **extra) -> Path:
    bench = {"name": "t", "fullname": "t", "stats": {"median": 0.1, "rounds": 5},
             "extra_info": {"phase": "train", "speedup_vs_baseline": 1.5, **extra}}
    path.write_text(json.dumps({"version": "5.1.0", "machine_info": {}, "benchmarks": [bench]}))
    return path


@pytest.mark.parametrize("content, message", [
    (None, "no such pytest-benchmark run file"),
    ("{not json", "not valid JSON"),
    (json.dumps({"rows": [], "hpml_schema": 1}), "not a pytest-benchmark run file"),
])
def test_unreadable_non_json_and_foreign_files_are_one_line(tmp_path: Path, content, message):
    path = tmp_path / "run.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(HpmlError, match=message) as err:
        load_run(path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("extra, message", [
    ({"speedup_vs_baseline": "fast"}, "speedup_vs_baseline 'fast' is not a positive number"),
    ({"speedup_vs_baseline": -1.0}, "speedup_vs_baseline -1.0 is not a positive number"),
    ({"speedup_interval": [0.0, 2.0]}, "speedup_interval .* is not two positive numbers"),
])
def test_a_speedup_that_is_not_a_positive_number_is_a_broken_file(tmp_path: Path, capsys, extra, message):
    path = _run_file(tmp_path / "run.json", **extra)
    with pytest.raises(HpmlError, match=message):
        load_run(path)
    assert hpml_main(["calibrate", str(path), str(path)]) == 2  # calibrate reads through the same reader
    assert capsys.readouterr().err.count("\n") == 1


def test_hpml_rows_are_extra_info_by_fullname(tmp_path: Path):
    assert hpml_rows(load_run(_run_file(tmp_path / "run.json")))["t"]["speedup_vs_baseline"] == 1.5
