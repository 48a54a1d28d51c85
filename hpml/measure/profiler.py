"""A few training steps recorded by ``torch.profiler`` into a Chrome trace (ui.perfetto.dev)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from torch.profiler import ProfilerActivity, profile, schedule

from hpml.errors import HpmlError
from hpml.measure.timers import DeviceLike, as_device
from hpml.measure.tracking import Tracking
from hpml.files import atomic_write


class profile_trace(Tracking):
    """Context manager profiling ``steps`` steps after ``wait + warmup`` skipped ones; call :meth:`step` after each."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        device: DeviceLike,
        steps: int,
        *,
        wait: int = 1,
        warmup: int = 1,
        record_shapes: bool = False,
    ) -> None:
        if steps < 1 or wait < 0 or warmup < 0:
            raise HpmlError(f"profile_trace needs steps >= 1 and wait, warmup >= 0; got {steps=}, {wait=}, {warmup=}")
        self.path = Path(path)
        self.device = as_device(device)
        self.steps = steps
        self.wait = wait
        self.warmup = warmup
        self.written = False
        self._steps_seen = 0
        activities = [ProfilerActivity.CPU]
        if self.device.type == "cuda":
            activities.append(ProfilerActivity.CUDA)
        self._profile = profile(
            activities=activities,
            schedule=schedule(wait=wait, warmup=warmup, active=steps, repeat=1),
            on_trace_ready=self._export,
            record_shapes=record_shapes,
        )

    @property
    def total_steps(self) -> int:
        """Steps to run for a complete trace: wait + warmup + steps."""
        return self.wait + self.warmup + self.steps

    def step(self) -> None:
        """Mark the end of one step (advances the profiler's schedule)."""
        self._steps_seen += 1
        self._profile.step()

    def _export(self, prof: profile) -> None:
        # The temporary file's suffix is .tmp: export_chrome_trace gzips only a path ending in .gz.
        atomic_write(self.path, lambda tmp: prof.export_chrome_trace(str(tmp)), parents=True)
        self.written = True

    def start(self) -> None:
        self._profile.__enter__()

    def stop(self) -> dict[str, Any]:
        """Close the profiler; an error when the trace was never written (too few steps)."""
        self._profile.__exit__(None, None, None)
        if not self.written:
            raise HpmlError(
                f"profile_trace wrote no trace: it saw {self._steps_seen} step() calls but needs more "
                f"than wait + warmup = {self.wait + self.warmup}; call step() after every step"
            )
        return {}

    def abort(self) -> None:
        self._profile.__exit__(None, None, None)  # the block raised: its error is the one to see
