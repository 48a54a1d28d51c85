"""Helpers of the gate tests: the recorded fixtures and a CLI runner."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from hpml.cli import main as cli_main


def gate_main(argv: list[str]) -> int:
    """``hpml gate ARGV`` in this process: the exit code (output on stdout/stderr)."""
    return cli_main(["gate", *argv])


STORAGE = Path(__file__).parents[1] / "report" / "fixtures" / "storage"
RUNS = sorted((STORAGE / "Linux-CPython-3.11-64bit").glob("*.json"))
SUMMARIES = sorted((STORAGE / "summaries").glob("*.json"))


def read(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def write(path: Path, obj: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return path


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    return Path(shutil.copytree(STORAGE, tmp_path / ".benchmarks"))


@pytest.fixture
def gate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """Run ``hpml gate ARGS`` in ``tmp_path`` (so only a pyproject there is read): (exit code, stdout, stderr)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").touch()  # stops the walk up to the repository's pyproject

    def run(*argv: str) -> tuple[int, str, str]:
        code = gate_main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run
