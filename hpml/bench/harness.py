"""Runs one benchmark row honestly and records what it measured.

The workload builders (:mod:`hpml.bench.workloads`) say *what* runs: a
:class:`Measured` with the call to time and how many samples it processes.  This module
decides *how* it is timed and recorded:

* ``benchmark.pedantic(call, rounds=R, warmup_rounds=W, iterations=1)`` with the
  profile's R and W: warm-up calls (compilation, cuDNN autotuning, allocator growth,
  the first worker start-up) are never measured;
* every measured call ends with a device synchronization
  (:func:`hpml.measure.timers.synchronize`), so queued CUDA work is billed to the call
  that queued it;
* the seed is fixed before each row is built; the thread count is recorded;
* peak host/device memory and bytes read are tracked around all the calls of the row;
* ``extra_info`` gets the keys the report and the gate read (:data:`EXTRA_KEYS`),
  including ``speedup_vs_baseline``: this row's samples/s over its baseline row's
  (same phase, dataset, model, device and optimizer) measured earlier in the same
  pytest session, or null when that baseline did not run;
* a row that does not apply is skipped with the reason; one that runs out of memory is
  skipped with the batch size, and the session goes on.

``HPML_PLANTED_SLOWDOWN`` (a fraction, e.g. ``0.2``) is for testing the regression gate
only: each measured call then sleeps that fraction of its own duration, inside the
timed region, so every benchmark looks that much slower.  It lives here, in the
harness, and never touches hpml's training code.
"""

from __future__ import annotations

import gc
import math
import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest
import torch

from hpml.bench.matrix import Case, skip_reason
from hpml.bench.profiles import Profile
from hpml.errors import HpmlError
from hpml.measure import IoTracker, MemoryTracker, PeakEstimate, machine_fingerprint, peak_estimate, peak_flags, synchronize
from hpml.train.allocator import host_allocator_tuned
from hpml.train.build import seed_everything
from hpml.train.optimizations import OPTIMIZATIONS, expand

SCHEMA = 1
PLANTED_SLOWDOWN_ENV = "HPML_PLANTED_SLOWDOWN"

#: The extra_info keys every hpml benchmark row carries (end-to-end rows add ``phases``).
EXTRA_KEYS = (
    "hpml_schema", "phase", "optimization", "dataset", "model", "device", "profile", "optimizer",
    "batch_size", "samples_per_round", "samples_per_s", "flops_per_sample", "achieved_flops",
    "peak_flops", "peak_fraction", "peak_rss_bytes", "peak_device_bytes", "read_bytes", "threads",
    "seed", "speedup_vs_baseline",
)


class NotApplicable(Exception):
    """Raised by a workload builder when the row cannot run here; the message is the skip reason."""


def planted_slowdown(environ: dict[str, str] | None = None) -> float:
    """The ``HPML_PLANTED_SLOWDOWN`` fraction (0.0 when unset); testing only."""
    raw = (environ if environ is not None else os.environ).get(PLANTED_SLOWDOWN_ENV, "").strip()
    if not raw:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise HpmlError(
            f"{PLANTED_SLOWDOWN_ENV}={raw!r}: expected a fraction >= 0 (0.2 makes every measured call 20% slower)"
        )
    return value


@dataclass
class Measured:
    """What a workload builder hands to the harness."""

    target: Callable[[], Any]  # one measured call
    samples_per_round: int  # samples processed by one call (accum_steps x batch for grad_accum)
    batch_size: int  # samples per (micro-)batch
    setup: Callable[[], None] | None = None  # before every call, untimed
    flops_per_sample: int | None = None  # None: no model compute in the call
    compute_dtype: torch.dtype | None = None  # dtype of the peak FLOP/s to compare with
    extra: dict[str, Any] = field(default_factory=dict)  # more extra_info (source, sizes, ...)
    phases: Callable[[int], dict[str, Any]] | None = None  # (measured calls) -> per-phase breakdown
    # (all calls) -> more extra_info measured elsewhere during the calls (e.g. in each rank)
    after: Callable[[int], dict[str, Any]] | None = None


