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
import psutil
import pytest
import torch

import hpml.data.tokenizer
import hpml.train.fit
import hpml.train.run
from hpml.cli import main

pytest_plugins = ["pytester"]  # group 33.6/7: inner benchmark sessions

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
    issue: int = 14  # the issue whose groups ``group`` numbers (14, or 33)


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


# --- issue 33: the second fault sweep (``issue=33``: ``group`` is its root cause's number) --------

def hf_folder_with_custom_code(tmp: Path, *, file: bool = False) -> list[str]:
    folder = tmp / "m"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "model_type": "evilbert",
        "auto_map": {"AutoConfig": "evil.EvilConfig", "AutoModelForSequenceClassification": "evil.EvilModel"}}))
    (folder / "evil.py").write_text(f"import pathlib; pathlib.Path({str(tmp / MARKER)!r}).touch()\n")
    target = folder / "config.json" if file else folder
    return ["train", "--model", f"hf:{target}", "--dataset", "amazon_polarity", "--synthetic", "--device", "cpu",
            "--steps", "1"]


def malicious_weights(tmp: Path, mp: pytest.MonkeyPatch, *, legacy: bool = False) -> list[str]:
    torch.save({"conv1.weight": RunsCode(tmp / MARKER)}, tmp / "w.pt", _use_new_zipfile_serialization=not legacy)
    return [*TRAIN, "--weights", str(tmp / "w.pt")]


def report_with_names(tmp: Path, name: str = "channels_last", machine: str = "AMD EPYC", profile: str = "smoke",
                      dataset: str = "cifar10") -> list[str]:
    """A stored run whose channels_last rows are named ``name``, its CPU ``machine``, its
    profile ``profile`` and its cifar10 rows' dataset ``dataset``."""
    source = sorted((Path(__file__).parents[1] / "report" / "fixtures" / "storage").rglob("0001_*.json"))[0]
    run = json.loads(source.read_text())
    run["machine_info"]["cpu"]["brand_raw"] = machine
    for row in run["benchmarks"]:
        row["extra_info"]["profile"] = profile
        if row["extra_info"].get("dataset") == "cifar10":
            row["extra_info"]["dataset"] = dataset
        if row["extra_info"].get("optimization") == "channels_last":
            row["extra_info"]["optimization"] = name
            row["name"] = row["fullname"] = row["name"].replace("channels_last", name)
    store = tmp / "storage" / source.parent.name
    store.mkdir(parents=True)
    (store / source.name).write_text(json.dumps(run))
    return ["report", str(tmp / "storage"), "--out", str(tmp / "out")]


HOSTILE = "<img src=x onerror=alert(1)>[x](javascript:alert(1))"


def index_md_is_inert(tmp: Path, out: str) -> None:
    from markdown_it import MarkdownIt

    md = (tmp / "out" / "index.md").read_text()
    assert "onerror=alert(1)" in md  # the name is shown...
    page = MarkdownIt("commonmark").render(md)
    assert "<img src=x" not in page and 'href="javascript:' not in page  # ...as text, as a viewer renders it


def fifo(tmp: Path, name: str = "fifo") -> Path:
    path = tmp / name
    os.mkfifo(path)
    return path


def still_a_fifo(tmp: Path, out: str) -> None:
    assert (tmp / "fifo").is_fifo()


def symlinked_json(tmp: Path, mp: pytest.MonkeyPatch) -> list[str]:
    (tmp / "real").mkdir()
    (tmp / "run.json").symlink_to(tmp / "real" / "run.json")
    return [*TRAIN, "--json", str(tmp / "run.json")]


def symlink_kept_target_written(tmp: Path, out: str) -> None:
    assert (tmp / "run.json").is_symlink()
    assert json.loads((tmp / "real" / "run.json").read_text())["steps"] == 1


def json_to_a_link_to_dev_null(tmp: Path, mp: pytest.MonkeyPatch) -> list[str]:
    (tmp / "null").symlink_to("/dev/null")  # the old code replaced the link; as root, --json /dev/null the device
    return [*TRAIN, "--json", str(tmp / "null")]


def dev_null_untouched(tmp: Path, out: str) -> None:
    import stat

    assert os.readlink(tmp / "null") == "/dev/null" and stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert "samples/s" in out


class FullAfter:
    """A file that takes ``room`` bytes, then fails every write with ``err``, unbuffered: as a
    disk that fills in the middle of torch.save (the /dev/full case fails only at the flush)."""

    def __init__(self, f, room: int, err: int) -> None:
        self.f, self.room, self.err = f, room, err

    def write(self, data) -> int:
        if len(data) > self.room:
            raise OSError(self.err, os.strerror(self.err))
        self.room -= len(data)
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.f.close()


def disk_fills_inside_torch_save(err: int) -> Callable[[Path, pytest.MonkeyPatch], list[str]]:
    def setup(tmp: Path, mp: pytest.MonkeyPatch) -> list[str]:
        mp.setattr(hpml.train.checkpoint, "open", lambda path, mode="r": FullAfter(open(path, mode), 4096, err),
                   raising=False)
        return [*TRAIN, "--checkpoint-dir", str(tmp / "ckpt"), "--json", str(tmp / "run.json"),
                "--log", str(tmp / "log.jsonl")]

    return setup


