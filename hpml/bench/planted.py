"""Planted regressions for testing the gate, inside :func:`hpml.bench.sides.timed_call`, never in training
code: ``HPML_PLANTED_SLOWDOWN`` sleeps, ``HPML_PLANTED_COMPUTE`` adds real work (docs/studies/gate-power.md)."""

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
    """The ``HPML_PLANTED_COMPUTE`` fraction (0.0 when unset or ``..._ONLY`` names another optimization)."""
    environ = environ if environ is not None else os.environ
    only = environ.get(PLANTED_ONLY_ENV, "").strip()
    if only and optimization != only:
        return 0.0
    return VARS[PLANTED_COMPUTE_ENV].get(environ, default=0.0)


class PlantedCompute:
    """fp32 matmuls after every measured call, on the step's cores: ``fraction`` x the fastest of the
    first calls, at the fastest matmul rate read, then fixed like a code change (docs/studies/gate-power.md)."""

    CALIBRATION_CALLS = 3

    def __init__(self, fraction: float, device: str) -> None:
        side = 1024 if device == "cuda" else 64
        g = torch.Generator().manual_seed(0)
        self.a = (torch.rand(side, side, generator=g) / side).to(device)  # rows sum < 1: no overflow
        self.out = torch.empty_like(self.a)
        self.fraction, self.device = fraction, device
        self.fastest_call, self.calls, self.matmuls = math.inf, 0, 0
        self._matmul(3)
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
            self._matmul(self.matmuls)
            return
        self.calls += 1
        self.fastest_call = min(self.fastest_call, call_seconds)
        self._timed_matmul(self._count())  # calibrating: the planted work is one more rate reading
        self.matmuls = self._count()

    def _count(self) -> int:
        return max(1, round(self.fraction * self.fastest_call / self.seconds_per_matmul))

