"""The comparison of two runs the coordinator uses for the issue's targets."""

from __future__ import annotations

import json
from pathlib import Path

from hpml.bench.compare_runs import compare, main, percentile


def _run(path: Path, rows: dict[str, tuple]) -> Path:
    benchmarks = []
    for name, (speedup, significant, busy, aa) in rows.items():
        benchmarks.append({"name": name, "fullname": name, "extra_info": {
            "phase": "train", "speedup_vs_baseline": speedup, "speedup_significant": significant, "busy": busy,
            "aa_control": aa}})
    path.write_text(json.dumps({"benchmarks": benchmarks}))
    return path


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
    assert "A/A controls holding 1.00 in their own 95% interval: 1/2 = 50%" in out


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
    assert err.count("\n") == 1 and "not JSON" in err
    assert main([str(tmp_path / "missing.json"), str(bad)]) == 2
    assert main([str(bad)]) == 2
