"""``hpml gate --markdown FILE``: the verdict as GitHub Markdown, in the file and the job summary."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpml.gate.checks import OK, SLOWER, Check
from hpml.gate.verdict_markdown import Facts, render
from hpml.results.markdown import escape

from .conftest import RUNS, read, write

EVIL = "test_x|<script>alert(1)</script>*bold*"


def outside_details(text: str) -> list[str]:
    """The lines a reader sees without unfolding a <details> block."""
    shown, depth = [], 0
    for line in text.splitlines():
        depth += line.count("<details>")
        if depth == 0:
            shown.append(line)
        depth -= line.count("</details>")
    return shown


def table_rows(text: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in outside_details(text)
            if line.startswith("| ") and not line.startswith("| row") and not line.startswith("| :")]


def test_ab_writes_markdown_and_the_job_summary(gate, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = tmp_path / "step-summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code, out, _ = gate("--ab", RUNS[0], RUNS[2], "--markdown", "m.md", "--allow-other-machine")
    assert code == 1  # the fixture's third run is slower in five rows
    text = (tmp_path / "m.md").read_text()
    assert summary.read_text() == "earlier step\n" + text + "\n"  # appended, not replaced
    assert "**hpml gate: FAIL** — 5 of 15" in text
    rows = table_rows(text)
    verdicts = [r[3] for r in rows]
    assert verdicts[:5] == ["**SLOWER**"] * 5 and set(verdicts[5:]) == {OK}  # flagged rows first
    assert rows[0][1].startswith("time +") and "[" in rows[0][1]  # the change with its interval
    assert "machine: AMD EPYC" in text and "`3f2a9c1d` → current `c4d5e6f7`" in text
    assert f"hpml gate --ab {RUNS[0]} {RUNS[2]} --markdown m.md --allow-other-machine" in text


def test_untrusted_names_are_escaped(gate, tmp_path: Path) -> None:
    sides = []
    for n, path in enumerate((RUNS[0], RUNS[2])):
        run = read(path)
        plain = next(b for b in run["benchmarks"] if b["name"] == "test_plain")
        plain["name"] = plain["fullname"] = EVIL
        sides.append(write(tmp_path / f"{n}.json", run))
    code, _, _ = gate("--ab", *sides, "--markdown", "m.md", "--allow-other-machine")
    text = (tmp_path / "m.md").read_text()
    assert "<script>" not in text and "*bold*" not in text
    assert escape(EVIL) in text and "&lt;script&gt;" in text
    assert all(len(r) == 4 for r in table_rows(text))  # the `|` in the name split no cell


def test_long_selection_folds_into_details() -> None:
    checks = [Check(f"train:digits:resnet50:cpu:sgd:opt{i}", "A/B paired", "-", "-", 1.0, 0.5, OK, "", (0.98, 1.02))
              for i in range(120)]
    checks.insert(70, Check("train:digits:resnet50:cpu:sgd:slow", "A/B paired", "-", "-", 0.8, 0.001, SLOWER, "",
                            (0.75, 0.85)))
    text = render(checks, [checks[70]], ["a header line"], Facts("cpu", "a -> b", "floor"), ["gate", "--base", "x"])
    shown = outside_details(text)
    assert len(shown) <= 60
    assert table_rows(text)[0][0].endswith("slow") and table_rows(text)[0][1].startswith("time +25.0%")
    assert text.count("| train:") == 121  # every row is there, the rest folded


def test_unwritable_markdown_is_exit_2_and_nothing_written(gate, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    summary = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code, out, err = gate("--ab", RUNS[0], RUNS[2], "--markdown", tmp_path / "no-such-dir" / "m.md")
    assert code == 2 and "no folder" in err and err.count("\n") == 1
    assert out == "" and not summary.exists()