def sigterm_inside_torch_save(tmp: Path, mp: pytest.MonkeyPatch) -> list[str]:
    from hpml.cli import Terminated

    class TermAfter(FullAfter):
        def write(self, data) -> int:
            if len(data) > self.room:
                raise Terminated()  # what the SIGTERM handler raises in whatever Python frame runs
            return super().write(data)

    mp.setattr(hpml.train.checkpoint, "open", lambda path, mode="r": TermAfter(open(path, mode), 4096, 0),
               raising=False)
    return [*TRAIN, "--checkpoint-dir", str(tmp / "ckpt")]


def checkpoint_dir_holding(kind: str) -> Callable[[Path, pytest.MonkeyPatch], list[str]]:
    def setup(tmp: Path, mp: pytest.MonkeyPatch) -> list[str]:
        ckpt = tmp / "ckpt"
        ckpt.mkdir()
        if kind == "dir":
            (ckpt / "last.ckpt").mkdir()
        elif kind == "fifo":
            os.mkfifo(ckpt / "last.ckpt")
        else:  # a link to a folder
            (tmp / "elsewhere").mkdir()
            (ckpt / "last.ckpt").symlink_to(tmp / "elsewhere")
        return [*TRAIN, "--checkpoint-dir", str(ckpt)]

    return setup


def no_training(tmp: Path, out: str) -> None:
    assert "samples/s" not in out  # refused before the work, not after it


def env(name: str, value: str, *args: str) -> Callable[[Path, pytest.MonkeyPatch], list[str]]:
    def setup(tmp: Path, mp: pytest.MonkeyPatch) -> list[str]:
        mp.setenv(name, value)
        return [*TRAIN, *[a.replace("{tmp}", str(tmp)) for a in args]]

    return setup


def report_disk_full(tmp: Path, mp: pytest.MonkeyPatch) -> list[str]:
    import hpml.report.command

    args = report_with_names(tmp)
    (tmp / "out").mkdir()
    (tmp / "out" / "index.md").write_text("a regular file\n")  # the earlier report

    def full(path, text, **kw):
        raise OSError(28, "No space left on device")

    mp.setattr(hpml.report.command, "write_text_atomic", full)
    return args


def gate_repeats(flag: str = "", config: str = "") -> Callable[[Path, pytest.MonkeyPatch], list[str]]:
    """``hpml gate --base HEAD`` with ``--repeats flag`` or a pyproject saying ``repeats = config``;
    the run would be sessions of minutes, so a refusal must come before them."""
    def setup(tmp: Path, mp: pytest.MonkeyPatch) -> list[str]:
        mp.chdir(tmp)
        args = ["gate", "--base", "HEAD"]
        if config:
            (tmp / "pyproject.toml").write_text(f"[tool.hpml.gate]\nrepeats = {config}\n")
            args += ["--config", str(tmp / "pyproject.toml")]
        return [*args, "--repeats", flag] if flag else args

    return setup


def gate_interrupted(tmp: Path, mp: pytest.MonkeyPatch) -> list[str]:
    import hpml.gate.command

    def interrupted(args, config):
        raise KeyboardInterrupt

    mp.setattr(hpml.gate.command, "_summary_mode", interrupted)
    return ["gate", "--storage", str(tmp)]


