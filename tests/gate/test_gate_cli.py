"""``hpml gate`` end to end on recorded runs: exit codes, the table, missing rows, bad input.

Recorded fixture runs (tests/report/fixtures/make_fixtures.py): run 1 at speed 1.0,
run 2 with every workload ~15 % smaller (faster), run 3 at speed 0.95.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .conftest import RUNS, SUMMARIES, read, write

AMP = "train:cifar10:resnet50:cpu:sgd:amp_bf16"
HEADER = ("case", "check", "reference", "current", "ratio", "p", "verdict")


def table_rows(out: str) -> dict[str, list[str]]:
    """The printed table, by case (first check of each case)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["case", "check"])
    rows = {}
    for line in lines[start + 2:]:
        if not line.strip() or line.startswith(("ratio =", "hpml gate:")):
            break
        rows.setdefault(line.split()[0], line.split())
    return rows


# --- same-run speedups -------------------------------------------------------------------------


def test_latest_summary_without_expectations_passes(gate, storage: Path) -> None:
    code, out, _ = gate()
    assert code == 0
    assert "20261123T180500Z_c4d5e6f7.json" in out  # the newest summary was picked
    assert all(h in out.splitlines()[2] for h in HEADER)
    rows = table_rows(out)
    assert rows[AMP][1] == "speedup>=min" and "ok" in rows[AMP]
    assert "no expectation set" in out and "OK:" in out


def test_expectation_met_and_missed(gate, storage: Path, tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool.hpml.gate.min_speedup]\n"train:*:cpu:amp_bf16" = 1.5\n')
    code, out, _ = gate()
    assert code == 0 and "ok" in table_rows(out)[AMP]

    pyproject.write_text('[tool.hpml.gate]\ntolerance = 0.1\n[tool.hpml.gate.min_speedup]\n'
                         '"train:*:cpu:amp_bf16" = 3.0\n"train:cifar10:cpu:amp_bf16" = 2.0\n')
    code, out, _ = gate()
    assert code == 1
    rows = table_rows(out)
    assert "ok" in rows[AMP]  # 2.43x vs the more specific 2.0
    xlnet = "train:amazon_polarity:xlnet:cpu:adamw:amp_bf16"
    assert "SLOWER" in rows[xlnet]  # 1.61x < 3.0 * (1 - 0.1)
    assert out.splitlines()[-1].startswith("hpml gate: FAIL") and xlnet in out.splitlines()[-1]


def test_expectation_without_rows_fails_closed(gate, storage: Path, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.hpml.gate.min_speedup]\n"train:*:cuda:amp_bf16" = 1.5\n')
    code, out, _ = gate()
    assert code == 1 and "missing" in table_rows(out)["train:*:cuda:amp_bf16"]
    assert "train:*:cuda:amp_bf16 (missing)" in out.splitlines()[-1]
    code, out, _ = gate("--allow-missing")
    assert code == 0 and "allowed missing (--allow-missing): train:*:cuda:amp_bf16" in out.splitlines()[-1]


def test_reference_summary(gate, tmp_path: Path) -> None:
    current = SUMMARIES[-1]
    code, out, _ = gate("--summary", current, "--reference", current)
    assert code == 0 and "speedup~ref" in out
    reference = read(current)
    for row in reference["rows"]:
        if row["optimization"] == "amp_bf16" and row["phase"] == "train" and row["dataset"] == "cifar10":
            row["speedup"] *= 1.5  # the reference was much faster
        if row["optimization"] == "workers" and row["phase"] == "load":
            row["speedup"] *= 0.5  # ... and this one much slower
    ref = write(tmp_path / "ref.json", reference)
    code, out, _ = gate("--summary", current, "--reference", ref)
    assert code == 1
    lines = [line for line in out.splitlines() if "speedup~ref" in line]
    assert any(AMP in line and "SLOWER" in line for line in lines)
    assert any("load:cifar10-synthetic:-:cpu:-:workers" in line and "FASTER" in line for line in lines)
    assert gate("--summary", current, "--reference", ref, "--tolerance", "0.5")[0] == 0
    reference["profile"] = "full"
    code, _, err = gate("--summary", current, "--reference", write(tmp_path / "full.json", reference))
    assert code == 2 and "profile 'full'" in err


