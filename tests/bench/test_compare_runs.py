"""The comparison of two runs the coordinator uses for the issue's targets."""

from __future__ import annotations

import json
from pathlib import Path

from tools.compare_runs import compare, main, percentile


def _file(path: Path, benchmarks: list[dict]) -> Path:
    """A pytest-benchmark run file the one reader accepts, holding ``benchmarks``."""
    for bench in benchmarks:
        bench["stats"] = {"median": 0.1, "rounds": 5}
    path.write_text(json.dumps({"version": "5.1.0", "machine_info": {}, "benchmarks": benchmarks}))
    return path


def _run(path: Path, rows: dict[str, tuple]) -> Path:
    benchmarks = []
    for name, (speedup, significant, busy, aa) in rows.items():
        benchmarks.append({"name": name, "fullname": name, "extra_info": {
            "phase": "train", "speedup_vs_baseline": speedup, "speedup_significant": significant, "busy": busy,
            "aa_control": aa}})
    return _file(path, benchmarks)


def test_agreement_contradictions_and_a_a_coverage(tmp_path: Path, capsys):
    aa_ok, aa_off = {"interval": [0.98, 1.03]}, {"interval": [1.01, 1.04]}
    a = _run(tmp_path / "a.json", {"base": (1.0, False, False, aa_ok), "amp": (2.0, True, False, None),
                                    "cl": (1.10, True, True, None), "wk": (0.8, True, False, None)})
    b = _run(tmp_path / "b.json", {"base": (1.0, False, False, aa_off), "amp": (2.1, True, False, None),
                                    "cl": (1.05, False, False, None), "wk": (1.2, True, False, None)})
    assert main([str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "2 significant in both" in out  # amp and wk; cl is not significant in b, a baseline never is
    assert "significantly faster in one run and slower in the other: 1" in out and "wk: 0.800x vs 1.200x" in out
    assert "rows flagged busy in either run: 1" in out
    assert "among them: median 19.0%, 90th percentile 30.5%" in out  # amp 4.8 %, wk 33.3 %
    assert "among the 2 of them measured on a quiet machine in both runs: median 19.0%" in out
    assert "controls (A/A, one side paired with itself) holding 1.00 in their own 95% interval: 1/2 = 50%" in out


def test_compare_counts_only_rows_significant_in_both():
    a = {"x": {"speedup_vs_baseline": 2.0, "speedup_significant": True},
         "y": {"speedup_vs_baseline": 1.5, "speedup_significant": False}}
    b = {"x": {"speedup_vs_baseline": 2.2, "speedup_significant": True},
         "y": {"speedup_vs_baseline": 1.5, "speedup_significant": True}}
    c = compare(a, b)
    assert c["significant_in_both"] == 1 and abs(c["p90_difference"] - (1 - 2.0 / 2.2)) < 1e-9
    assert c["quiet_in_both"] == 1 and c["quiet_p90_difference"] == c["p90_difference"]
    a["x"]["busy"] = True  # measured while something else ran: out of the quiet figure, still in the overall one
    c = compare(a, b)
    assert c["quiet_in_both"] == 0 and c["quiet_p90_difference"] is None and c["significant_in_both"] == 1
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 90) == 4.6


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main([str(bad), str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not valid JSON" in err
    assert main([str(tmp_path / "missing.json"), str(bad)]) == 2
    assert main([str(bad)]) == 2


def test_calibration_says_whether_the_intervals_explain_the_differences():
    """Two rows whose estimates differ by less than their intervals allow, one by far more: 2/3
    within; the predicted 90th percentile follows the intervals' widths, not the estimates."""
    import math

    from tools.compare_runs import Z95, calibration

    def row(estimate, halfwidth):  # a log-symmetric 95 % interval of relative half-width ~halfwidth
        se = math.log1p(halfwidth) / Z95
        return {"speedup_vs_baseline": estimate, "speedup_significant": True,
                "speedup_interval": [estimate * math.exp(-Z95 * se), estimate * math.exp(Z95 * se)]}

    a = {"x": row(2.0, 0.05), "y": row(0.5, 0.05), "z": row(1.5, 0.02)}
    b = {"x": row(2.1, 0.05), "y": row(0.6, 0.02), "z": row(1.49, 0.02)}
    cal = calibration(a, b, ["x", "y", "z"])
    assert cal["rows"] == 3 and cal["within"] == 2  # y: 0.5 vs 0.6 is ~5 combined standard errors apart
    # noise alone: |a/b - 1| of the widest row (x: sd = sqrt(2) * se) dominates the 90th percentile
    se_x = math.log1p(0.05) / Z95
    assert math.expm1(1.0 * math.sqrt(2) * se_x) < cal["predicted_p90"] < math.expm1(2.0 * math.sqrt(2) * se_x)
    assert abs(cal["needed_halfwidth"] - 0.042) < 0.001  # +-4.2 % per row for a 5 % 90th percentile
    b["x"] = dict(b["x"], speedup_vs_baseline=20.0)  # the estimates do not move the prediction
    assert calibration(a, b, ["x", "y", "z"])["predicted_p90"] == cal["predicted_p90"]
    assert calibration(a, {"x": {"speedup_vs_baseline": 2.0}}, ["x"]) is None  # no interval: nothing to say


def test_agreement_is_broken_down_by_kind_of_row(tmp_path: Path, capsys):
    """Per kind (phase; loading rows by whether worker processes load): which kinds reproduce."""
    def run(path: Path, rows: dict[str, tuple]) -> Path:
        return _file(path, [
            {"name": n, "fullname": n, "extra_info": {"phase": phase, "num_workers": workers, "speedup_vs_baseline": x,
                                                      "speedup_significant": True, "busy": False}}
            for n, (phase, workers, x) in rows.items()])

    a = run(tmp_path / "a.json", {"t1": ("train", 0, 2.0), "t2": ("train", 0, 1.5), "w": ("load", 2, 0.30),
                                  "d": ("load", 0, 2.5)})
    b = run(tmp_path / "b.json", {"t1": ("train", 0, 2.02), "t2": ("train", 0, 1.5), "w": ("load", 2, 0.40),
                                  "d": ("load", 0, 2.4)})
    assert main([str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "train: 2 rows, median 0.5%, 90th percentile 0.9%" in out  # t1 |2.0/2.02 - 1| = 1.0 %, t2 0
    assert "load, worker processes: 1 rows, median 25.0%, 90th percentile 25.0%" in out
    assert "load, in process: 1 rows, median 4.2%" in out