FAULTS += [
    # 1. no code from a model folder runs, and transformers never prompts for it
    Fault("hf-folder-auto-map", 1, lambda tmp, mp: hf_folder_with_custom_code(tmp), 2, "never runs code",
          kept=lambda tmp, out: not (tmp / MARKER).exists(), absent=("trust_remote_code",), issue=33),
    Fault("hf-config-file-auto-map", 1, lambda tmp, mp: hf_folder_with_custom_code(tmp, file=True), 2,
          "never runs code", kept=lambda tmp, out: not (tmp / MARKER).exists(), issue=33),
    # 2. index.md: names are text, never HTML or links
    Fault("report-hostile-optimization-name", 2, lambda tmp, mp: report_with_names(tmp, HOSTILE), 0, "",
          kept=index_md_is_inert, issue=33),
    Fault("report-hostile-cpu-name", 2, lambda tmp, mp: report_with_names(tmp, machine=HOSTILE), 0, "",
          kept=index_md_is_inert, issue=33),
    Fault("report-hostile-profile-name", 2, lambda tmp, mp: report_with_names(tmp, profile=HOSTILE), 0, "",
          kept=index_md_is_inert, issue=33),
    # 3. the --weights refusal never repeats torch's weights_only=False advice
    Fault("weights-malicious-pickle", 3, malicious_weights, 2, "posix.system",
          kept=lambda tmp, out: not (tmp / MARKER).exists(), absent=("weights_only",), issue=33),
    Fault("weights-malicious-legacy-pickle", 3, lambda tmp, mp: malicious_weights(tmp, mp, legacy=True), 2,
          "posix.system", kept=lambda tmp, out: not (tmp / MARKER).exists(), absent=("weights_only",), issue=33),
    # 4. special files: refused before the work, or written through; symlinks followed
    Fault("json-is-a-fifo", 4, lambda tmp, mp: [*TRAIN, "--json", str(fifo(tmp))], 2, "FIFO",
          kept=lambda tmp, out: (still_a_fifo(tmp, out), no_training(tmp, out)), issue=33),
    Fault("json-is-a-symlink", 4, symlinked_json, 0, "", kept=symlink_kept_target_written, issue=33),
    Fault("json-is-a-link-to-dev-null", 4, json_to_a_link_to_dev_null, 0, "", kept=dev_null_untouched, issue=33),
    Fault("gate-json-is-a-fifo", 4, lambda tmp, mp: ["gate", "--storage", str(tmp), "--json", str(fifo(tmp))], 2,
          "FIFO", kept=still_a_fifo, issue=33),
    # 5. a disk that fills inside torch.save: OSError, one line, exit 1, record and log kept
    Fault("disk-fills-inside-torch-save", 5, disk_fills_inside_torch_save(28), 1, "ENOSPC",
          kept=record_and_log_kept, issue=33),
    Fault("quota-exceeded-inside-torch-save", 5, disk_fills_inside_torch_save(122), 1, "EDQUOT",
          kept=record_and_log_kept, issue=33),
    Fault("sigterm-inside-torch-save", 5, sigterm_inside_torch_save, 143, "terminated by SIGTERM", issue=33),
    # 8. hangs: --log on a FIFO was read before the first epoch's line
    Fault("log-is-a-fifo", 8, lambda tmp, mp: [*TRAIN, "--log", str(fifo(tmp))], 2, "FIFO",
          kept=still_a_fifo, issue=33),
    Fault("last-ckpt-is-a-fifo", 8, checkpoint_dir_holding("fifo"), 2, "FIFO", kept=no_training, issue=33),
    # 16. report: a full disk keeps the earlier report; "$" is no mathtext
    Fault("report-mathtext-name", 16, lambda tmp, mp: report_with_names(tmp, r"$\frac{$"), 0, "",
          kept=lambda tmp, out: r"$\frac{$" in (tmp / "out" / "index.html").read_text(), issue=33),
    Fault("report-mathtext-dataset", 16, lambda tmp, mp: report_with_names(tmp, dataset=r"c$\sqrt{$"), 0, "",
          kept=lambda tmp, out: r"c$\sqrt{$" in (tmp / "out" / "index.html").read_text(), issue=33),
    Fault("report-disk-full", 16, report_disk_full, 1, "ENOSPC",
          kept=unchanged(lambda tmp: tmp / "out" / "index.md"), issue=33),
    # 17. numbers from the environment and the CLI
    Fault("dist-timeout-nan", 17, env("HPML_DIST_TIMEOUT", "nan"), 2, "HPML_DIST_TIMEOUT", issue=33),
    Fault("dist-timeout-inf", 17, env("HPML_DIST_TIMEOUT", "inf"), 2, "HPML_DIST_TIMEOUT", issue=33),
    Fault("omp-num-threads-abc", 17, env("OMP_NUM_THREADS", "abc", "--nproc", "2"), 2, "OMP_NUM_THREADS", issue=33),
    Fault("seed-2-to-the-64", 17, argv("--seed", "18446744073709551616"), 2, "seed must be in", issue=33),
    Fault("seed-negative", 17, argv("--seed", "-1"), 2, "seed must be in", issue=33),
    Fault("bench-pairs-zero-under-train", 17, env("HPML_BENCH_PAIRS", "0"), 2, "HPML_BENCH_PAIRS", issue=33),
    # 21. checks before the work, not after it
    Fault("last-ckpt-is-a-directory", 21, checkpoint_dir_holding("dir"), 2, "is a directory", kept=no_training,
          issue=33),
    Fault("last-ckpt-links-to-a-directory", 21, checkpoint_dir_holding("link"), 2, "is a directory",
          kept=no_training, issue=33),
    Fault("stray-rank-keeps-output-checks", 21, env("RANK", "1", "--json", "{tmp}"), 2, "--json", issue=33),
    Fault("gate-base-repeats-2", 21, gate_repeats(flag="2"), 2, "--repeats must be >= 3", issue=33),
    Fault("gate-config-repeats-2", 21, gate_repeats(config="2"), 2, "repeats must be >= 3", issue=33),
    # 22. empty values
    Fault("model-empty", 22, argv("--model", ""), 2, "--model: empty value", issue=33),
    Fault("json-empty", 22, argv("--json", ""), 2, "--json: empty value", issue=33),
    Fault("report-out-empty", 22, lambda tmp, mp: ["report", "--out", ""], 2, "--out: empty value", issue=33),
    # 25. wording
    Fault("gate-interrupt-names-no-checkpoint", 25, gate_interrupted, 130, "interrupted",
          absent=("checkpoint",), issue=33),
]


def imagenet_with(tmp: Path, *, meta: object = None, loop: str = "") -> list[str]:
    data = imagenet_dir(tmp, meta=meta)
    if loop == "class":  # a class folder that is a symlink loop
        (data / "imagenet" / "train" / "n09999999").symlink_to(data / "imagenet" / "train" / "n09999999")
    elif loop == "image":  # two image names pointing at each other
        folder = data / "imagenet" / "train" / "n01440764"
        (folder / "a.JPEG").symlink_to(folder / "b.JPEG")
        (folder / "b.JPEG").symlink_to(folder / "a.JPEG")
    return ["train", "--model", "resnet18", "--dataset", "imagenet", "--device", "cpu", "--image-size", "32",
            "--steps", "1", "--batch-size", "2", "--no-progress", "--data-dir", str(data)]


