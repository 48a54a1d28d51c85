"""Planted regressions for testing the gate: a sleep or real work added to every measured call.

``HPML_PLANTED_SLOWDOWN`` sleeps that fraction of each call's duration; ``HPML_PLANTED_COMPUTE``
adds that fraction of real matmul work, which behaves like a code change (docs/studies/gate-power.md).
Both act inside :func:`hpml.bench.sides.timed_call`, never in hpml's training code.
"""

from __future__ import annotations

import math
import os
import time

import torch

from hpml.environment import VARS
from hpml.measure import synchronize

PLANTED_SLOWDOWN_ENV = "HPML_PLANTED_SLOWDOWN"


def planted_slowdown(environ: dict[str, str] | None = None) -> float:
    """The ``HPML_PLANTED_SLOWDOWN`` fraction (0.0 when unset); testing only."""
    return VARS[PLANTED_SLOWDOWN_ENV].get(environ, default=0.0)




PLANTED_COMPUTE_ENV = "HPML_PLANTED_COMPUTE"
#: Plant the work in this optimization's rows only (the power study's "one optimization slower").
PLANTED_ONLY_ENV = "HPML_PLANTED_COMPUTE_ONLY"


def planted_compute(environ: dict[str, str] | None = None, optimization: str | None = None) -> float:
    """The ``HPML_PLANTED_COMPUTE`` fraction (0.0 when unset, or when ``HPML_PLANTED_COMPUTE_ONLY``
    names another optimization than the row's); testing the gate only."""
    environ = environ if environ is not None else os.environ
    only = environ.get(PLANTED_ONLY_ENV, "").strip()
    if only and optimization != only:
        return 0.0
    return VARS[PLANTED_COMPUTE_ENV].get(environ, default=0.0)


class PlantedCompute:
    """Real work appended to every measured call: a regression to test the gate with (never a sleep).

    The work is a chain of small fp32 matmuls on the call's device, on the same cores
    and thread pool as the step, so a busy neighbour slows it like real code.  Its size
    is fixed, like a code change: ``fraction`` x the fastest of the first
    :attr:`CALIBRATION_CALLS` calls (warm-up included; the fastest is the undisturbed
    one), in matmuls at the fastest rate read so far: when the row starts, and again
    on the planted work of every calibration call (one reading of ~1 ms, slowed by a
    neighbour or a slow spell of the CPU, would shrink the work).  64 x 64 on CPU (~20 us
    each, fine-grained enough for calls of a millisecond); 1024 x 1024 on CUDA so the
    work is device compute, not launch overhead.
    """

    CALIBRATION_CALLS = 3

    def __init__(self, fraction: float, device: str) -> None:
        side = 1024 if device == "cuda" else 64
        g = torch.Generator().manual_seed(0)
        self.a = (torch.rand(side, side, generator=g) / side).to(device)  # rows sum < 1: no overflow
        self.out = torch.empty_like(self.a)
        self.fraction, self.device = fraction, device
        self.fastest_call, self.calls, self.matmuls = math.inf, 0, 0
        self._matmul(3)  # warm the kernel before timing it
        self.seconds_per_matmul = math.inf  # s per matmul: the fastest reading, the undisturbed rate
        for _ in range(3):
            self._timed_matmul(20)

    def _matmul(self, n: int) -> None:
        for _ in range(n):
            torch.mm(self.a, self.a, out=self.out)
        synchronize(self.device)  # host-device sync: the planted work is billed to this call

    def _timed_matmul(self, n: int) -> None:
        """``n`` matmuls, and the rate they ran at if it is the fastest yet."""
        start = time.perf_counter()
        self._matmul(n)
        self.seconds_per_matmul = min(self.seconds_per_matmul, max((time.perf_counter() - start) / n, 1e-9))

    def after_call(self, call_seconds: float) -> None:
        """Run the planted work after a call that took ``call_seconds`` (inside the timed region)."""
        if self.calls >= self.CALIBRATION_CALLS:
            self._matmul(self.matmuls)  # calibrated: a fixed amount of work
            return
        self.calls += 1
        self.fastest_call = min(self.fastest_call, call_seconds)
        self._timed_matmul(self._count())  # calibrating: the planted work is one more rate reading
        self.matmuls = self._count()  # fixed from the last calibration call on

    def _count(self) -> int:
        return max(1, round(self.fraction * self.fastest_call / self.seconds_per_matmul))

