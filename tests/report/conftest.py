"""Fixtures of the report tests: a copy of the recorded ``.benchmarks``-like storage."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
STORAGE = FIXTURES / "storage"
MACHINE_DIR = "Linux-CPython-3.11-64bit"


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    """A writable copy of the fixture storage: 3 runs, 3 summaries, 2 convergence records."""
    return Path(shutil.copytree(STORAGE, tmp_path / ".benchmarks"))


def run_files() -> list[Path]:
    """The three recorded pytest-benchmark runs, oldest first."""
    return sorted((STORAGE / MACHINE_DIR).glob("*.json"))
