"""A run's outputs: the per-epoch JSON log and the checkpoint it resumes from."""

from __future__ import annotations

import json
from pathlib import Path

from hpml.errors import HpmlError, RunFailed
from hpml.files import atomic_write, os_error
from hpml.train.build import TrainingSetup
from hpml.train.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint, sweep_stale_tmp


def append_jsonl(path: Path, record: dict) -> None:
    """Append one JSON line by rewriting the file atomically: a full disk or a kill never truncates the log."""
    old = path.read_bytes() if path.exists() else b""
    line = (json.dumps(record) + "\n").encode()
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(old + line), parents=True)


class RunOutputs:
    """Writes each epoch's log line and checkpoint (main rank). A failed write raises one line naming path and
    errno, or with ``keep_going`` is kept and that path skipped, so a finished run still reports."""

    def __init__(self, work: TrainingSetup, log_path: str | Path | None, checkpoint_dir: str | Path | None,
                 *, resume: bool, keep_going: bool) -> None:
        self.work = work
        self.keep_going = keep_going
        self.failures: dict[str, str] = {}
        self.ckpt = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir else None
        if resume:
            if self.ckpt is None:
                raise HpmlError("--resume needs --checkpoint-dir")
            load_checkpoint(self.ckpt, work.state, work.cfg)
        if self.ckpt is not None and work.is_main:
            sweep_stale_tmp(self.ckpt)  # left by a run killed while writing (kill -9)
        self.log = Path(log_path) if (log_path and work.is_main) else None
        if self.log:
            self.log.parent.mkdir(parents=True, exist_ok=True)

    def write(self, metrics: dict) -> None:
        log, ckpt, work = self.log, self.ckpt, self.work
        if log:
            self._attempt("log", log, lambda: append_jsonl(log, metrics))
        if ckpt is not None and work.is_main:
            self._attempt("checkpoint", ckpt,
                          lambda: save_checkpoint(ckpt, work.state, config=work.cfg.as_dict(), metrics=metrics))

    def _attempt(self, what: str, path: Path, write) -> None:
        if str(path) in self.failures:
            return
        try:
            write()
        except OSError as exc:
            message = f"could not write {what} {path}: {os_error(exc)}"
            if not self.keep_going:
                raise RunFailed(message) from exc
            self.failures[str(path)] = message
