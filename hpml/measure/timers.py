"""Wall-clock timing of a region with the device synchronized at both ends (docs/measurement.md)."""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from hpml.errors import HpmlError
from hpml.measure.tracking import Tracking

DeviceLike = torch.device | str


def as_device(device: DeviceLike) -> torch.device:
    """``torch.device(device)``, refusing (with a message) a CUDA/MPS device this machine lacks."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise HpmlError(f"invalid device {device!r}; use e.g. 'cpu', 'cuda' or 'cuda:0'") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise HpmlError(f"device {device!r} requested but torch.cuda.is_available() is False; use 'cpu'")
    if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise HpmlError(f"device {device!r} requested but MPS is not available; use 'cpu'")
    return dev


def synchronize(device: DeviceLike) -> None:
    """Block the host until all work queued on ``device`` has finished: only at measurement boundaries."""
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)  # host-device sync
    elif dev.type == "mps":
        torch.mps.synchronize()  # host-device sync


class Timer(Tracking):
    """Context manager timing a region: ``.seconds``, wall clock between synchronized endpoints."""

    def __init__(self, device: DeviceLike = "cpu") -> None:
        self.device = as_device(device)
        self.seconds: float = math.nan
        self._t0 = 0.0

    def start(self) -> None:
        synchronize(self.device)  # host-device sync: earlier queued work is not ours
        self._t0 = time.perf_counter()

    def stop(self) -> dict[str, Any]:
        """``seconds`` of the region."""
        synchronize(self.device)  # host-device sync: all work queued in the region is done
        self.seconds = time.perf_counter() - self._t0
        return {"seconds": self.seconds}