# --- A/B on raw timings ------------------------------------------------------------------------


def test_ab_identical_runs_pass(gate) -> None:
    code, out, _ = gate("--ab", RUNS[-1], RUNS[-1])
    assert code == 0
    assert all("ok" in row for row in table_rows(out).values())
    assert "A/B time" in out and "25th-percentile" in out


def test_ab_reports_slower_and_faster(gate) -> None:
    """Run 2's workloads are ~15 % smaller: base run 2 -> current run 1 is a slowdown."""
    code, out, _ = gate("--ab", RUNS[1], RUNS[0])
    assert code == 1
    rows = table_rows(out)
    assert "SLOWER" in rows[AMP]
    assert "ok" in rows["test_plain"]  # unchanged work
    assert "FAIL" in out.splitlines()[-1] and AMP in out.splitlines()[-1]
    code, out, _ = gate("--ab", RUNS[0], RUNS[1])
    assert code == 0 and "FASTER" in table_rows(out)[AMP]
    assert gate("--ab", RUNS[0], RUNS[1], "--fail-on-faster")[0] == 1


def test_ab_mannwhitney_option(gate) -> None:
    code, out, _ = gate("--ab", RUNS[1], RUNS[0], "--test", "mannwhitney")
    assert code == 1 and "Mann-Whitney" in out and table_rows(out)[AMP][3] == "median"


def test_ab_says_when_rounds_are_too_few(gate, tmp_path: Path) -> None:
    """4 rounds per side: no p-value can get below 2/C(8,4) = 0.029, above alpha/15."""
    runs = []
    for i, path in enumerate((RUNS[1], RUNS[0])):
        data = read(path)
        for b in data["benchmarks"]:
            b["stats"]["data"] = b["stats"]["data"][:4]
        runs.append(write(tmp_path / f"{i}.json", data))
    code, out, _ = gate("--ab", *runs)
    assert code == 0 and "too few rounds to ever be flagged" in out


def test_ab_missing_benchmark_fails_new_one_does_not(gate, tmp_path: Path) -> None:
    current = read(RUNS[-1])
    current["benchmarks"] = [b for b in current["benchmarks"] if b["name"] != "test_plain"]
    extra = dict(current["benchmarks"][0], name="test_new", fullname="x.py::test_new", extra_info={})
    current["benchmarks"].append(extra)
    code, out, _ = gate("--ab", RUNS[-1], write(tmp_path / "cur.json", current))
    rows = table_rows(out)
    assert code == 1 and "missing" in rows["test_plain"] and "new" in rows["test_new"]
    assert "only in base" in out and "only in current" in out and "test_plain (missing)" in out.splitlines()[-1]
    code, out, _ = gate("--ab", RUNS[-1], tmp_path / "cur.json", "--allow-missing")
    assert code == 0 and "test_plain" in out.splitlines()[-1]