def unreadable_amazon_csv(err: int) -> Callable[[Path, pytest.MonkeyPatch], list[str]]:
    def setup(tmp: Path, mp: pytest.MonkeyPatch) -> list[str]:
        import pyarrow.csv

        import hpml.data.amazon

        root = tmp / "data" / "amazon_review_polarity_csv"
        root.mkdir(parents=True)
        for split in ("train", "test"):
            (root / f"{split}.csv").write_text('"1","t","a review"\n"2","t","another"\n')

        def refuse(path, *args, **kwargs):  # what reading a mode-000 file raises (root reads it anyway)
            raise OSError(err, os.strerror(err), str(path))

        mp.setattr(pyarrow.csv, "read_csv", refuse)
        mp.setattr(hpml.data.amazon, "open", refuse, raising=False)
        return ["train", "--dataset", "amazon_polarity", "--model-preset", "tiny", "--device", "cpu", "--steps", "1",
                "--data-dir", str(tmp / "data")]

    return setup


def gate_summary(tmp: Path, *, duplicate: bool = False) -> Path:
    from hpml.results.summary import load_summary

    source = sorted((Path(__file__).parents[1] / "report" / "fixtures" / "storage").rglob("0003_*.json"))[0]
    summary = load_summary(source)
    if duplicate:  # the same gated row twice: the last copy used to win silently
        row = next(r for r in summary["rows"] if r.get("optimization") == "channels_last")
        summary["rows"].append({**row, "speedup_vs_baseline": 0.5})
    path = tmp / "summary.json"
    path.write_text(json.dumps(summary))
    return path


def newest_summary_entry(kind: str) -> Callable[[Path, pytest.MonkeyPatch], list[str]]:
    def setup(tmp: Path, mp: pytest.MonkeyPatch) -> list[str]:
        folder = tmp / "store" / "summaries"
        folder.mkdir(parents=True)
        gate_summary(tmp).rename(folder / "20260101T000000Z_p1_aaaaaaaa.json")
        newest = folder / "20270101T000000Z_p1_bbbbbbbb.json"
        if kind == "dir":
            newest.mkdir()
        else:  # a dangling link
            newest.symlink_to(tmp / "gone.json")
        return ["gate", "--storage", str(tmp / "store")]

    return setup


def empty_cifar(tmp: Path, mp: pytest.MonkeyPatch) -> list[str]:
    root = tmp / "data" / "cifar-10-batches-py"
    root.mkdir(parents=True)
    for name in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]:
        with open(root / name, "wb") as f:
            pickle.dump({b"data": np.zeros((0, 3072), np.uint8), b"labels": []}, f, protocol=2)
    return ["train", "--model", "resnet18", "--dataset", "cifar10", "--device", "cpu", "--steps", "1",
            "--batch-size", "2", "--data-dir", str(tmp / "data")]


FAULTS += [
    # 12. ImageNet trees
    Fault("imagenet-meta-mixed-key-types", 12,
          lambda tmp, mp: imagenet_with(tmp, meta=({1: ("a",), "n01440764": ("b",)}, ["n01440764"])), 2,
          "corrupt ImageNet meta", issue=33),
    Fault("imagenet-meta-val-wnids-not-a-list", 12,
          lambda tmp, mp: imagenet_with(tmp, meta=({"n01440764": ("a",), "n01443537": ("b",)}, "n01440764")), 2,
          "corrupt ImageNet meta", issue=33),
    Fault("imagenet-class-folder-symlink-loop", 12, lambda tmp, mp: imagenet_with(tmp, loop="class"), 2,
          "Too many levels of symbolic links", issue=33),
    Fault("imagenet-image-symlink-loop", 12, lambda tmp, mp: imagenet_with(tmp, loop="image"), 2,
          "Too many levels of symbolic links", issue=33),
    # 13. an Amazon CSV that cannot be read
    Fault("amazon-csv-permission-denied", 13, unreadable_amazon_csv(13), 2, "EACCES", issue=33),
    Fault("amazon-csv-io-error", 13, unreadable_amazon_csv(5), 2, "EIO", issue=33),
    # 19. the gate fails closed
    Fault("gate-summary-holds-a-row-twice", 19,
          lambda tmp, mp: ["gate", "--summary", str(gate_summary(tmp, duplicate=True))], 2, "twice", issue=33),
    Fault("gate-newest-summary-is-a-folder", 19, newest_summary_entry("dir"), 2, "is not a file", issue=33),
    Fault("gate-newest-summary-is-a-dangling-link", 19, newest_summary_entry("link"), 2, "is not a file", issue=33),
    # 25. wording
    Fault("cifar-empty-batch", 25, empty_cifar, 2, "holds no images", absent=("refusing",), issue=33),
]


