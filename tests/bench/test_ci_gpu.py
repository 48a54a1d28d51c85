""".ci/gpu, the lent GPU machine's script: its plan (no GPU needed) fits 8 minutes and selects every
required row; on a machine without a usable GPU it says why and fails."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from hpml.bench.required import required_rows

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".ci" / "gpu"
STAGES = ("env", "gpu-tests", "bench", "bench-compile", "required", "ddp", "report")


def run_script(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=environ, timeout=300)


def test_the_plan_lists_each_stage_and_every_required_row_within_8_minutes():
    done = run_script("--plan")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for stage in STAGES:
        assert re.search(rf"^== {stage}: limit \d+s, estimated \d+s$", out, re.M), stage
    estimated = int(re.search(r"^estimated total: (\d+) s$", out, re.M).group(1))
    limits = int(re.search(r"^limits total: (\d+) s", out, re.M).group(1))
    assert estimated <= limits <= 480
    rows = required_rows()
    for row in rows:
        assert f"  {row.nodeid}\n" in out, row.nodeid
    # the two benchmark sessions together select exactly the required rows: compile apart
    compiling = sum(r.case.optimization == "compile" for r in rows)
    assert f"<{len(rows) - compiling} node ids: the required rows but compile>" in out
    assert f"<{compiling} node ids: the required rows that compile>" in out
    # the compile rows are marked slow: the benchmark sessions' -m must not drop them
    bench = next(line for line in out.splitlines() if "--benchmark-json=OUT_DIR/bench-compile.json" in line)
    assert " -m gpu " in bench and "not slow" not in bench


@pytest.mark.skipif(torch.cuda.is_available() or shutil.which("nvidia-smi") is not None,
                    reason="the path of a machine without a GPU")
def test_without_a_gpu_it_says_why_and_fails_unless_cuda_is_not_required(tmp_path):
    done = run_script(str(tmp_path / "out"))
    assert done.returncode == 1
    assert "no CUDA device here" in done.stderr and "CUDA is required" in done.stderr
    assert "no CUDA device here" in (tmp_path / "out" / "status.txt").read_text()
    done = run_script(str(tmp_path / "out"), env={"HPML_REQUIRE_CUDA": "0"})
    assert done.returncode == 0 and "no CUDA device here" in done.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="torch sees a GPU here")
def test_a_gpu_that_nvidia_smi_lists_and_torch_cannot_see_fails(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text('#!/bin/sh\necho "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0)"\n')
    smi.chmod(0o755)
    done = run_script(str(tmp_path / "out"), env={"PATH": f"{bin_dir}:{os.environ['PATH']}",
                                                   "HPML_REQUIRE_CUDA": "0"})
    assert done.returncode == 1
    assert "nvidia-smi lists 1 GPU(s) but torch" in done.stderr and "sees none" in done.stderr


@pytest.mark.parametrize("args", [(), ("--plan", "extra"), ("--bogus",)])
def test_bad_usage_is_exit_2(args):
    done = run_script(*args)
    assert done.returncode == 2 and done.stderr.startswith("usage: bash .ci/gpu")


SESSION = '''
import time
from pathlib import Path
from hpml.bench.compat import record_rounds

def test_done(benchmark):
    record_rounds(benchmark, [0.01, 0.012])

def test_cut_short(benchmark):
    Path("started").write_text("")
    time.sleep(120)
    record_rounds(benchmark, [1.0])
'''


def test_a_benchmark_session_stopped_by_sigint_saves_the_rows_it_finished(tmp_path):
    """What a stage limit relies on: `timeout -s INT` stops pytest, and pytest-benchmark still writes
    the rows measured before (an hpml row registers its statistics only once it is measured)."""
    (tmp_path / "test_session.py").write_text(SESSION)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "test_session.py", "-q", "-p", "no:cacheprovider", "--benchmark-json=run.json"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "started").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the session did not reach its second row"
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGINT)  # as timeout -s INT signals the stage's process group
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    rows = json.loads((tmp_path / "run.json").read_text())["benchmarks"]
    assert [row["name"] for row in rows] == ["test_done"]
