"""Atomic checkpoints holding everything needed to resume bit-exactly on CPU, read with
``torch.load(weights_only=True)``: a shared ``last.ckpt`` must not be able to run code."""

from __future__ import annotations

import json
import os
import pickle
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hpml.errors import HpmlError, refused_global, unpickling_reason, squeezed_message
from hpml.files import atomic_write
from hpml.train.state import TrainState

CHECKPOINT_NAME = "last.ckpt"

#: Config fields that must match between a checkpoint and the run resuming it: anything
#: else (batch size, steps, optimizations, threads) may change between the two.
RESUME_MUST_MATCH = ("model", "dataset", "optimizer", "seed", "model_preset")

#: numpy's RNG-state types, resolved from live objects so the deprecated ``numpy.core`` is never imported.
_NUMPY_SAFE = [np.empty(0).__reduce__()[0], np.ndarray, np.dtype, type(np.dtype(np.uint32))]
# Process-wide (torch >= 2.4; the scoped `safe_globals` needs 2.5): numpy arrays rebuild
# data, never run code, so allowing them for every weights_only load is harmless.
torch.serialization.add_safe_globals(_NUMPY_SAFE)

#: Age (s) past which a killed writer's ``.last.ckpt.<random>.tmp`` is swept; a younger one may be live.
STALE_TMP_S = 60.0


def sweep_stale_tmp(path: str | Path, older_than_s: float = STALE_TMP_S) -> list[Path]:
    """Delete the temporary files a killed :func:`~hpml.files.atomic_write` left next to ``path``; returns them."""
    path = Path(path)
    removed = []
    now = time.time()
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            if now - tmp.stat().st_mtime > older_than_s:
                tmp.unlink()
                removed.append(tmp)
        except OSError:
            continue  # gone already, or not ours to delete
    return removed


def rng_states() -> dict[str, Any]:
    states = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    # Only when this process uses CUDA: get_rng_state_all() initialises every GPU.
    if torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


class _KeepsRaised:
    """A file for ``torch.save`` that keeps what its ``write`` raised, for re-raising."""

    def __init__(self, f) -> None:
        self.f, self.raised = f, None

    def write(self, data) -> int:
        try:
            return self.f.write(data)
        except BaseException as exc:
            self.raised = exc
            raise

    def flush(self) -> None:
        self.f.flush()


def save_checkpoint(path: str | Path, state: TrainState, **meta: Any) -> None:
    payload = {
        "model": state.module.state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "scaler": state.scaler.state_dict(),
        "scheduler": state.scheduler.state_dict(),
        "rng": rng_states(),
        "step": state.step,
        "epoch": state.epoch,
        # JSON round trip: plain types only, which weights_only loading accepts.
        **json.loads(json.dumps(meta, default=str)),
    }

    def write(tmp: str) -> None:
        # A Python file object makes a full disk an OSError(ENOSPC); torch's own writer says
        # "unexpected pos ..." with no errno.
        with open(tmp, "wb") as f:
            writer = _KeepsRaised(f)
            try:
                torch.save(payload, writer)
            except RuntimeError:
                if writer.raised is None:
                    raise
                raise writer.raised from None
            f.flush()
            os.fsync(f.fileno())

    atomic_write(path, write, parents=True)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's payload, loaded on the CPU (RNG setters take CPU tensors) without running code from it."""
    path = Path(path)
    if not path.is_file():
        raise HpmlError(f"no checkpoint to resume from at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if refused_global(exc) is None:  # not a refused global: a corrupt file
            raise HpmlError(f"checkpoint {path} is unreadable: {unpickling_reason(exc)}") from None
        raise HpmlError(
            f"checkpoint {path} refers to {refused_global(exc)} that a checkpoint written by hpml never "
            "holds; not loading it (it could run code)"
        ) from None
    except Exception as exc:  # zip/pickle corruption comes in many types
        raise HpmlError(f"checkpoint {path} is unreadable: {squeezed_message(exc)}") from None
    missing = [k for k in ("model", "optimizer", "scaler", "scheduler", "rng", "step", "epoch")
               if not isinstance(payload, dict) or k not in payload]
    if missing:
        raise HpmlError(f"checkpoint {path} is not an hpml checkpoint: missing {', '.join(missing)}")
    return payload


def check_resume_config(path: str | Path, saved: dict[str, Any] | None, cfg: Any) -> None:
    """Refuse to resume a checkpoint into a run of another model, dataset, optimizer or seed."""
    if not isinstance(saved, dict):
        return  # written by a library user without config metadata
    current = cfg.as_dict()
    diffs = [f"{k} {saved.get(k)!r} (checkpoint) vs {current.get(k)!r} (this run)"
             for k in RESUME_MUST_MATCH if k in saved and saved.get(k) != current.get(k)]
    if diffs:
        raise HpmlError(f"cannot resume from {path}: {'; '.join(diffs)}; "
                        "use the checkpoint's settings or another --checkpoint-dir")


def load_checkpoint(path: str | Path, state: TrainState, cfg: Any = None) -> dict[str, Any]:
    """Restore ``state`` from ``path``, refusing another run's checkpoint when ``cfg`` is given; returns its extra metadata."""
    path = Path(path)
    payload = read_checkpoint(path)
    if cfg is not None:
        check_resume_config(path, payload.get("config"), cfg)
    try:
        state.module.load_state_dict(payload["model"])
        state.optimizer.load_state_dict(payload["optimizer"])
        state.scaler.load_state_dict(payload["scaler"])
        state.scheduler.load_state_dict(payload["scheduler"])
        set_rng_states(payload["rng"])
    except KeyError as exc:
        raise HpmlError(f"checkpoint {path} does not fit this run (another optimizer or model?): "
                        f"its state has no entry {exc}") from None
    except Exception as exc:
        raise HpmlError(f"checkpoint {path} does not fit this run (another model?): {squeezed_message(exc)}") from None
    state.step, state.epoch = payload["step"], payload["epoch"]
    known = {"model", "optimizer", "scaler", "scheduler", "rng", "step", "epoch"}
    return {k: v for k, v in payload.items() if k not in known}