def warns_then(extra: list[str]) -> Callable[[Path, pytest.MonkeyPatch], list[str]]:
    """A library warning (two lines in Python's format) during a run given ``extra``."""
    import warnings

    import hpml.cli

    def setup(tmp: Path, mp: pytest.MonkeyPatch) -> list[str]:
        real = hpml.cli.config_from_args

        def noisy(args):
            warnings.warn("a library's warning\nwith a second line", UserWarning)
            return real(args)

        mp.setattr(hpml.cli, "config_from_args", noisy)
        return [*TRAIN, *extra]

    return setup


def report_with_a_corrupt_file(tmp: Path, *, good: bool) -> list[str]:
    args = report_with_names(tmp) if good else ["report", str(tmp / "storage"), "--out", str(tmp / "out")]
    (tmp / "storage").mkdir(exist_ok=True)
    (tmp / "storage" / "0002_half-written.json").write_text('{"benchmarks": [')
    return args


FAULTS += [
    # 14. an input size the model cannot take: one line before training, not the first step's traceback
    Fault("vit-b-16-at-8-px", 14, lambda tmp, mp: [*BASE, "--model", "torchvision:vit_b_16", "--batch-size", "4",
                                                  "--steps", "1"], 2, "cannot be built for 8 px", issue=33),
    Fault("squeezenet-at-8-px", 14, lambda tmp, mp: [*BASE, "--model", "torchvision:squeezenet1_1", "--batch-size",
                                                    "4", "--steps", "1"], 2, "cannot take this run's 8 px", issue=33),
    # 24. one line on stderr
    Fault("warning-then-bad-input", 24, warns_then(["--lr", "nan"]), 2, "lr must be",
          kept=lambda tmp, out: "hpml: warning: UserWarning: a library's warning" in out, issue=33),
    Fault("report-only-a-corrupt-file", 24, lambda tmp, mp: report_with_a_corrupt_file(tmp, good=False), 2,
          "1 skipped", issue=33),
    Fault("report-corrupt-file-beside-a-good-run", 24, lambda tmp, mp: report_with_a_corrupt_file(tmp, good=True),
          0, "", kept=lambda tmp, out: "skipped" in out, issue=33),
]


def check_one_line(code: int, err: str, fault: Fault) -> None:
    lines = err.strip().splitlines()
    assert "Traceback" not in err, err
    if fault.code == 0:
        assert not lines, err
        return
    assert len(lines) == 1, err
    assert fault.stderr in lines[0], err
    assert lines[0].startswith(("hpml: ", "hpml train: ", "hpml gate: ", "hpml report: ")), err  # argparse: its prog
    for text in fault.absent:
        assert text not in lines[0], err


@pytest.mark.parametrize("fault", [pytest.param(f, id=f"{f.group}-{f.id}" if f.issue == 14 else f"i{f.issue}.{f.group}-{f.id}",
                                                marks=f.marks) for f in FAULTS])
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


# --- issue 33, groups 10, 18 and 24: what stopped ranks leave (a launcher of tests/faults/rank_fns.py) --

#: ``hpml train --nproc 2`` whose ranks run rank_fns.hold instead of training: the CLI's
#: signal handling and the real launcher, seconds instead of a ResNet's minute of start-up.
HOLDING_CLI = """
import sys
import hpml.distributed
from hpml.cli import main
from hpml.distributed.ranks import spawn
import rank_fns
hpml.distributed.launch_run = lambda cfg, nproc, **options: spawn(rank_fns.hold, nproc, (sys.argv[1],), threads=1)
sys.exit(main([*sys.argv[2:], "--nproc", "2"]))
"""
#: The launcher alone (no run config to build): for a SIGKILL, which no CLI handles.
HOLDING_SPAWN = """
import sys
from hpml.distributed.ranks import spawn
import rank_fns
spawn(rank_fns.hold, 2, (sys.argv[1],), threads=1)
"""


