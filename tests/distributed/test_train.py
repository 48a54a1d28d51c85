"""``hpml train`` on 2 ranks end to end (digits, ResNet-18): reduced metrics, rank-0
outputs, and a 2-rank checkpoint resumed by a single process."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hpml.cli import main
from hpml.train.checkpoint import CHECKPOINT_NAME

pytestmark = pytest.mark.ddp

ROOT = Path(__file__).resolve().parents[2]
#: The README's acceptance run (slow on 2 shared cores: ~30 s of ResNet-18 compute).
TRAIN = ["train", "--model", "resnet18", "--dataset", "digits", "--device", "cpu",
         "--train-size", "128", "--test-size", "64", "--batch-size", "16", "--no-progress"]
#: The same at 8 px on a quarter of the data: the default run's end-to-end check.
SMALL = ["train", "--model", "resnet18", "--dataset", "digits", "--device", "cpu", "--image-size", "8",
         "--train-size", "32", "--test-size", "16", "--batch-size", "8", "--no-progress"]


@pytest.fixture
def one_thread():
    """The in-process (world size 1) runs on one thread: the cores are shared with the
    ranks and with other test processes, and oversubscribed threads only slow down."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_nproc_2_reduces_metrics_writes_once_and_resumes_on_one_process(tmp_path, capsys, one_thread):
    record_path, log_path, ckpt = tmp_path / "run.json", tmp_path / "run.jsonl", tmp_path / "ckpt"
    code = main([*SMALL, "--nproc", "2", "--epochs", "1", "--json", str(record_path),
                 "--log", str(log_path), "--checkpoint-dir", str(ckpt)])
    out = capsys.readouterr().out
    assert code == 0
    assert "test accuracy" in out and out.count("resnet18 on digits") == 1  # printed once, by the launcher
    record = json.loads(record_path.read_text())
    assert record["world_size"] == 2
    # Reduced over the ranks: counts are the totals, not one rank's shard.
    assert record["phases"]["train"]["samples"] == 32
    assert record["phases"]["inference"]["samples"] == 16
    epoch = record["epochs"][0]
    # epoch metrics: training samples summed over ranks, evaluated samples likewise
    assert epoch["samples"] == 32 and epoch["test_samples"] == 16 and 0.0 <= epoch["accuracy"] <= 1.0
    assert epoch["step"] == 32 // (2 * 8)  # each rank: its 16 samples in batches of 8
    assert len(log_path.read_text().splitlines()) == 1  # rank 0 alone appends
    assert (ckpt / CHECKPOINT_NAME).is_file()

    # The same checkpoint continues on one process (world size 1): checkpoints hold the
    # raw module's state_dict, independent of the world size.
    code = main([*SMALL, "--epochs", "2", "--resume", "--checkpoint-dir", str(ckpt), "--json", str(record_path)])
    assert code == 0
    resumed = json.loads(record_path.read_text())
    assert resumed["world_size"] == 1
    assert [e["epoch"] for e in resumed["epochs"]] == [2]
    assert resumed["steps"] == 2 + 32 // 8  # 2 steps on 2 ranks, then 4 on one


@pytest.mark.slow
def test_acceptance_run_on_two_ranks(tmp_path, capsys):
    code = main([*TRAIN, "--nproc", "2", "--epochs", "1", "--json", str(tmp_path / "run.json")])
    assert code == 0
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["world_size"] == 2 and record["steps"] == 4
    assert record["phases"]["train"]["samples"] == 128 and record["phases"]["inference"]["samples"] == 64


@pytest.mark.slow
def test_bad_input_found_in_the_ranks_is_one_line_exit_2(tmp_path, capsys):
    # Missing dataset files surface only when a rank builds its data.
    code = main([*SMALL, "--dataset", "cifar10", "--data-dir", str(tmp_path), "--nproc", "2", "--steps", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert re.match(r"hpml: error: rank [01]: ", err) and "\n" not in err, err


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("torchrun", path=os.path.dirname(sys.executable)) is None,
                    reason="torchrun is not installed next to this Python")
def test_torchrun_standalone_runs_hpml_unchanged(tmp_path):
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [torchrun, "--standalone", "--nproc-per-node", "2", "-m", "hpml", *SMALL, "--epochs", "1",
         "--json", str(tmp_path / "run.json")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("resnet18 on digits") == 1  # rank 0 alone prints the summary
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["world_size"] == 2 and record["phases"]["train"]["samples"] == 32
