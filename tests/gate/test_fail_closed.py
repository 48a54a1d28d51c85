"""The gate fails closed: every broken input of issue 12 is one line and exit 2; a missing
gated row is exit 1 with the row named.  Exit 1 means a regression and nothing else.

The inputs are the recorded fixtures (tests/report/fixtures), damaged one way each, plus
hand-made rows following the shared contract (speedup_interval, busy, ...).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import RUNS, SUMMARIES, read, write

AMP = "train:cifar10:resnet50:cpu:sgd:amp_bf16"
GATED = '[tool.hpml.gate.min_speedup]\n"train:cifar10:cpu:amp_bf16" = 1.5\n'


def one_line_exit_2(result: tuple[int, str, str], *needles: str) -> str:
    code, _, err = result
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    return err


def amp_row(summary: dict) -> dict:
    return next(r for r in summary["rows"] if r["phase"] == "train" and r["dataset"] == "cifar10"
                and r["optimizer"] == "sgd" and r["optimization"] == "amp_bf16")


# --- missing rows: exit 1, the row named ---------------------------------------------------------


def test_removed_gated_row_fails_with_the_row_named(gate, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(GATED)
    summary = read(SUMMARIES[-1])
    assert gate("--summary", write(tmp_path / "full.json", summary))[0] == 0
    summary["rows"].remove(amp_row(summary))
    code, out, _ = gate("--summary", write(tmp_path / "cut.json", summary))
    assert code == 1
    assert "train:cifar10:cpu:amp_bf16 (missing)" in out.splitlines()[-1]
    code, out, _ = gate("--summary", tmp_path / "cut.json", "--allow-missing")
    assert code == 0 and "train:cifar10:cpu:amp_bf16" in out.splitlines()[-1]


def test_gated_row_without_its_baseline_fails(gate, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(GATED)
    summary = read(SUMMARIES[-1])
    amp_row(summary).update(speedup=None, speedup_spread=None, baseline_samples_per_s=None)
    code, out, _ = gate("--summary", write(tmp_path / "s.json", summary))
    assert code == 1 and f"{AMP} (missing)" in out.splitlines()[-1]


def test_ab_with_every_row_renamed_is_an_error(gate, tmp_path: Path) -> None:
    current = read(RUNS[-1])
    for bench in current["benchmarks"]:
        bench["name"] += "_renamed"
        if bench["extra_info"]:
            bench["extra_info"]["optimizer"] = str(bench["extra_info"].get("optimizer")).upper()
    one_line_exit_2(gate("--ab", RUNS[-1], write(tmp_path / "cur.json", current)), "nothing to compare")


# --- broken numbers: exit 2, naming the file and the row ----------------------------------------


def _write_raw(path: Path, obj: dict) -> Path:
    path.write_text(json.dumps(obj))  # NaN/Infinity tokens as Python writes them
    return path


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 0.0, -1.2, "1.7", True],
                         ids=["nan", "inf", "zero", "negative", "string", "bool"])
def test_bad_speedup_is_bad_input(gate, tmp_path: Path, value) -> None:
    summary = read(SUMMARIES[-1])
    amp_row(summary)["speedup"] = value
    path = _write_raw(tmp_path / "bad.json", summary)
    one_line_exit_2(gate("--summary", path), str(path), AMP, "speedup")


def test_bad_speedup_in_the_reference_is_bad_input(gate, tmp_path: Path) -> None:
    reference = read(SUMMARIES[-1])
    amp_row(reference)["speedup"] = 0.0
    ref = _write_raw(tmp_path / "ref.json", reference)
    one_line_exit_2(gate("--summary", SUMMARIES[-1], "--reference", ref), str(ref), AMP)


def test_nan_interval_is_bad_input(gate, tmp_path: Path) -> None:
    summary = read(SUMMARIES[-1])
    amp_row(summary)["speedup_interval"] = [float("nan"), 2.0]
    path = _write_raw(tmp_path / "bad.json", summary)
    one_line_exit_2(gate("--summary", path), AMP, "speedup_interval")


def test_all_zero_timings_are_bad_input(gate, tmp_path: Path) -> None:
    run = read(RUNS[-1])
    for bench in run["benchmarks"]:
        bench["stats"].update(median=0.0, data=[0.0] * len(bench["stats"]["data"]))
    path = write(tmp_path / "zero.json", run)
    one_line_exit_2(gate("--summary", path), str(path), "timing")
    one_line_exit_2(gate("--ab", path, path), str(path), "timing")  # >= 4 rounds: was a ZeroDivisionError


def test_run_with_null_extra_info_is_bad_input(gate, tmp_path: Path) -> None:
    run = read(RUNS[-1])
    for bench in run["benchmarks"]:
        bench["extra_info"] = None
    path = write(tmp_path / "nulls.json", run)
    one_line_exit_2(gate("--summary", path), str(path), "extra_info is null")
    one_line_exit_2(gate("--ab", RUNS[-1], path), str(path), "extra_info is null")


def test_foreign_run_has_nothing_to_compare(gate, tmp_path: Path) -> None:
    run = read(RUNS[-1])
    for bench in run["benchmarks"]:
        bench["extra_info"] = {}  # what pytest-benchmark writes for a benchmark hpml did not measure
    path = write(tmp_path / "foreign.json", run)
    one_line_exit_2(gate("--summary", path), str(path), "nothing to compare")


def test_summary_without_any_speedup_has_nothing_to_compare(gate, tmp_path: Path) -> None:
    summary = read(SUMMARIES[-1])
    summary["rows"] = [r for r in summary["rows"] if r["optimization"] == "baseline"]
    one_line_exit_2(gate("--summary", write(tmp_path / "s.json", summary)), "nothing to compare")


# --- contract fields (issue 11): busy rows, intervals -------------------------------------------


def test_busy_gated_row_is_refused_with_the_reason(gate, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(GATED)
    summary = read(SUMMARIES[-1])
    amp_row(summary).update(busy=True, busy_reason="load 3.9 on 2 cores")
    path = write(tmp_path / "busy.json", summary)
    one_line_exit_2(gate("--summary", path), AMP, "busy", "load 3.9 on 2 cores")
    # an ungated busy row gives no verdict, so it is only reported
    (tmp_path / "pyproject.toml").write_text("")
    assert gate("--summary", path)[0] == 0


def test_busy_row_in_an_ab_run_is_refused(gate, tmp_path: Path) -> None:
    current = read(RUNS[-1])
    for bench in current["benchmarks"]:
        if bench["extra_info"]:
            bench["extra_info"].update(busy=True, busy_reason="other processes used 1.7 cores")
    one_line_exit_2(gate("--ab", RUNS[-1], write(tmp_path / "c.json", current)), "1.7 cores")


def test_paired_interval_is_shown_and_old_rows_say_no_interval(gate, tmp_path: Path) -> None:
    summary = read(SUMMARIES[-1])
    amp_row(summary).update(speedup_interval=[2.3, 2.5], pairs=12, halfwidth=0.04, significant=True, busy=False,
                            busy_reason=None)
    code, out, _ = gate("--summary", write(tmp_path / "s.json", summary))
    assert code == 0 and "2.43x [2.30, 2.50] 95%" in out
    channels_last = next(line for line in out.splitlines() if line.startswith("train:cifar10:resnet50:cpu:sgd:"
                                                                              "channels_last "))
    assert "68%" in channels_last  # the older speedup_spread
    amp_row(summary).update(speedup=1.01, speedup_interval=[0.97, 1.05], significant=False)
    summary["busy_rows"] = 2
    code, out, _ = gate("--summary", write(tmp_path / "ns.json", summary))
    assert code == 0 and "1.01x [0.97, 1.05] 95% ~" in out and "2 row(s) were measured on a busy machine" in out
    summary = read(SUMMARIES[-1])
    amp_row(summary)["speedup_spread"] = None
    code, out, _ = gate("--summary", write(tmp_path / "old.json", summary))
    assert code == 0 and "(no interval)" in next(line for line in out.splitlines() if line.startswith(AMP + " "))


# --- expectations derived from a reference run's interval ----------------------------------------


def test_reference_expectation_uses_the_low_end_of_its_interval(gate, tmp_path: Path) -> None:
    reference = read(SUMMARIES[-1])
    amp_row(reference).update(speedup=2.43, speedup_interval=[2.40, 2.46])
    write(tmp_path / "ref.json", reference)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.hpml.gate]\nreference = "ref.json"\n[tool.hpml.gate.min_speedup]\n'
        '"train:cifar10:cpu:amp_bf16" = { min = "reference", tolerance = 0.05 }\n')
    current = read(SUMMARIES[-1])
    amp_row(current).update(speedup=2.35, speedup_interval=[2.30, 2.40])
    code, out, _ = gate("--summary", write(tmp_path / "ok.json", current))
    assert code == 0 and "reference low 2.40x" in out  # floor 2.40 * 0.95 = 2.28
    amp_row(current).update(speedup=2.10, speedup_interval=[2.05, 2.25])  # wholly below 2.28: lost bf16 speed
    code, out, _ = gate("--summary", write(tmp_path / "slow.json", current))
    assert code == 1 and AMP in out.splitlines()[-1]
    amp_row(current).update(speedup=2.10, speedup_interval=[1.9, 2.35])  # too imprecise to tell: passes
    assert gate("--summary", write(tmp_path / "wide.json", current))[0] == 0


def test_reference_expectation_without_its_row_in_the_reference_is_bad_input(gate, tmp_path: Path) -> None:
    reference = read(SUMMARIES[-1])
    reference["rows"].remove(amp_row(reference))
    write(tmp_path / "ref.json", reference)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.hpml.gate]\nreference = "ref.json"\n[tool.hpml.gate.min_speedup]\n'
        '"train:cifar10:cpu:amp_bf16" = "reference"\n')
    one_line_exit_2(gate("--summary", SUMMARIES[-1]), "ref.json", "no row")
    (tmp_path / "pyproject.toml").write_text('[tool.hpml.gate.min_speedup]\n"train:*:cpu:amp_bf16" = "reference"\n')
    one_line_exit_2(gate("--summary", SUMMARIES[-1]), "needs a reference summary")


def test_repository_expectation_is_derived_from_its_reference_run() -> None:
    """CI's same-run gate: [tool.hpml.gate] in the repository's pyproject names a reference
    summary that exists and holds the gated row with an interval."""
    from hpml.gate.config import load_gate_config
    from hpml.gate.checks import reference_floor
    from hpml.results.summary import load_summary

    root = Path(__file__).parents[2]
    config = load_gate_config(root / "pyproject.toml")
    assert config.references, "CI's expectation should come from a reference run"
    derived = [e for e in config.expectations if e.min_speedup is None]
    assert derived, "CI's expectation should come from the reference run"
    for cpu_class, path in config.references:  # one per CPU class (hpml.results.machine_facts.cpu_class)
        assert path.is_file(), (cpu_class, path)
        reference = load_summary(path)
        for exp in derived:
            assert reference_floor(exp, reference, path) > 1.0, (cpu_class, exp.pattern)


# --- failures of the gate itself ----------------------------------------------------------------


def test_unwritable_json_path_is_bad_input(gate, tmp_path: Path) -> None:
    err = one_line_exit_2(gate("--ab", RUNS[-1], RUNS[-1], "--json", tmp_path / "no" / "such" / "dir.json"),
                          "--json")
    assert "dir.json" in err
    (tmp_path / "folder.json").mkdir()
    one_line_exit_2(gate("--ab", RUNS[-1], RUNS[-1], "--json", tmp_path / "folder.json"), "--json")


@pytest.mark.parametrize("flag, value", [("--tolerance", "2"), ("--tolerance", "nan"), ("--alpha", "0"),
                                         ("--min-effect", "-0.1"), ("--repeats", "0"),
                                         ("--pairs", "0")])
def test_bad_threshold_flag_names_the_flag(gate, flag: str, value: str) -> None:
    err = one_line_exit_2(gate("--ab", RUNS[-1], RUNS[-1], flag, value), flag)
    assert "[tool.hpml.gate]" not in err


def test_a_crash_inside_the_gate_is_not_a_regression(gate, monkeypatch: pytest.MonkeyPatch) -> None:
    """Exit 1 means a regression and nothing else: an unexpected error is exit 2, one line."""
    import hpml.gate.command as command

    def broken(*args, **kwargs):
        return 1 / 0

    monkeypatch.setattr(command, "compare_ab", broken)
    one_line_exit_2(gate("--ab", RUNS[-1], RUNS[-1]), "ZeroDivisionError", "not a regression")