def start_holding_ranks(tmp: Path, launcher: str) -> subprocess.Popen:
    """``launcher``, once both its ranks hold their semaphore and their loader worker."""
    (tmp / "tmp").mkdir()
    (tmp / "ready").mkdir()
    env = {**os.environ, "TMPDIR": str(tmp / "tmp"), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", launcher, str(tmp / "ready"), *TRAIN], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(list((tmp / "ready").iterdir())) < 2:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    assert [p for p in (tmp / "tmp").iterdir() if p.name.startswith("pymp-")]  # the premise: workers made them
    return proc


def assert_nothing_left(tmp: Path, ranks: list[psutil.Process]) -> None:
    """No rank or loader worker runs 20 s on, and no pymp-* or rendezvous folder is left."""
    def alive(p: psutil.Process) -> bool:
        try:
            return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    deadline = time.monotonic() + 20
    while any(map(alive, ranks)) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [p for p in ranks if alive(p)]
    for p in left:
        p.kill()
    assert not left, "ranks or loader workers outlived their launcher"
    assert [p.name for p in (tmp / "tmp").iterdir() if p.name.startswith(("pymp-", "hpml-"))] == []


@pytest.mark.ddp
@pytest.mark.parametrize("sig,line", [(signal.SIGTERM, "terminated by SIGTERM"), (signal.SIGINT, "interrupted")])
def test_a_stopped_nproc_launcher_is_one_line_and_leaves_nothing(tmp_path: Path, sig: int, line: str) -> None:
    """33.10 and 33.24a: ranks and their loader workers died by the launcher's SIGTERM, leaving
    pymp-* folders, and the resource tracker warned of leaked semaphores on stderr (own case:
    Ctrl-C of the launcher, exit 130)."""
    proc = start_holding_ranks(tmp_path, HOLDING_CLI)
    ranks = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err
    assert err.strip().splitlines() == [f"hpml: {line} (the last epoch checkpoint, if any, is intact)"]
    assert_nothing_left(tmp_path, ranks)


@pytest.mark.ddp
def test_ranks_of_a_sigkilled_launcher_end_quietly(tmp_path: Path) -> None:
    """33.18: the ranks of a launcher killed with -9 stop themselves without a word (no
    traceback, no leaked-semaphore warning) and leave no process or folder (own case:
    their loader workers and the workers' pymp-* folders too)."""
    proc = start_holding_ranks(tmp_path, HOLDING_SPAWN)
    ranks = psutil.Process(proc.pid).children(recursive=True)
    proc.kill()
    proc.wait(timeout=30)
    assert_nothing_left(tmp_path, ranks)
    out, err = proc.communicate(timeout=30)  # the ranks' stderr is the launcher's: EOF once they are gone
    assert err == "", err


WORKER_TERMINATED = """
import psutil, signal, torch
from torch.utils.data import TensorDataset
from hpml.data.loader import LoaderOptions, make_loader
batches = iter(make_loader(TensorDataset(torch.zeros(64, 2)), LoaderOptions(batch_size=4, num_workers=1)))
next(batches)  # the worker has sent a batch: its pymp-* folder exists
worker = psutil.Process().children()[0]
worker.send_signal(signal.SIGTERM)  # as a SIGTERM to the process group reaches it
worker.wait(30)
del batches
"""


def test_a_loader_worker_ends_quietly_on_sigterm(tmp_path: Path) -> None:
    """33.10 (own case): a SIGTERM sent to the process group of ``hpml train --opt workers``
    reaches its loader workers, which kept their pymp-* folders (and the main process, stopping
    at the same moment, printed DataLoader's "worker ... is killed by signal" traceback)."""
    proc = subprocess.run([sys.executable, "-c", WORKER_TERMINATED], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TMPDIR": str(tmp_path), "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("pymp-")] == []


RECEIVER_LEFT = """
import os, socket, time
from multiprocessing import resource_sharer
from hpml.data.loader import _seed_worker
_seed_worker(0)  # what every loader worker runs first
handle = resource_sharer.DupFd(os.open(os.devnull, os.O_RDONLY))  # a batch's shared memory, offered
receiver = socket.socket(socket.AF_UNIX)
receiver.connect(resource_sharer._resource_sharer._address)
receiver.close()  # the training process, stopped mid-handshake
time.sleep(1)  # the worker's sharing thread meets the broken handshake
"""


def test_a_receiver_stopped_mid_batch_is_no_traceback_in_the_worker() -> None:
    """33.24 (found here): a rank stopped while it fetched a batch made its loader worker's
    fd-sharing thread print a 17-line "[rank1]: Traceback ... answer_challenge" (1 run in 8
    of the SIGINT case below)."""
    proc = subprocess.run([sys.executable, "-c", RECEIVER_LEFT], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


FRESH_SESSION = """
from hpml.bench.fresh import FreshSide
from hpml.bench.session import BenchSession
from hpml.bench.matrix import Case
from hpml.bench.profiles import get_profile
from hpml.bench.workloads import inference_workload
side = FreshSide(Case("inference", "digits", "cpu", "host_allocator"), BenchSession(get_profile("smoke"), None),
                 inference_workload)
print(side._proc.pid, flush=True)
import time; time.sleep(600)
"""


@pytest.mark.slow
def test_a_killed_session_leaves_no_fresh_process_folder(tmp_path: Path) -> None:
    """33.10: a benchmark session with a fresh-process row (pytest has no SIGTERM handler)
    left its pymp-* folder, which holds the forkserver's socket."""
    session = subprocess.Popen([sys.executable, "-c", FRESH_SESSION], stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "TMPDIR": str(tmp_path), "OMP_NUM_THREADS": "1"})
    side = psutil.Process(int(session.stdout.readline()))
    helpers = [side, *psutil.Process(session.pid).children(recursive=True)]  # the forkserver, the tracker
    assert any(p.name.startswith("pymp-") for p in tmp_path.rglob("*"))  # the premise
    session.send_signal(signal.SIGTERM)
    session.wait(30)
    gone, alive = psutil.wait_procs(helpers, timeout=60)
    assert not alive
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(("pymp-", "hpml-"))] == []


# --- issue 33, groups 6 and 7: the benchmark session's storage (inner pytest sessions) -----

BENCH_CONFTEST = "from hpml.bench.plugin import *  # noqa: F401,F403  (hooks and fixtures by name)\n"
BENCH_INI = "[pytest]\naddopts = --hpml-row-budget=0.05 -p no:cacheprovider\nmarkers =\n    gpu: gpu\n    slow: slow\n"
BENCH_ROW = """
import time
import pytest
from hpml.bench.sides import Measured
from hpml.bench.matrix import Case

CASE = Case("train", "cifar10", "cpu", "baseline", "sgd")

def test_bench(benchmark, hpml_bench):
    hpml_bench.run(benchmark, CASE, lambda case, session: Measured(target=lambda: time.sleep(0.002),
                                                                     samples_per_round=8, batch_size=8))
"""