def timed_call(target: Callable[[], Any], device: str, slowdown: float = 0.0) -> Callable[[], Any]:
    """``target`` followed by a device sync; with ``slowdown`` > 0, also a sleep of that
    fraction of the call's own duration (inside the timed region)."""
    if slowdown <= 0:
        def call() -> Any:
            out = target()
            synchronize(device)  # host-device sync: the call's queued work is billed to it
            return out
        return call

    def slowed() -> Any:
        start = time.perf_counter()
        out = target()
        synchronize(device)  # host-device sync
        time.sleep(slowdown * (time.perf_counter() - start))  # planted slowdown (testing only)
        return out
    return slowed


class BaselineBook:
    """Baseline throughputs measured so far in this session, for same-run speedups."""

    def __init__(self) -> None:
        self._rates: dict[tuple, float] = {}

    def record(self, case: Case, samples_per_s: float) -> None:
        self._rates[case.baseline_key] = samples_per_s

    def speedup(self, case: Case, samples_per_s: float | None) -> float | None:
        """``samples_per_s`` over the baseline's; None without a baseline or a measurement."""
        base = self._rates.get(case.baseline_key)
        if samples_per_s is None or not base:
            return None
        return samples_per_s / base


def release_memory(device: str) -> None:
    gc.collect()
    if device == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


