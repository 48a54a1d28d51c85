"""Atomic checkpoints holding everything needed to resume bit-exactly on CPU."""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hpml.errors import HpmlError
from hpml.train.state import TrainState

CHECKPOINT_NAME = "last.ckpt"


def atomic_write(path: str | Path, write) -> None:
    """Call ``write(tmp_path)`` then rename onto ``path``: a reader never sees half a file,
    and a run killed while writing leaves the previous file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def rng_states() -> dict[str, Any]:
    states = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(path: str | Path, state: TrainState, **meta: Any) -> None:
    payload = {
        "model": state.module.state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "scaler": state.scaler.state_dict(),
        "scheduler": state.scheduler.state_dict(),
        "rng": rng_states(),
        "step": state.step,
        "epoch": state.epoch,
        **meta,
    }
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path: str | Path, state: TrainState) -> dict[str, Any]:
    """Restore ``state`` from ``path``; returns the checkpoint's extra metadata."""
    path = Path(path)
    if not path.is_file():
        raise HpmlError(f"no checkpoint to resume from at {path}")
    try:
        # weights_only=False: the checkpoint holds RNG states (numpy arrays, tuples); hpml
        # only loads checkpoints it wrote itself.
        payload = torch.load(path, map_location=state.device, weights_only=False)
        state.module.load_state_dict(payload["model"])
        state.optimizer.load_state_dict(payload["optimizer"])
        state.scaler.load_state_dict(payload["scaler"])
        state.scheduler.load_state_dict(payload["scheduler"])
        set_rng_states(payload["rng"])
    except HpmlError:
        raise
    except Exception as exc:
        raise HpmlError(f"checkpoint {path} is unreadable or from another model: {exc}".splitlines()[0]) from exc
    state.step, state.epoch = payload["step"], payload["epoch"]
    known = {"model", "optimizer", "scaler", "scheduler", "rng", "step", "epoch"}
    return {k: v for k, v in payload.items() if k not in known}
