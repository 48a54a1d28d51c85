"""``hpml report --markdown FILE``: the at-a-glance part as GitHub Markdown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hpml.cli import main as cli_main
from hpml.report.glance_markdown import glance_markdown
from hpml.results.runfiles import discover

from .conftest import MACHINE_DIR


def test_glance_markdown_file_and_job_summary(storage: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert cli_main(["report", "--storage", str(storage), "--out", str(tmp_path / "out"),
                     "--markdown", str(tmp_path / "r.md")]) == 0
    text = (tmp_path / "r.md").read_text()
    assert summary.read_text() == text + "\n"
    assert "commit c4d5e6f7" in text and "AMD EPYC, 2 cores" in text
    assert "| amp\\_bf16 | 2.43x\\* | 1.61x\\* |" in text  # the train heatmap's first row, escaped for Markdown
    assert "| cifar10 · resnet50 · sgd | train | amp\\_bf16 | 2.43x \\(no interval\\) |" in text
    assert "<details><summary>other phases: inference" in text
    assert (tmp_path / "out" / "index.html").is_file()  # the full report is written as before


def test_names_from_a_run_are_escaped(storage: Path) -> None:
    run = sorted((storage / MACHINE_DIR).glob("*.json"))[-1]
    data = json.loads(run.read_text())
    for bench in data["benchmarks"]:
        if bench.get("extra_info", {}).get("optimization") == "amp_bf16":
            bench["extra_info"]["optimization"] = "amp<img src=x onerror=alert(1)>|x"
    data["machine_info"]["cpu"]["brand_raw"] = "CPU <b>bold</b> | pipe"
    run.write_text(json.dumps(data))
    text = glance_markdown(discover([storage]))
    assert "<img" not in text and "<b>" not in text
    assert "amp&lt;img src=x onerror=alert\\(1\\)&gt;\\|x" in text and "CPU &lt;b&gt;bold&lt;/b&gt; \\| pipe" in text


def test_bad_markdown_path_exit_2_nothing_written(storage: Path, tmp_path: Path, capsys) -> None:
    code = cli_main(["report", "--storage", str(storage), "--out", str(tmp_path / "out"),
                     "--markdown", str(tmp_path / "missing" / "r.md")])
    err = capsys.readouterr().err
    assert code == 2 and "no folder" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()