class BenchSession:
    """Per-pytest-session state of the benchmarks: profile, baselines, data, caches."""

    def __init__(self, profile: Profile, real_data: Any, slowdown: float = 0.0) -> None:
        self.profile = profile
        self.real_data = real_data  # hpml.bench.realdata.RealData
        self.slowdown = slowdown
        self.book = BaselineBook()
        self.flops_cache: dict[tuple, int] = {}
        self._peaks: dict[tuple, PeakEstimate] = {}

    def peak_flops(self, device: str, dtype: torch.dtype) -> PeakEstimate:
        """Peak matmul FLOP/s of ``device`` in ``dtype``, re-probed once per session and
        again whenever the key changes (the fingerprint holds the thread count, so a row
        at another thread count gets a probe at its own count): the median of repeated
        best-of-N probes (see :mod:`hpml.measure.peak`), flagged when it drifted.
        """
        key = (device, str(dtype), tuple(sorted(machine_fingerprint(device).items())))
        if key not in self._peaks:
            self._peaks[key] = peak_estimate(device, dtype, refresh=True)
        return self._peaks[key]

    def run(self, benchmark: Any, case: Case, build: Callable[[Case, "BenchSession"], Measured]) -> None:
        """Build ``case`` with ``build``, measure it, record extra_info (or skip with the reason)."""
        reason = skip_reason(case, self.profile) or self._process_reason(benchmark, case)
        if reason:
            pytest.skip(reason)
        try:
            self._measure(benchmark, case, build)
        except NotApplicable as err:
            reason = str(err)
        except torch.OutOfMemoryError as err:
            from hpml.data import dataset_info

            batch = self.profile.batch_size(dataset_info(case.dataset))
            reason = f"out of memory on {case.device} at batch size {batch}: {_first_line(err)}"
        else:
            release_memory(case.device)
            return
        # Skipped outside the except block: the exception's traceback (and the workload
        # it references) is gone by now, so the memory really is released.
        release_memory(case.device)
        pytest.skip(reason)

    @staticmethod
    def _process_reason(benchmark: Any, case: Case) -> str | None:
        """Why a default-allocator row cannot be measured in this process (None if it can)."""
        if benchmark.enabled and not case.process_wide and host_allocator_tuned():
            return ("the host allocator was tuned by an earlier row in this process and glibc cannot undo "
                    "it, so this row would not measure the default; run it in a fresh process (-k)")
        return None

    def _measure(self, benchmark: Any, case: Case, build: Callable[[Case, "BenchSession"], Measured]) -> None:
        p = self.profile
        seed_everything(p.seed)
        spec = build(case, self)
        benchmark.group = case.group
        setup = spec.setup
        memory, io = MemoryTracker(case.device), IoTracker()
        io.start()
        memory.start()
        try:
            benchmark.pedantic(
                timed_call(spec.target, case.device, self.slowdown),
                setup=(lambda: setup()) if setup is not None else None,
                rounds=p.rounds,
                warmup_rounds=p.warmup_rounds,
                iterations=1,
            )
        finally:
            mem = memory.stop()
            read = io.stop()
        calls = p.rounds + p.warmup_rounds if benchmark.enabled else 1
        measured = p.rounds if benchmark.enabled else 1
        median_s = benchmark.stats.stats.median if benchmark.enabled and benchmark.stats else None
        samples_per_s = spec.samples_per_round / median_s if median_s else None
        if case.is_baseline and samples_per_s is not None:
            self.book.record(case, samples_per_s)
        estimate = self.peak_flops(case.device, spec.compute_dtype) if samples_per_s and spec.compute_dtype else None
        peak = estimate.flops_per_s if estimate else None
        achieved = spec.flops_per_sample * samples_per_s if spec.flops_per_sample and samples_per_s else None
        info: dict[str, Any] = {
            "hpml_schema": SCHEMA,
            "phase": case.phase,
            "optimization": case.optimization,
            # what ran: composites (``optimized``) as their members on this device
            "expanded_optimizations": (list(expand((case.optimization,), case.device))
                                       if case.optimization in OPTIMIZATIONS else [case.optimization]),
            "dataset": case.label,
            "model": case.model,
            "device": case.device,
            "profile": p.name,
            "optimizer": case.optimizer,
            "batch_size": spec.batch_size,
            "samples_per_round": spec.samples_per_round,
            "samples_per_s": samples_per_s,
            "flops_per_sample": spec.flops_per_sample,
            "achieved_flops": achieved,  # FLOP/s
            "peak_flops": peak,  # FLOP/s: matmul peak of compute_dtype (see peak_flops)
            "peak_dtype": str(spec.compute_dtype).removeprefix("torch.") if spec.compute_dtype else None,
            "peak_fraction": achieved / peak if achieved and peak else None,
            "peak_threads": estimate.threads if estimate else None,  # == threads: probed at the row's count
            "theoretical_peak_flops": estimate.theoretical_flops_per_s if estimate else None,  # FLOP/s
            "peak_rss_bytes": mem.peak_rss_bytes,
            "peak_device_bytes": mem.peak_device_bytes,
            # per call (warm-up calls included in the average); None where not measurable
            "read_bytes": None if read.read_bytes is None else read.read_bytes // calls,
            "read_chars": None if read.read_chars is None else read.read_chars // calls,
            "dataset_bytes": read.dataset_bytes // calls,  # logical: what the readers fetched from dataset files
            "minor_faults": None if mem.minor_faults is None else mem.minor_faults // calls,
            "threads": torch.get_num_threads(),
            "seed": p.seed,
            "speedup_vs_baseline": 1.0 if case.is_baseline and samples_per_s else self.book.speedup(case, samples_per_s),
            "source": case.source,
            "rounds": p.rounds if benchmark.enabled else 0,
            "warmup_rounds": p.warmup_rounds if benchmark.enabled else 0,
            "planted_slowdown": self.slowdown,
        }
        info["peak_flags"] = peak_flags(info["peak_fraction"], estimate)
        if spec.after is not None:
            info.update(spec.after(calls))
        if spec.phases is not None:
            info["phases"] = spec.phases(measured)
        info.update(spec.extra)
        benchmark.extra_info.update(info)


def median_breakdown(calls: list[dict[str, float]], measured: int) -> dict[str, Any]:
    """Per-phase seconds (median over the last ``measured`` calls) and their share of the total."""
    recent = calls[-measured:] if measured else calls
    if not recent:
        return {}
    medians = {name: statistics.median(c[name] for c in recent) for name in recent[0]}
    total = sum(medians.values())
    return {
        name: {"seconds": seconds, "fraction": seconds / total if total > 0 else None}
        for name, seconds in medians.items()
    }
