"""The results schema is a leaf, the JSON-only commands start without torch, and the
readers (gate, report) do not depend on each other in a cycle.

Each check runs in a fresh interpreter: this test process has long imported torch.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HPML = ROOT / "hpml"


def imported_modules(*argv: str) -> set[str]:
    """The modules ``python -X importtime ARGV`` imports (its stderr lists every one)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-X", "importtime", *argv], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("import time:") and "|" in ln]
    modules = {ln.rsplit("|", 1)[1].strip() for ln in lines[1:]}  # the first line is the header
    assert "hpml.cli" in modules or argv[0] == "-c", "importtime listed nothing: the check would pass vacuously"
    return modules


@pytest.mark.parametrize("command", ["gate", "report"])
def test_json_only_commands_start_without_torch(command: str) -> None:
    modules = imported_modules("-m", "hpml", command, "--help")
    assert {m for m in modules if m == "torch" or m.startswith("torch.")} == set()
    assert f"hpml.{command}.command" in modules  # the command really was set up


def test_python_m_hpml_gate_runs_without_torch() -> None:
    modules = imported_modules("-m", "hpml", "gate", "--help")
    assert "torch" not in modules and "hpml.gate.command" in modules


def test_top_level_api_still_answers() -> None:
    """``hpml.list_datasets`` etc. load their module on first use."""
    import hpml

    assert "cifar10" in hpml.list_datasets() and "resnet50" in hpml.list_models()
    assert "amp" in hpml.list_optimizations() and callable(hpml.create_model) and callable(hpml.create_dataset)
    with pytest.raises(AttributeError):
        hpml.no_such_name  # noqa: B018


def all_imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of the file (lazy imports too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def hpml_imports(path: Path) -> set[str]:
    return {m for m in all_imports(path) if m == "hpml" or m.startswith("hpml.")}


def package_imports(package: str) -> set[str]:
    return set().union(*(hpml_imports(p) for p in (HPML / package).rglob("*.py")))


def test_results_is_a_leaf() -> None:
    """hpml.results imports nothing of hpml but the leaves hpml.errors and hpml.files, and itself
    (and never torch)."""
    leaves = {"hpml.errors", "hpml.files"}
    outside = {m for m in package_imports("results") if m not in leaves and not m.startswith("hpml.results")}
    assert outside == set()
    assert hpml_imports(HPML / "files.py") <= {"hpml.errors"}
    for path in [*(HPML / "results").rglob("*.py"), HPML / "files.py"]:
        assert "torch" not in {n.split(".")[0] for n in all_imports(path)}, path


def test_gate_and_report_do_not_import_each_other_in_a_cycle() -> None:
    """The gate imports nothing of the report; the report takes only the gate's config."""
    gate, report = package_imports("gate"), package_imports("report")
    assert {m for m in gate if m.startswith("hpml.report")} == set()
    assert {m for m in report if m.startswith("hpml.gate")} <= {"hpml.gate.config"}
    for command in ("gate", "report"):  # hpml.cli wires the commands in, never the other way round
        assert "hpml.cli" not in hpml_imports(HPML / command / "command.py")