@pytest.fixture
def bench_suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    import torch._dynamo  # noqa: F401  (once per process: see tests/bench/test_plugin.py)

    for name in ("HPML_PLANTED_SLOWDOWN", "HPML_BENCH_PROFILE", "HPML_BENCH_PAIRS"):
        monkeypatch.delenv(name, raising=False)
    pytester.makeconftest(BENCH_CONFTEST)
    pytester.makeini(BENCH_INI)
    pytester.makepyfile(test_row=BENCH_ROW)
    return pytester


def unsaved_file(out: str) -> Path:
    line = next(x for x in out.splitlines() if "is kept in" in x)
    return Path(line.rsplit(" ", 1)[1])


@pytest.mark.parametrize("where", ["storage-is-a-file", "summaries-is-a-file", "json-is-a-fifo"])
def test_storage_checked_before_measuring(bench_suite: pytest.Pytester, where: str) -> None:
    """33.6: storage that cannot be written is exit 2 before the first row, not an INTERNALERROR
    after the last; a FIFO --benchmark-json (own case) is refused as hpml train's outputs are."""
    store = bench_suite.path / "store"
    args = [f"--benchmark-storage=file://{store}", "--benchmark-autosave"]
    if where == "storage-is-a-file":
        store.write_text("a regular file\n")
    elif where == "summaries-is-a-file":
        store.mkdir()
        (store / "summaries").write_text("a regular file\n")
    else:
        os.mkfifo(bench_suite.path / "out.json")
        args.append(f"--benchmark-json={bench_suite.path / 'out.json'}")
    result = bench_suite.runpytest(*args)
    assert result.ret == 2
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert "1 passed" not in result.stdout.str()  # nothing measured


@pytest.mark.parametrize("fails", ["run-file", "benchmark-json"])
def test_failed_final_save_keeps_the_screen_summary_and_json(bench_suite: pytest.Pytester,
                                                             monkeypatch: pytest.MonkeyPatch, fails: str) -> None:
    """33.6: a disk that fills at the end: the rows' screen and summary still appear, the
    measured JSON is kept in a named file, no 0-byte run file is left, and the session exits 1."""
    import pytest_benchmark.session
    from hpml.bench import storage

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    if fails == "run-file":
        monkeypatch.setattr(storage.os, "link", full)
    else:
        monkeypatch.setattr(pytest_benchmark.session.BenchmarkSession, "save_json", full)
    store = bench_suite.path / "store"
    result = bench_suite.runpytest(f"--benchmark-storage=file://{store}", "--benchmark-autosave",
                                   f"--benchmark-json={bench_suite.path / 'out.json'}")
    out = result.stdout.str()
    assert result.ret == 1, out
    assert "INTERNALERROR" not in out and "hpml speedups" in out and "run summary written" in out
    assert "ENOSPC" in out
    kept = json.loads(unsaved_file(out).read_text())
    assert [b["name"] for b in kept["benchmarks"]] == ["test_bench"]
    unsaved_file(out).unlink()
    assert all(p.stat().st_size > 0 for p in store.rglob("*.json"))  # no 0-byte run file
    assert list(store.rglob("0001_*.json")) == ([] if fails == "run-file" else list(store.rglob("0001_*.json")))