def test_ab_folders_are_pooled(gate, tmp_path: Path) -> None:
    base, current = tmp_path / "base", tmp_path / "current"
    base.mkdir()
    current.mkdir()
    shutil.copy(RUNS[0], base / "a.json")
    shutil.copy(RUNS[2], base / "b.json")
    shutil.copy(RUNS[0], current / "a.json")
    shutil.copy(RUNS[2], current / "b.json")
    code, out, _ = gate("--ab", base, current)
    assert code == 0 and "n=30" in table_rows(out)[AMP]  # 2 runs x 15 rounds


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: [b["stats"].pop("data") for b in d["benchmarks"]], "--benchmark-save-data"),
        (lambda d: d["machine_info"]["cpu"].update(brand_raw="Intel Xeon", count=64), "different machines"),
        (lambda d: [b["extra_info"].update(profile="full") for b in d["benchmarks"] if b["extra_info"]],
         "profile"),
        (lambda d: d.update(version="2.1.0"), "pytest-benchmark 2.1.0"),
    ],
    ids=["no-raw-data", "other-machine", "other-profile", "old-version"],
)
def test_ab_incompatible_inputs_exit_2(gate, tmp_path: Path, mutate, message: str) -> None:
    current = read(RUNS[-1])
    mutate(current)
    code, out, err = gate("--ab", RUNS[-1], write(tmp_path / "cur.json", current))
    assert code == 2 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_other_machine_can_be_allowed(gate, tmp_path: Path) -> None:
    current = read(RUNS[-1])
    current["machine_info"]["cpu"]["brand_raw"] = "Intel Xeon"
    assert gate("--ab", RUNS[-1], write(tmp_path / "c.json", current), "--allow-other-machine")[0] == 0


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content, message",
    [(None, "no such run summary"), ("", "empty file"), ("{", "not valid JSON"),
     ('{"hpml_schema": 7, "rows": [{"name": "x"}]}', "schema 7")],
    ids=["missing", "empty", "corrupt", "future-schema"],
)
def test_bad_summary_exit_2(gate, tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "summary.json"
    if content is not None:
        path.write_text(content)
    code, out, err = gate("--summary", path)
    assert code == 2 and message in err and out == ""


def test_no_summary_yet_says_how_to_make_one(gate) -> None:
    code, _, err = gate()
    assert code == 2 and "no run summary" in err and "pytest benchmarks" in err


def test_modes_are_exclusive(gate) -> None:
    code, _, err = gate("--ab", RUNS[0], RUNS[1], "--summary", SUMMARIES[0])
    assert code == 2 and "pick one mode" in err


def test_json_output(gate, tmp_path: Path) -> None:
    assert gate("--ab", RUNS[1], RUNS[0], "--json", tmp_path / "g.json")[0] == 1
    result = read(tmp_path / "g.json")
    assert result["exit"] == 1 and any(c["verdict"] == "SLOWER" for c in result["checks"])


def test_hpml_cli_wires_gate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hpml.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["gate", "--ab", str(RUNS[-1]), str(RUNS[-1])]) == 0
    assert main(["gate", "--summary", str(tmp_path / "missing.json")]) == 2


def test_an_unknown_idle_policy_stops_the_a_b_before_any_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    capsys) -> None:
    """``hpml gate --base`` holds one idle-CPU state for both revisions' sessions
    (hpml.bench.idle); a bad ``$HPML_BENCH_IDLE`` is bad input: one line, exit 2."""
    from hpml.cli import main

    import hpml.gate.command

    started = []
    monkeypatch.setattr(hpml.gate.command, "run_interleaved", lambda *a, **k: started.append(a))
    monkeypatch.setenv("HPML_BENCH_IDLE", "sleepy")
    assert main(["gate", "--base", "HEAD"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown idle policy 'sleepy'" in err[0] and not started


def test_the_help_states_the_real_defaults() -> None:
    """`--repeats` said 2 and `--pairs` 10 while GateConfig used 6 and 3."""
    import argparse
    import re

    from hpml.gate.command import FLAGS, add_gate_arguments
    from hpml.gate.config import GateConfig

    parser = argparse.ArgumentParser()
    add_gate_arguments(parser)
    helps = {a.option_strings[0]: a.help for a in parser._actions if a.option_strings}
    defaults = GateConfig()
    for name, flag in FLAGS.items():
        if name == "test":
            continue  # a choice, its default named in words
        stated = re.search(r"default[^)]*?([0-9.]+)\)", helps[flag])
        assert stated, (flag, helps[flag])
        assert float(stated.group(1)) == getattr(defaults, name), (flag, helps[flag])
