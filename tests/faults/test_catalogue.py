"""The fault catalogue: bad inputs and faults replayed against ``hpml``, one row each.

Every row checks what README's "Bad input" paragraph promises:

* the exit code: 2 for bad input, 1 for a run that failed (or finished but could not
  save an output), 143 for SIGTERM, 0 when the input is in fact fine;
* exactly one line on stderr, naming the problem, and no ``Traceback``;
* no data lost: what was there before (a checkpoint, a log) is intact, and a run that
  finished still prints its summary and keeps what it could write.

Rows run in-process through ``hpml.cli.main`` unless the process boundary is what is
tested (spawned loader workers, SIGTERM); those run as subprocesses and are ``slow``.
Issue 14 lists the groups; a row's ``group`` is its number there.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

import hpml.train.fit
import hpml.train.run
from hpml.cli import main

#: The quickest real training run: ResNet-18 on digits at 8 px (about a second a step here).
BASE = ["train", "--model", "resnet18", "--dataset", "digits", "--device", "cpu", "--image-size", "8", "--no-progress"]
TRAIN = [*BASE, "--batch-size", "8", "--steps", "1"]
MARKER = "pwned"  # a file a malicious pickle would create


class RunsCode:
    """Unpickles into ``os.system("touch <marker>")``: what a crafted file could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# --- files in the real formats, with one thing wrong ----------------------------------

def cifar10_dir(tmp: Path, labels: list) -> Path:
    root = tmp / "data" / "cifar-10-batches-py"
    root.mkdir(parents=True)
    images = np.random.default_rng(0).integers(0, 256, size=(len(labels), 3072), dtype=np.uint8)
    for name in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]:
        with open(root / name, "wb") as f:
            pickle.dump({b"data": images, b"labels": list(labels)}, f, protocol=2)
    return tmp / "data"


def amazon_parquet_dir(tmp: Path, labels: list) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = tmp / "data" / "amazon_polarity"
    root.mkdir(parents=True)
    for split in ("train", "test"):
        table = pa.table({"label": labels, "title": ["t"] * len(labels), "content": ["a review"] * len(labels)})
        pq.write_table(table, root / f"{split}-00000-of-00001.parquet")
    return tmp / "data"