def test_concurrent_autosaves_keep_both_runs(tmp_path: Path) -> None:
    """33.7: sessions saving into one storage at once each keep their run, under their own number
    (threads race on the number here; the old FileStorage wrote both into one file)."""
    import threading

    from pytest_benchmark.logger import Logger

    from hpml.bench.storage import ExclusiveFileStorage

    stores = [ExclusiveFileStorage(tmp_path, Logger(Logger.QUIET), default_machine_id="m") for _ in range(8)]
    start = threading.Barrier(len(stores))

    def save(i: int) -> None:
        start.wait()
        stores[i].save({"run": i}, "same-second")

    threads = [threading.Thread(target=save, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    files = sorted((tmp_path / "m").glob("*_same-second.json"))
    assert [f.name[:4] for f in files] == [f"{n:04}" for n in range(1, 9)]
    assert sorted(json.loads(f.read_text())["run"] for f in files) == list(range(8))
    assert not list((tmp_path / "m").glob(".*.tmp"))


# --- issue 33: environment checks of the benchmark plugin, compare_runs (groups 20, 23, 25) --

@pytest.mark.parametrize("name,value", [("HPML_PLANTED_COMPUTE", "nan"), ("HPML_BENCH_EMULATED", "yes")])
def test_bad_benchmark_environment_is_exit_2_before_any_row(monkeypatch: pytest.MonkeyPatch, name: str,
                                                            value: str) -> None:
    """33.20: a bad planted fraction skipped every row and pytest exited 0; now the plugin
    refuses it while configuring (own case: the emulated-dtype switch)."""
    from hpml.bench import plugin

    monkeypatch.setenv(name, value)
    with pytest.raises(pytest.exit.Exception) as exc:
        plugin.pytest_configure(None)  # the environment is checked before the config is read
    assert exc.value.returncode == 2 and name in str(exc.value)


def test_bench_pairs_error_names_the_variable_not_an_option(monkeypatch: pytest.MonkeyPatch) -> None:
    """33.25: an HPML_BENCH_PAIRS error was blamed on --hpml-row-budget."""
    from hpml.bench.plugin import precision_from_options
    from hpml.bench.profiles import get_profile
    from hpml.errors import HpmlError

    monkeypatch.setenv("HPML_BENCH_PAIRS", "0")
    with pytest.raises(HpmlError) as exc:
        precision_from_options(get_profile("smoke"), None, None)
    assert str(exc.value).startswith("HPML_BENCH_PAIRS") and "--hpml" not in str(exc.value)


@pytest.mark.parametrize("field,value", [("speedup_vs_baseline", "1.5"), ("speedup_vs_baseline", -1.2),
                                         ("speedup_interval", [0.0, 1.3])])
def test_compare_runs_refuses_broken_speedups(tmp_path: Path, capsys, field: str, value: object) -> None:
    """33.23: string or negative speedups were compared (own case: an interval reaching 0)."""
    from tools.compare_runs import main as compare_main

    source = sorted((Path(__file__).parents[1] / "report" / "fixtures" / "storage").rglob("000*.json"))[:2]
    runs = []
    for i, path in enumerate(source):
        run = json.loads(path.read_text())
        if i == 1:
            next(b for b in run["benchmarks"] if "phase" in b["extra_info"])["extra_info"][field] = value
        runs.append(tmp_path / f"{i}.json")
        runs[-1].write_text(json.dumps(run))
    assert compare_main([str(p) for p in runs]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and field in err[0] and "Traceback" not in err[0]


@pytest.mark.parametrize("kind", ["tokenizers-is-a-file", "entry-is-a-folder", "cache-is-a-file"])
def test_tokenizer_cache_is_only_a_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    """33.15: a tokenizer cache that is a file, or a folder where an entry belongs, made
    text runs end in a traceback; the run now trains its tokenizer and goes on uncached
    (own case: $HPML_CACHE_DIR itself a file)."""
    from hpml.data.tokenizer import trained_tokenizer

    cache = tmp_path / "cache"
    if kind == "cache-is-a-file":
        cache.write_text("a regular file\n")
    elif kind == "tokenizers-is-a-file":
        cache.mkdir()
        (cache / "tokenizers").write_text("a regular file\n")
    else:  # the entry's name taken by a folder
        real = hpml.data.tokenizer.write_bytes_atomic

        def in_the_way(path, data, **kw):
            Path(path).mkdir(parents=True, exist_ok=True)
            return real(path, data, **kw)

        monkeypatch.setattr(hpml.data.tokenizer, "write_bytes_atomic", in_the_way)
    monkeypatch.setenv("HPML_CACHE_DIR", str(cache))
    texts = [f"review number {i} was {'good' if i % 2 else 'bad'} and long enough" for i in range(200)]
    tokenizer = trained_tokenizer("i33", lambda: texts, vocab_size=60)
    assert tokenizer.vocab_size > 0 and "not writable" in tokenizer.origin
    if kind != "cache-is-a-file":
        assert cache.is_dir()  # nothing it held was replaced


# --- issue 33, group 9: what a gate killed with SIGKILL leaves ------------------------------

def test_gate_session_dies_with_a_killed_gate(tmp_path: Path) -> None:
    """33.9: a baton session outlived a SIGKILLed ``hpml gate --base``, re-parented to PID 1."""
    code = ("import subprocess, sys, time; from pathlib import Path; from hpml.bench import baton; "
            "child = baton.spawn('base', ['sleep', '120'], cwd=Path('.'), env={}, output=subprocess.DEVNULL); "
            "print(child.proc.pid, flush=True); time.sleep(120)")
    gate = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    session = int(gate.stdout.readline())
    gate.kill()
    gate.wait(timeout=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(session, 0)
        except ProcessLookupError:
            break
        try:  # reap it if it was ours (it is the gate's child, now init's)
            os.waitpid(session, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.05)
    else:
        os.kill(session, signal.SIGKILL)
        pytest.fail("the session outlived its gate")


@pytest.mark.parametrize("owner_alive", [False, True])
def test_stale_gate_worktree_is_swept(tmp_path: Path, owner_alive: bool) -> None:
    """33.9: the base worktree of a SIGKILLed gate stayed registered; the next gate removes it
    (own case: the worktree of a gate still running is left alone)."""
    from hpml.gate.revisions import OWNER, sweep_stale_worktrees

    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], cwd=repo, check=True)
    tmp = tmp_path / "hpml-gate-k1ll3d"
    tmp.mkdir()
    subprocess.run([*git, "worktree", "add", "-q", "--detach", str(tmp / "base")], cwd=repo, check=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp / OWNER).write_text(str(os.getpid() if owner_alive else dead.pid))
    sweep_stale_worktrees(repo)
    listed = subprocess.run(["git", "worktree", "list"], cwd=repo, capture_output=True, text=True).stdout
    assert (str(tmp / "base") in listed) == owner_alive
    assert (tmp / "base").exists() == owner_alive
