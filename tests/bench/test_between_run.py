"""Intervals that cover the next run: the between-run spread per kind of row, its calibration,
and coverage as compare_runs reports it."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from hpml.bench import screen
from tools.compare_runs import coverage, load_rows, main as compare_main
from hpml.cli import main as hpml_main
from hpml.results import between_run
from hpml.results.between_run import BETWEEN, OTHER, WITHIN, apply, derive, kind_of_row, load, store, widen

MACHINE = {"system": "Linux", "machine": "x86_64", "cpu": {"brand_raw": "Test CPU", "count": 2}}


def row(phase, speedup, halfwidth, workers=0, **extra):
    return {"phase": phase, "optimization": "workers", "num_workers": workers, "speedup_vs_baseline": speedup,
            "speedup_interval": [speedup * math.exp(-halfwidth), speedup * math.exp(halfwidth)],
            "speedup_significant": True, "busy": False, **extra}


def two_runs(seed=0, n=40, drift=0.08):
    """Loading rows with workers that move between runs by ~drift (log sd) beyond their +-2 %
    intervals, and train rows that do not."""
    rng = random.Random(seed)
    a, b = {}, {}
    for i in range(n):
        true = 0.3 * (1 + i / n)
        for run in (a, b):
            run[f"load{i}"] = row("load", true * math.exp(rng.gauss(0, drift)), 0.02, workers=2)
            run[f"train{i}"] = row("train", 1.5 * math.exp(rng.gauss(0, 0.005)), 0.02)
    return a, b


def test_kinds_split_loading_by_workers_and_fresh_processes_apart():
    assert kind_of_row({"phase": "load", "num_workers": 2}) == "load, worker processes"
    assert kind_of_row({"phase": "load", "num_workers": 0}) == "load, in process"
    assert kind_of_row({"phase": "train", "fresh_process": True}) == "train, fresh processes"
    assert kind_of_row({"phase": "train"}) == "train"


def test_a_calibrated_spread_makes_the_next_runs_intervals_cover_them():
    spreads = derive(list(two_runs(seed=0)))
    assert spreads[OTHER]["sd"] == 0.0  # the train rows' intervals already cover them
    assert 0.04 < spreads["load, worker processes"]["sd"] < 0.2
    a, b = two_runs(seed=1)  # the next two runs: a calibration is for later runs, not its own
    before = coverage(a, b)["by_kind"]["load, worker processes"]
    assert before["covered"] / before["rows"] < 0.6  # +-2 % intervals, 8 % drift
    for run in (a, b):
        apply(run.values(), {"kinds": spreads})
    after = coverage(a, b)
    load_rows = after["by_kind"]["load, worker processes"]
    assert load_rows["covered"] / load_rows["rows"] >= 0.9
    assert after["by_kind"]["train"]["covered"] == after["by_kind"]["train"]["rows"]
    assert after["interval_kinds"] == {BETWEEN: 4 * 40}


def test_widening_keeps_a_lopsided_interval_lopsided_and_the_within_one_is_kept():
    lo, hi = widen(1.53, (1.46, 2.34), 0.05)
    assert lo < 1.46 and hi > 2.34 and (hi / 1.53) > (1.53 / lo)
    info = {"phase": "end_to_end", "optimization": "optimized", "speedup_vs_baseline": 1.53,
            "speedup_interval": [1.46, 2.34]}
    apply([info], {"kinds": {OTHER: {"sd": 0.05, "rows": 6}}})
    assert info["speedup_interval_within"] == [1.46, 2.34] and info["interval_kind"] == BETWEEN
    assert info["speedup_interval"] == pytest.approx([lo, hi], abs=1e-4)


def test_without_a_calibration_a_row_says_it_carries_the_within_run_interval_and_why():
    a, b = {"phase": "train", "speedup_vs_baseline": 1.2, "speedup_interval": [1.1, 1.3]}, \
        {"phase": "load", "speedup_vs_baseline": 1.2, "speedup_interval": [1.1, 1.3]}
    apply([a], None)
    assert a["interval_kind"] == WITHIN and "hpml calibrate" in a["interval_note"]
    apply([b], {"kinds": {OTHER: {"sd": 0.01, "rows": 5}}})
    assert b["interval_kind"] == WITHIN and "no 'load, in process' rows" in b["interval_note"]
    assert b["speedup_interval"] == [1.1, 1.3]
    line = between_run.describe([a])
    assert line == "intervals: within-run only, need not cover the next run (this machine has no between-run calibration: run hpml calibrate)"


def test_the_calibration_is_kept_per_machine(tmp_path: Path):
    path = tmp_path / "between_run.json"
    store(MACHINE, {"train": {"sd": 0.01, "rows": 5}}, ["a.json"], path)
    assert load(MACHINE, path)["kinds"] == {"train": {"sd": 0.01, "rows": 5}}
    assert load(dict(MACHINE, cpu={"brand_raw": "Other CPU", "count": 2}), path) is None
    path.write_text("[1, 2]")
    with pytest.raises(Exception, match="not a between-run calibration"):
        load(MACHINE, path)


def _write(path: Path, rows: dict, commit="abc", machine=MACHINE) -> Path:
    benchmarks = [{"name": n, "fullname": n, "stats": {"median": 0.1, "rounds": 5}, "extra_info": r}
                  for n, r in rows.items()]
    path.write_text(json.dumps({"version": "5.1.0", "machine_info": machine, "commit_info": {"id": commit},
                                "benchmarks": benchmarks}))
    return path


def test_hpml_calibrate_stores_what_the_runs_show_and_refuses_mixed_machines(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HPML_CACHE_DIR", str(tmp_path / "cache"))
    a, b = two_runs()
    pa, pb = _write(tmp_path / "a.json", a), _write(tmp_path / "b.json", b)
    assert hpml_main(["calibrate", str(pa), str(pb)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith("rule: per group, the 90% upper confidence bound on the 95% quantile")
    assert [line.split()[:3] for line in out[2:5]] == [["every", "kind", "but"], ["train", "40"], ["load,", "worker", "processes"]]
    assert out[4].endswith("(40 rows)")  # per group and per kind: its sd and rows
    assert load(MACHINE)["kinds"]["load, worker processes"]["sd"] > 0
    other = _write(tmp_path / "c.json", b, machine=dict(MACHINE, cpu={"brand_raw": "Other", "count": 2}))
    assert hpml_main(["calibrate", str(pa), str(other)]) == 2
    assert "2 machines" in capsys.readouterr().err
    assert hpml_main(["calibrate", str(pa), str(_write(tmp_path / "d.json", b, commit="def"))]) == 2


def test_compare_runs_reports_coverage_overall_and_per_kind(tmp_path: Path, capsys):
    a = {"x": row("train", 2.0, 0.05), "y": row("load", 0.5, 0.02, workers=2), "z": row("train", 1.5, 0.02)}
    b = {"x": row("train", 2.1, 0.05), "y": row("load", 0.6, 0.02, workers=2), "z": row("train", 1.5, 0.02, busy=True)}
    c = coverage(a, b)  # x: |log 2.0/2.1| = 0.049 <= hypot(0.05, 0.05); y: 0.18 > 0.028; z busy: out
    assert (c["covered"], c["rows"]) == (1, 2)
    assert c["by_kind"] == {"load, worker processes": {"rows": 1, "covered": 0}, "train": {"rows": 1, "covered": 1}}
    assert compare_main([str(_write(tmp_path / "a.json", a)), str(_write(tmp_path / "b.json", b))]) == 0
    out = capsys.readouterr().out
    assert "coverage: 1/2 = 50% of the rows quiet in both runs" in out and "load, worker processes: 0/1 covered" in out


def test_compare_runs_recalibrate_widens_the_within_run_intervals_by_todays_calibration(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HPML_CACHE_DIR", str(tmp_path / "cache"))
    a, b = two_runs()
    for run in (a, b):  # stored by a run that had an older, narrower calibration
        apply(run.values(), {"kinds": {"load, worker processes": {"sd": 0.03, "rows": 30}}})
    paths = [str(_write(tmp_path / f"{n}.json", run)) for n, run in (("a", a), ("b", b))]
    assert compare_main(["--recalibrate"] + paths) == 2
    assert "no between-run calibration" in capsys.readouterr().err
    assert compare_main(paths) == 0
    before = capsys.readouterr().out
    store(MACHINE, {"load, worker processes": {"sd": 0.2, "rows": 30}}, ["x.json"])
    assert compare_main(["--recalibrate"] + paths) == 0
    after = capsys.readouterr().out
    assert "load, worker processes: 40/40 covered" in after and "load, worker processes: 40/40" not in before
    again = load_rows(Path(paths[0]), recalibrate=True)["load0"]  # widened from the within-run interval, not twice
    assert again["speedup_interval"] == pytest.approx(widen(a["load0"]["speedup_vs_baseline"],
                                                            a["load0"]["speedup_interval_within"], 0.2), abs=1e-5)


def test_the_screen_says_which_interval_the_rows_carry():
    rows = [row("train", 1.5, 0.02), row("load", 0.3, 0.02, workers=2)]
    apply(rows, {"kinds": {"load, worker processes": {"sd": 0.05, "rows": 30}}})
    text = "\n".join(screen.render(rows, screen.finalize(rows), 0))
    assert ("intervals: within + between-run (hpml calibrate: 90% upper bound on each group's 95% spread); "
            "within-run for train (not calibrated)") in text


def test_the_report_says_which_interval_a_row_carries():
    from hpml.report.speedups import Speedup

    assert Speedup(1.5, (1.4, 1.6), True, interval_kind=WITHIN).text == "1.50x [1.40, 1.60] within-run"
    assert Speedup(1.5, (1.4, 1.6), True).text == "1.50x [1.40, 1.60]"  # older runs recorded no kind