def imagenet_dir(tmp: Path, *, meta: object = None, corrupt_val: bool = False) -> Path:
    from PIL import Image

    wnids = ["n01440764", "n01443537"]
    root = tmp / "data" / "imagenet"
    for split in ("train", "val"):
        for c, wnid in enumerate(wnids):
            folder = root / split / wnid
            folder.mkdir(parents=True)
            for i in range(2):
                pixels = np.random.default_rng(c * 10 + i).integers(0, 256, size=(36, 36, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{wnid}_{i}.JPEG", format="JPEG")
    if corrupt_val:  # every val image: the test loader decodes them in its worker
        for path in (root / "val").rglob("*.JPEG"):
            path.write_bytes(b"\xff\xd8 not a jpeg")
    torch.save(meta if meta is not None else ({w: (w,) for w in wnids}, wnids), root / "meta.bin")
    return tmp / "data"


# --- the catalogue ----------------------------------------------------------------------

@dataclass(frozen=True)
class Fault:
    """One bad input or fault: ``setup(tmp, monkeypatch) -> argv``, what must come out,
    and ``kept(tmp, stdout)`` asserting that nothing was lost."""

    id: str
    group: int
    setup: Callable[[Path, pytest.MonkeyPatch], list[str]]
    code: int
    stderr: str  # a substring of the one stderr line ("" for a clean exit 0)
    kept: Callable[[Path, str], None] | None = None
    absent: tuple[str, ...] = ()  # substrings the line must not hold
    marks: tuple = field(default=())


def argv(*extra: str) -> Callable[[Path, pytest.MonkeyPatch], list[str]]:
    return lambda tmp, mp: [*TRAIN, *[a.replace("{tmp}", str(tmp)) for a in extra]]


def malicious_checkpoint(tmp: Path, mp: pytest.MonkeyPatch) -> list[str]:
    ckpt = tmp / "ckpt"
    ckpt.mkdir()
    payload = {"model": {}, "optimizer": {}, "scaler": {}, "scheduler": {}, "rng": {}, "step": 0, "epoch": 0,
               "evil": RunsCode(tmp / MARKER)}
    torch.save(payload, ckpt / "last.ckpt")
    return [*TRAIN, "--checkpoint-dir", str(ckpt), "--resume"]


def disk_full_at_checkpoint(tmp: Path, mp: pytest.MonkeyPatch) -> list[str]:
    # The checkpoint's bytes go to /dev/full, which fails every write with ENOSPC, as a
    # full disk does; the log and the record go to a healthy folder.
    real = hpml.train.checkpoint.atomic_write
    mp.setattr(hpml.train.checkpoint, "atomic_write",
               lambda path, write, **kw: write("/dev/full") if path.name == "last.ckpt" else real(path, write, **kw))
    return [*TRAIN, "--checkpoint-dir", str(tmp / "ckpt"), "--json", str(tmp / "run.json"),
            "--log", str(tmp / "log.jsonl")]


def disk_full_at_record(tmp: Path, mp: pytest.MonkeyPatch) -> list[str]:
    mp.setattr(hpml.train.run, "atomic_write", lambda path, write, **kw: write("/dev/full"))
    return [*TRAIN, "--checkpoint-dir", str(tmp / "ckpt"), "--json", str(tmp / "run.json"),
            "--log", str(tmp / "log.jsonl")]


def cpu_out_of_memory_in_a_step(tmp: Path, mp: pytest.MonkeyPatch) -> list[str]:
    def step(state, group):  # what the CPU allocator raises; torch gives it no type
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate "
                           "memory: you tried to allocate 68719476736 bytes. Error code 12")

    mp.setattr(hpml.train.fit, "train_step", step)
    return [*TRAIN, "--json", str(tmp / "run.json")]


def cpu_out_of_memory_while_building(tmp: Path, mp: pytest.MonkeyPatch) -> list[str]:
    def build(cfg):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 bytes.")

    mp.setattr(hpml.train.run, "build_training", build)
    return list(TRAIN)


def orphan_tmp_files(tmp: Path, mp: pytest.MonkeyPatch) -> list[str]:
    ckpt = tmp / "ckpt"
    ckpt.mkdir()
    orphan = ckpt / ".last.ckpt.k1ll3d.tmp"  # what a kill -9 during torch.save leaves
    orphan.write_bytes(b"\0" * 1024)
    old = time.time() - 3600
    os.utime(orphan, (old, old))
    return [*TRAIN, "--checkpoint-dir", str(ckpt)]


def file_in_the_way(tmp: Path, name: str) -> Path:
    path = tmp / name
    path.write_text("a regular file\n")
    return path


def unchanged(path_of: Callable[[Path], Path]) -> Callable[[Path, str], None]:
    """``kept`` check: the file at ``path_of(tmp)`` still holds what setup wrote."""
    def check(tmp: Path, out: str) -> None:
        assert path_of(tmp).read_text() == "a regular file\n"

    return check


def record_and_log_kept(tmp: Path, out: str) -> None:
    assert "samples/s" in out  # the summary of the finished run
    assert json.loads((tmp / "run.json").read_text())["steps"] == 1
    assert len((tmp / "log.jsonl").read_text().splitlines()) == 1


def log_and_checkpoint_kept(tmp: Path, out: str) -> None:
    from hpml.train.checkpoint import read_checkpoint

    assert "samples/s" in out
    assert len((tmp / "log.jsonl").read_text().splitlines()) == 1
    assert read_checkpoint(tmp / "ckpt" / "last.ckpt")["step"] == 1
    assert not (tmp / "run.json").exists()


def nothing_ran(tmp: Path, out: str) -> None:
    assert not (tmp / MARKER).exists(), "the checkpoint's code ran"
    assert (tmp / "ckpt" / "last.ckpt").is_file()  # left as it was, not overwritten


def orphan_swept(tmp: Path, out: str) -> None:
    assert [p.name for p in (tmp / "ckpt").iterdir()] == ["last.ckpt"]


FAULTS = [
    # 2. --resume must not run code from the checkpoint
    Fault("resume-malicious-checkpoint", 2, malicious_checkpoint, 2, "posix.system",
          kept=nothing_ran, absent=("weights_only",)),
    # 3. output failures
    Fault("json-is-a-directory", 3, argv("--json", "{tmp}"), 2, "--json"),
    Fault("json-under-a-regular-file", 3, lambda tmp, mp: [*TRAIN, "--json", str(file_in_the_way(tmp, "f") / "r.json")],
          2, "is a file, not a folder", kept=unchanged(lambda tmp: tmp / "f")),
    Fault("log-is-a-directory", 3, argv("--log", "{tmp}"), 2, "--log"),
    Fault("checkpoint-dir-under-a-regular-file", 3,
          lambda tmp, mp: [*TRAIN, "--checkpoint-dir", str(file_in_the_way(tmp, "f") / "ckpt")],
          2, "--checkpoint-dir", kept=unchanged(lambda tmp: tmp / "f")),
    Fault("disk-full-at-checkpoint", 3, disk_full_at_checkpoint, 1, "ENOSPC", kept=record_and_log_kept),
    Fault("disk-full-at-record", 3, disk_full_at_record, 1, "ENOSPC", kept=log_and_checkpoint_kept),
    # 5. out of memory
    Fault("image-size-60000", 5, argv("--image-size", "60000"), 2, "--image-size"),
    Fault("batch-size-1e9-synthetic-cifar", 5,
          lambda tmp, mp: ["train", "--model", "resnet18", "--dataset", "cifar10", "--synthetic", "--device", "cpu",
                           "--steps", "1", "--batch-size", "1000000000"], 2, "--batch-size"),
    Fault("cpu-oom-in-a-step", 5, cpu_out_of_memory_in_a_step, 1, "out of host memory at batch size 8"),
    Fault("cpu-oom-while-building", 5, cpu_out_of_memory_while_building, 1, "out of memory"),
    # 8. --nproc
    Fault("nproc-0", 8, argv("--nproc", "0"), 2, "--nproc must be >= 1"),
    Fault("nproc-negative", 8, argv("--nproc", "-1"), 2, "--nproc must be >= 1"),
    Fault("nproc-beyond-cores", 8, argv("--nproc", "100"), 2, "CPU cores"),
    # 9. bad values: one line, never a traceback
    Fault("cifar-string-labels", 9,
          lambda tmp, mp: ["train", "--model", "resnet18", "--dataset", "cifar10", "--device", "cpu", "--steps", "1", "--batch-size", "2",
                           "--data-dir", str(cifar10_dir(tmp, ["cat", "dog"]))], 2, "expected integers"),
    Fault("hf-parquet-string-labels", 9,
          lambda tmp, mp: ["train", "--dataset", "amazon_polarity", "--model-preset", "tiny", "--device", "cpu",
                           "--steps", "1", "--data-dir", str(amazon_parquet_dir(tmp, ["neg", "pos"]))],
          2, "expected integer class ids"),
    Fault("weight-decay-negative", 9, argv("--weight-decay", "-1"), 2, "weight_decay must be"),
    Fault("decode-error-in-a-loader-worker", 9,
          lambda tmp, mp: ["train", "--model", "resnet18", "--dataset", "imagenet", "--device", "cpu",
                           "--image-size", "32", "--steps", "1", "--batch-size", "2", "--no-progress",
                           "--opt", "workers", "--workers", "1",
                           "--data-dir", str(imagenet_dir(tmp, corrupt_val=True))],
          2, "(in a data loader worker)", absent=("Caught", "Original")),
    # 10. bad values silently accepted before
    Fault("cifar-float-labels", 10,
          lambda tmp, mp: ["train", "--model", "resnet18", "--dataset", "cifar10", "--device", "cpu", "--steps", "1", "--batch-size", "2",
                           "--data-dir", str(cifar10_dir(tmp, [0.5] * 8))], 2, "expected integers"),
    Fault("lr-nan", 10, argv("--lr", "nan"), 2, "lr must be a finite number"),
    Fault("lr-inf", 10, argv("--lr", "inf"), 2, "lr must be a finite number"),
    Fault("model-preset-for-resnet", 10, argv("--model-preset", "tiny"), 2, "--model-preset"),
    Fault("hf-null-label", 10,
          lambda tmp, mp: ["train", "--dataset", "amazon_polarity", "--model-preset", "tiny", "--device", "cpu",
                           "--steps", "1", "--data-dir", str(amazon_parquet_dir(tmp, [0, None]))],
          2, "row 1 has no label"),
    # 11. leftovers
    Fault("orphan-tmp-checkpoint-swept", 11, orphan_tmp_files, 0, "", kept=orphan_swept),
    # 12. messages that confused
    Fault("imagenet-meta-bin-runs-code", 12,
          lambda tmp, mp: ["train", "--model", "resnet18", "--dataset", "imagenet", "--device", "cpu",
                           "--steps", "1", "--data-dir", str(imagenet_dir(tmp, meta=RunsCode(tmp / MARKER)))],
          2, "meta", kept=lambda tmp, out: not (tmp / MARKER).exists(), absent=("weights_only",)),
]


def check_one_line(code: int, err: str, fault: Fault) -> None:
    lines = err.strip().splitlines()
    assert "Traceback" not in err, err
    if fault.code == 0:
        assert not lines, err
        return
    assert len(lines) == 1, err
    assert fault.stderr in lines[0], err
    assert lines[0].startswith("hpml: "), err
    for text in fault.absent:
        assert text not in lines[0], err


@pytest.mark.parametrize("fault", [pytest.param(f, id=f"{f.group}-{f.id}", marks=f.marks) for f in FAULTS])
def test_fault(fault: Fault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("HPML_CACHE_DIR", str(tmp_path / "cache"))
    argv = fault.setup(tmp_path, monkeypatch)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    out, err = capsys.readouterr()
    assert code == fault.code, err
    check_one_line(code, err, fault)
    if fault.kept is not None:
        assert fault.kept(tmp_path, out) is not False


# --- resume: the checkpoint's config wins (group 6, and group 12's Adam message) -------

@pytest.fixture(scope="module")
def digits_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("resume") / "ckpt"
    assert main([*TRAIN, "--checkpoint-dir", str(folder)]) == 0
    return folder


@pytest.mark.parametrize(
    "extra,named",
    [
        (["--seed", "1"], "seed 0 (checkpoint) vs 1 (this run)"),
        (["--optimizer", "adam"], "optimizer 'sgd' (checkpoint) vs 'adam' (this run)"),
        (["--dataset", "cifar10", "--synthetic"], "dataset 'digits' (checkpoint) vs 'cifar10' (this run)"),
        (["--model", "resnet50"], "model 'resnet18' (checkpoint) vs 'resnet50' (this run)"),
    ],
)
def test_resume_refuses_another_config(digits_checkpoint: Path, capsys, extra: list[str], named: str) -> None:
    before = (digits_checkpoint / "last.ckpt").read_bytes()
    capsys.readouterr()
    code = main([*TRAIN, *extra, "--checkpoint-dir", str(digits_checkpoint), "--resume"])
    out, err = capsys.readouterr()
    assert code == 2, err
    check_one_line(code, err, Fault("resume", 6, argv(), 2, named))
    assert (digits_checkpoint / "last.ckpt").read_bytes() == before  # not rewritten with the other config


# --- across the process boundary (subprocesses, slow) -----------------------------------

def hpml_subprocess(args: list[str], *, start_method: str | None = None, **kwargs) -> subprocess.Popen:
    code = "import sys; from hpml.cli import main; sys.exit(main(sys.argv[2:]))"
    if start_method:
        code = f"import multiprocessing; multiprocessing.set_start_method({start_method!r}); " + code
    return subprocess.Popen([sys.executable, "-c", code, "-", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


@pytest.mark.slow
@pytest.mark.parametrize("nproc", [1, pytest.param(2, marks=pytest.mark.ddp)])
@pytest.mark.parametrize("start_method", ["spawn", "forkserver"])
def test_workers_under_spawn_and_forkserver(tmp_path: Path, start_method: str, nproc: int) -> None:
    # Group 1: the repro of issue 14 (--opt workers), under both start methods that do
    # not fork; DDP ranks start their loader workers with the launcher's start method.
    proc = hpml_subprocess([*TRAIN, "--steps", "2", "--opt", "workers", "--workers", "1", "--nproc", str(nproc),
                            "--json", str(tmp_path / "run.json")], start_method=start_method,
                           env={**os.environ, "OMP_NUM_THREADS": "1"})
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["steps"] == 2 and record["world_size"] == nproc
    assert "workers" in record["config"]["expanded_optimizations"]


@pytest.mark.slow
def test_sigterm_is_one_line_exit_143_and_keeps_the_checkpoint(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    args = [*BASE, "--batch-size", "8", "--epochs", "200", "--log", str(log), "--checkpoint-dir", str(tmp_path)]
    proc = hpml_subprocess(args, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 300
    while not (tmp_path / "last.ckpt").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)  # until the first epoch's checkpoint is written
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM
    assert err.strip().splitlines() == ["hpml: terminated by SIGTERM (the last epoch checkpoint, if any, is intact)"]
    from hpml.train.checkpoint import read_checkpoint

    assert read_checkpoint(tmp_path / "last.ckpt")["epoch"] >= 1
