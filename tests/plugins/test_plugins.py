"""Plugins found through entry points, end to end: a package installed on the path
registers a model and a dataset, and ``hpml train`` uses them; a broken plugin warns."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
REPO = HERE.parents[1]


def install(site: Path, name: str, module_source: str, groups: dict[str, dict[str, str]]) -> None:
    """What ``pip install`` leaves for a package: its module and a ``.dist-info`` naming its entry points."""
    (site / f"{name}.py").write_text(module_source)
    info = site / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    lines = []
    for group, points in groups.items():
        lines.append(f"[{group}]")
        lines += [f"{key} = {value}" for key, value in points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


def run(site: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(REPO)]), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=300, cwd=site)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    site = tmp_path / "site-packages"
    site.mkdir()
    install(site, "hpml_example_plugin", (HERE / "example_plugin.py").read_text(), {
        "hpml.models": {"tinynet": "hpml_example_plugin"},
        "hpml.datasets": {"stripes": "hpml_example_plugin"},
    })
    return site


def test_an_installed_plugin_trains_from_the_cli(site: Path):
    out = site / "run.json"
    done = run(site, "-m", "hpml", "train", "--model", "tinynet", "--dataset", "stripes", "--device", "cpu",
               "--steps", "3", "--batch-size", "8", "--json", str(out))
    assert done.returncode == 0, done.stderr
    record = json.loads(out.read_text())
    assert record["config"]["model"] == "tinynet" and record["config"]["dataset"] == "stripes"
    assert record["params"] == 16 * 3 * 9 + 16 + 16 * 16 * 9 + 16 + 16 * 2 + 2  # TinyNet(2 classes)


def test_a_plugin_that_raises_is_named_and_hpml_still_works(site: Path):
    install(site, "hpml_broken_plugin", "raise RuntimeError('no GPU driver here')\n",
            {"hpml.models": {"broken": "hpml_broken_plugin"}})
    done = run(site, "-c", "import hpml; print(hpml.list_models())")
    assert done.returncode == 0, done.stderr
    assert "'tinynet'" in done.stdout and "'resnet50'" in done.stdout
    assert "plugin 'broken' (hpml_broken_plugin, group hpml.models) failed to register" in done.stderr
    assert "no GPU driver here" in done.stderr and "Traceback" not in done.stderr
