"""Wall-clock timing of a region with the device synchronized at both ends.

CUDA kernels run asynchronously: without a sync, ``time.perf_counter()`` around a
training step measures how fast Python *queues* kernels, not how fast they run.
:class:`Timer` therefore synchronizes the device when the region starts (so work
queued earlier is not billed to it) and when it ends (so work queued inside is).

>>> with Timer("cpu") as t:
...     _ = sum(range(1000))
>>> t.seconds > 0
True
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from hpml.errors import HpmlError
from hpml.measure.tracking import Tracking

DeviceLike = torch.device | str


def as_device(device: DeviceLike) -> torch.device:
    """``torch.device(device)``, refusing a CUDA/MPS device this machine does not have.

    Failing here, with a message, beats a CUDA assertion deep inside the first sync.
    """
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
    """Block the host until all work queued on ``device`` has finished; no-op on CPU.

    This forces a host-device sync: call it only at measurement boundaries, never
    inside a hot loop that is itself being timed.
    """
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)  # host-device sync
    elif dev.type == "mps":
        torch.mps.synchronize()  # host-device sync


class Timer(Tracking):
    """Context manager timing a region; ``.seconds`` is set when the region ends.

    ``seconds`` (s) is wall-clock time between synchronized endpoints, so it includes
    host work in the region (data loading, Python) as well as device work: this is the
    time that a phase's samples/s is computed from.  NaN until the region ends; a Timer
    can be reused, each ``with`` block overwrites it.
    """

    def __init__(self, device: DeviceLike = "cpu") -> None:
        self.device = as_device(device)
        self.seconds: float = math.nan  # s, wall clock
        self._t0 = 0.0

    def start(self) -> None:
        synchronize(self.device)  # host-device sync: earlier queued work is not ours
        self._t0 = time.perf_counter()

    def stop(self) -> dict[str, Any]:
        """``seconds`` of the region."""
        synchronize(self.device)  # host-device sync: all work queued in the region is done
        self.seconds = time.perf_counter() - self._t0
        return {"seconds": self.seconds}
