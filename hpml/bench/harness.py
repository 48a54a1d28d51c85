"""Runs one benchmark row honestly and records what it measured.

The workload builders (:mod:`hpml.bench.workloads`) say *what* runs: a
:class:`Measured` with the call to time and how many samples it processes.  This module
decides *how* it is timed and recorded:

* **paired with its baseline** (:mod:`hpml.bench.paired`): an optimization row builds
  its group's baseline workload too (one built baseline per group is kept alive and
  reused by the group's rows), warms both up, then alternates their calls
  ``A B B A ...`` until the paired speedup's 95 % interval is as narrow as the
  profile's ``target_halfwidth`` or the row's ``row_budget_s`` is spent.  The first
  baseline row of each phase, device and model (data phases: dataset) in the session is
  paired with itself: the A/A control that gives the phase's noise floor
  (:func:`control_key`); the other baseline rows of that phase and model are timed
  alone, the profile's ``rounds`` calls, and name the row that holds their control.
  Rows that change the process for good (``Case.process_wide``: ``host_allocator``,
  CPU ``optimized``) are paired the same way between two fresh
  processes (:mod:`hpml.bench.fresh`), so nothing leaks into other rows and no row is
  skipped for its order.  In a session of ``hpml gate --base`` (:attr:`BenchSession.gate_session`)
  a row is paired with the other revision's session instead, call by call, and is timed alone;
* pytest-benchmark's own statistics of a row are the row's own call times
  (:func:`hpml.bench.compat.record_rounds`), so ``--benchmark-compare`` keeps working;
  the paired results go into ``extra_info`` (:data:`PAIRED_KEYS`);
* every measured call goes through :func:`timed_call`: it ends with a device
  synchronization (:func:`hpml.measure.timers.synchronize`), so queued CUDA work is
  billed to the call that queued it; warm-up calls are never measured;
* what else used the cores before and during the row is recorded
  (:mod:`hpml.bench.busy`) and a crowded row is flagged ``busy``;
* the seed is fixed before each side is built; the thread count is recorded;
* per-call costs (CPU seconds, bytes read: :data:`CALL_COST_TRACKERS`) are counted around
  each of the row's own timed calls; the other trackers (:mod:`hpml.measure.tracker_registry`: peak
  host/device memory, page faults) run around the row's warm-up calls (absolute values: the
  group's baseline, kept alive for pairing, is resident too); ``resource_regions`` says which;
* a row that does not apply is skipped with the reason; one whose baseline cannot run
  is skipped with that reason; one that runs out of memory is skipped with the batch
  size, and the session goes on.

``HPML_PLANTED_SLOWDOWN`` (a fraction, e.g. ``0.2``) is for testing the regression gate
only: each measured call then sleeps that fraction of its own duration, inside the
timed region, so every benchmark looks that much slower.  It lives here, in the
harness, and never touches hpml's training code.  ``HPML_PLANTED_COMPUTE`` (e.g. ``0.1``)
plants *real work* instead, a fixed number of matmuls worth that fraction of an
undisturbed call on the same device and cores (:class:`PlantedCompute`): a slowdown
that behaves like a code change, which is what the gate's power is measured with.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest
import torch

from hpml.bench.busy import RowMonitor, Verdict
from hpml.bench.compat import mark_unmeasured, record_rounds
from hpml.bench.matrix import (BASELINE, Case, Selection, aliases_of, dataset_aliases_of, end_to_end_stands_for,
                               skip_reason)
from hpml.bench.paired import PairedRun, Precision, measure_pairs
from hpml.bench.profiles import Profile
from hpml.environment import VARS
from hpml.errors import HpmlError
from hpml.errors import one_line_message as _first_line  # the one first-line helper (hpml.errors)
from hpml.machine import cpu_has_bf16
from hpml.gate import baton
from hpml.measure import PeakEstimate, machine_fingerprint, peak_estimate, peak_flags, synchronize
from hpml.measure.tracker_registry import Trackers, tracked_metrics
from hpml.results.metric_registry import per_unit
from hpml.train.build import seed_everything
from hpml.train.optimizations import OPTIMIZATIONS, Settings, expand
from hpml.train.state import apply_backend_flags

SCHEMA = 1
PLANTED_SLOWDOWN_ENV = "HPML_PLANTED_SLOWDOWN"

#: The paired-measurement keys (the shared contract of the gate and the report).
PAIRED_KEYS = (
    "speedup_vs_baseline", "speedup_interval", "speedup_pairs", "speedup_halfwidth", "speedup_target_halfwidth",
    "speedup_significant", "busy", "busy_reason", "busy_evidence", "aliases",
)


class NotApplicable(Exception):
    """Raised by a workload builder when the row cannot run here; the message is the skip reason."""


def planted_slowdown(environ: dict[str, str] | None = None) -> float:
    """The ``HPML_PLANTED_SLOWDOWN`` fraction (0.0 when unset); testing only."""
    return VARS[PLANTED_SLOWDOWN_ENV].get(environ, default=0.0)


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
    # the side's process-wide backend flags, re-applied before each of its calls (untimed)
    settings: Settings = Settings()


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


def timed_call(target: Callable[[], Any], device: str, slowdown: float = 0.0,
               compute: float | None = None) -> Callable[[], Any]:
    """``target`` followed by a device sync.  Testing the gate only: ``slowdown`` > 0 adds a
    sleep of that fraction of the call's own duration; ``compute`` > 0 (default: the
    ``HPML_PLANTED_COMPUTE`` fraction) adds that fraction of real work (:class:`PlantedCompute`).
    Both inside the timed region; every measured call of every row goes through here."""
    compute = planted_compute() if compute is None else compute
    planted = PlantedCompute(compute, device) if compute > 0 else None
    if slowdown <= 0 and planted is None:
        def call() -> Any:
            out = target()
            synchronize(device)  # host-device sync: the call's queued work is billed to it
            return out
        return call

    def slowed() -> Any:
        start = time.perf_counter()
        out = target()
        synchronize(device)  # host-device sync
        elapsed = time.perf_counter() - start
        if planted is not None:
            planted.after_call(elapsed)  # planted regression: real work (testing only)
        if slowdown > 0:
            time.sleep(slowdown * elapsed)  # planted slowdown: a sleep (testing only)
        return out
    slowed.planted = planted  # type: ignore[attr-defined]  # for the gate's tests
    return slowed


class BaselineBook:
    """Baseline throughputs measured so far in this session, for rows that are not paired
    (DDP: a rank pool holds one workload at a time) and DDP's scaling efficiency."""

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


class BaselineUnavailable(Exception):
    """The row's baseline cannot be built or run here; the message says why."""


def release_memory(device: str) -> None:
    gc.collect()
    if device == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()


def dtype_name(dtype: torch.dtype | None) -> str | None:
    return str(dtype).removeprefix("torch.") if dtype is not None else None


#: Trackers counted around every timed call (counters without a sampling thread): the row's
#: per-call costs over its timed calls.  Peaks and faults come from the warm-up region.
CALL_COST_TRACKERS = ("io", "cpu")


class Side:
    """One side of a pair, built in this process: each call is timed here, around
    :func:`timed_call` (device sync included), after the workload's untimed setup."""

    def __init__(self, spec: Measured, device: str, slowdown: float = 0.0, optimization: str | None = None) -> None:
        self.spec = spec
        self.device = device
        # the measured call (setup not included)
        self.timed = timed_call(spec.target, device, slowdown, planted_compute(optimization=optimization))
        self.reset_costs()

    @property
    def samples_per_round(self) -> int:
        return self.spec.samples_per_round

    def __call__(self) -> float:
        # A side owns its process-wide flags: the other side of the pair set its own before its call.
        apply_backend_flags(self.spec.settings)
        if self.spec.setup is not None:
            self.spec.setup()
        # Per-call costs are counted around the timed region, not in it: counters only, no
        # sampling thread (peaks are left to the warm-up region, :meth:`warm`).
        costs = Trackers(self.device, only=CALL_COST_TRACKERS)
        costs.start()
        start = time.perf_counter()
        self.timed()
        elapsed = time.perf_counter() - start
        for name, value in costs.stop().items():
            if isinstance(value, (int, float)):
                self._costs[name] = self._costs.get(name, 0) + value
        self._calls += 1
        baton.handover()  # `hpml gate --base`: the other session's turn, outside the timed region
        return elapsed

    def reset_costs(self) -> None:
        self._costs: dict[str, float] = {}
        self._calls = 0

    def call_costs(self) -> dict[str, Any]:
        """CPU seconds, bytes read... of the calls since :meth:`reset_costs`, per call or per
        sample as each metric is recorded; {} before any call."""
        if not self._calls:
            return {}
        return per_unit(self._costs, calls=self._calls, samples=self._calls * self.samples_per_round)

    def warm(self, calls: int) -> dict[str, Any]:
        """``calls`` unmeasured calls under the registered trackers; their readings, ``call``
        metrics per call and ``sample`` ones per sample (None where not measurable)."""
        trackers = Trackers(self.device)
        trackers.start()
        try:
            for _ in range(calls):
                self()
        finally:
            totals = trackers.stop()
            self.reset_costs()  # warm-up calls are no timed calls
        return per_unit(totals, calls=max(1, calls), samples=max(1, calls) * self.samples_per_round)

    def describe(self) -> dict[str, Any]:
        s = self.spec
        return {"samples_per_round": s.samples_per_round, "batch_size": s.batch_size,
                "flops_per_sample": s.flops_per_sample, "compute_dtype": dtype_name(s.compute_dtype),
                "extra": dict(s.extra)}

    def phases(self, measured: int) -> dict[str, Any] | None:
        return self.spec.phases(measured) if self.spec.phases is not None else None

    def close(self) -> None:
        self.spec = None  # type: ignore[assignment]  # drop the workload (model, data) now
        self.timed = None  # type: ignore[assignment]


def baseline_case(case: Case) -> Case:
    """The row ``case`` is compared with: same phase, data, device, optimizer; ``baseline``."""
    return dataclasses.replace(case, optimization=BASELINE)


def control_key(case: Case) -> tuple:
    """Baseline rows that share an A/A control: same phase, device and model; in the data
    phases, which run no model, same dataset (each reader and loader has its own noise).

    A control in every group cost ResNet-50's baseline rows 90.5 s of an 11.5 min default run
    (docs/studies/default-runs.md); one per phase and model still gives every phase its noise
    floor and every model's noise its control."""
    return (case.phase, case.device, case.model or case.label)


class BenchSession:
    """Per-pytest-session state of the benchmarks: profile, precision, the group's built
    baseline, real-format data, caches."""

    def __init__(self, profile: Profile, real_data: Any, slowdown: float = 0.0,
                 precision: Precision | None = None, selected: Selection | None = None) -> None:
        self.profile = profile
        self.selected = selected  # the session's rows (dataset twins resolve against them); None: all
        self.real_data = real_data  # hpml.bench.realdata.RealData
        self.slowdown = slowdown
        self.precision = precision or profile.precision()
        self.book = BaselineBook()
        self.flops_cache: dict[tuple, int] = {}
        self._peaks: dict[tuple, PeakEstimate] = {}
        self._baseline: tuple[tuple, Any] | None = None  # (baseline_key, Side or FreshSide)
        self._controls: dict[tuple, str] = {}  # control_key -> the baseline row holding that A/A control

    @property
    def gate_session(self) -> bool:
        """A session of ``hpml gate --base`` (``HPML_BENCH_PAIRS``: :attr:`Precision.fixed_pairs`):
        its rows are paired call by call with the other revision's session, so each row is timed
        alone, exactly that many calls.  Pairing it with its baseline too would double the
        measured calls and give the gate nothing: it compares a row's own times across revisions.
        Rows that change the process for good stay in their fresh processes, paired."""
        return self.precision.fixed_pairs is not None

    @property
    def alone_calls(self) -> int:
        """Measured calls of a row timed alone: ``fixed_pairs`` in a gate session, else the profile's ``rounds``."""
        return self.precision.fixed_pairs or self.profile.rounds

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

    def run(self, benchmark: Any, case: Case, build: Callable[[Case, "BenchSession"], Measured],
            paired: bool = True, reference: Callable[[Case, "BenchSession"], Measured] | None = None) -> None:
        """Build ``case`` with ``build``, measure it (paired with its baseline unless
        ``paired`` is False; with ``reference``, interleaved with the same case built by
        ``reference`` instead: see :meth:`_measure_against`), record extra_info, or skip
        with the reason."""
        reason = skip_reason(case, self.profile, self.selected)
        if reason:
            pytest.skip(reason)
        monitor = RowMonitor()
        try:
            if reference is not None:
                self._measure_against(benchmark, case, build, reference, monitor)
            elif not paired or (self.gate_session and not case.process_wide):
                self._measure_alone(benchmark, case, build, monitor)
            elif case.process_wide:
                self._measure_fresh(benchmark, case, build, monitor)
            else:
                self._measure_paired(benchmark, case, build, monitor)
        except NotApplicable as err:
            reason = str(err)
        except BaselineUnavailable as err:
            reason = f"its baseline cannot run here: {err}"
        except torch.OutOfMemoryError as err:
            from hpml.data import dataset_info

            batch = self.profile.batch_size(dataset_info(case.dataset))
            reason = f"out of memory on {case.device} at batch size {batch}: {_first_line(err)}"
            self.drop_baseline()  # make room: the next row rebuilds it
        else:
            release_memory(case.device)
            return
        # Skipped outside the except block: the exception's traceback (and the workload
        # it references) is gone by now, so the memory really is released.
        release_memory(case.device)
        pytest.skip(reason)

    # --- the group's baseline, built once -------------------------------------------------

    def drop_baseline(self) -> None:
        if self._baseline is not None:
            self._baseline[1].close()
            self._baseline = None

    def _baseline_side(self, case: Case, make: Callable[[Case], Any]) -> Any:
        """The warmed-up baseline side of ``case``'s group, built on first use."""
        base = baseline_case(case)
        key = (base.baseline_key, make.__name__ if hasattr(make, "__name__") else None)
        if self._baseline is not None and self._baseline[0] == key:
            return self._baseline[1]
        self.drop_baseline()
        release_memory(case.device)
        try:
            side = make(base)
            side.warm(max(1, self.profile.warmup_rounds))
        except (NotApplicable, HpmlError) as err:
            raise BaselineUnavailable(_first_line(err)) from None
        except torch.OutOfMemoryError as err:
            raise BaselineUnavailable(f"out of memory on {case.device}: {_first_line(err)}") from None
        self._baseline = (key, side)
        return side

    # --- the three ways a row is measured ---------------------------------------------------

    def _measure_paired(self, benchmark: Any, case: Case, build: Callable[[Case, "BenchSession"], Measured],
                        monitor: RowMonitor) -> None:
        def in_process(c: Case) -> Side:
            seed_everything(self.profile.seed)
            return Side(build(c, self), c.device, self.slowdown, c.optimization)

        in_process.__name__ = f"in_process:{getattr(build, '__name__', id(build))}"
        base = self._baseline_side(case, in_process)
        holder = self._controls.get(control_key(case)) if case.is_baseline else None
        if holder is not None:  # this phase and model already have their A/A control
            self._time_baseline(benchmark, case, base, monitor, holder)
            return
        # The A/A control's other side is a second, separately built baseline: one object paired
        # with itself makes A B and B A interchangeable by construction and shares its caches.
        opt = in_process(case)
        try:
            self._pair(benchmark, case, base, opt, monitor)
        finally:
            opt.close()
        if case.is_baseline and benchmark.enabled:
            self._controls[control_key(case)] = case.id

    def _measure_fresh(self, benchmark: Any, case: Case, build: Callable[[Case, "BenchSession"], Measured],
                       monitor: RowMonitor) -> None:
        from hpml.bench.fresh import FreshSide

        def fresh(c: Case) -> FreshSide:
            return FreshSide(c, self, build)

        fresh.__name__ = f"fresh:{getattr(build, '__name__', id(build))}"
        # The baseline's fresh process never changes process state (it is the baseline),
        # so the group's rows share it; each optimization gets a fresh process of its own.
        base = self._baseline_side(case, fresh)
        # Not in a gate session: both revisions' sessions must make the same calls, call by call.
        control = self._fresh_control(case, base, build) if benchmark.enabled and not self.gate_session else None
        opt = FreshSide(case, self, build)
        try:
            self._pair(benchmark, case, base, opt, monitor, control=control)
        finally:
            opt.close()

    def _fresh_control(self, case: Case, base: Any, build: Callable[[Case, "BenchSession"], Measured]) -> dict[str, Any]:
        """The fresh-vs-fresh control of ``case``'s phase and device: the group's baseline process
        paired with a second fresh baseline process, the first time a fresh row of them runs
        (process-to-process spread, which an in-process A/A cannot see); the later rows name it."""
        from hpml.bench.fresh import FreshSide

        key = ("fresh", case.phase, case.device)
        holder = self._controls.get(key)
        if holder is not None:
            return {"fresh_control_in": holder}
        other = FreshSide(baseline_case(case), self, build)
        try:
            other.warm(max(1, self.profile.warmup_rounds))
            run = measure_pairs(base, other, self.precision)
        finally:
            other.close()
        self._controls[key] = case.id
        return {"fresh_control": dict(run.result.as_dict(), sides="two fresh baseline processes")}

    def _measure_against(self, benchmark: Any, case: Case, build: Callable[[Case, "BenchSession"], Measured],
                         reference: Callable[[Case, "BenchSession"], Measured], monitor: RowMonitor) -> None:
        """Interleaved reference steps: the row (``build``) and the same case built by
        ``reference`` (hpml's step and a hand-written one) alternate ``A B B A ...`` like
        any pair, so the machine's drift hits both alike; the row's speedup is over the
        reference (``reference`` in extra_info names it), a baseline row's too."""
        def side(make: Callable[[Case, "BenchSession"], Measured]) -> Side:
            seed_everything(self.profile.seed)  # same seed: the same initial weights on both sides
            return Side(make(case, self), case.device, self.slowdown)

        base = side(reference)
        try:
            base.warm(max(1, self.profile.warmup_rounds))
            opt = side(build)
            try:
                self._pair(benchmark, case, base, opt, monitor, reference=getattr(reference, "__name__", "reference"))
            finally:
                opt.close()
        finally:
            base.close()

    def _pair(self, benchmark: Any, case: Case, base: Any, opt: Any, monitor: RowMonitor,
              reference: str | None = None, control: dict[str, Any] | None = None) -> None:
        p = self.profile
        benchmark.group = case.group
        readings = opt.warm(max(1, p.warmup_rounds))
        if not benchmark.enabled:  # --benchmark-disable: the body ran (the warm-up), nothing is measured
            mark_unmeasured(benchmark)
            self._record(benchmark, case, opt.describe(), readings, None, None, monitor.finish(), opt, reference)
            return
        monitor.measuring()
        scale = opt.samples_per_round / base.samples_per_round
        run = measure_pairs(base, opt, self.precision, scale=scale)
        verdict = monitor.finish()
        record_rounds(benchmark, run.opt_s)
        median_s = statistics.median(run.opt_s)
        self._record(benchmark, case, opt.describe(), readings, median_s, run, verdict, opt, reference)
        if control:
            benchmark.extra_info.update(control)

    def _time_baseline(self, benchmark: Any, case: Case, base: Any, monitor: RowMonitor, control_in: str) -> None:
        """A baseline row whose A/A control another row holds (:func:`control_key`): the
        group's (kept) baseline timed alone, the profile's ``rounds`` calls (:attr:`alone_calls`:
        gate sessions never pair, so they never get here)."""
        benchmark.group = case.group
        readings = base.warm(max(1, self.profile.warmup_rounds))
        median_s = self._time_alone(benchmark, base, monitor)
        self._record(benchmark, case, base.describe(), readings, median_s, None, monitor.finish(), base,
                     control_in=control_in)

    def _time_alone(self, benchmark: Any, side: Any, monitor: RowMonitor) -> float | None:
        """:attr:`alone_calls` timed calls of ``side`` (each hands the baton over in a gate
        session) as the row's rounds; their median, or None under ``--benchmark-disable``
        (the warm-up ran the body, nothing is measured)."""
        if not benchmark.enabled:
            mark_unmeasured(benchmark)
            return None
        monitor.measuring()
        times = [side() for _ in range(self.alone_calls)]
        record_rounds(benchmark, times)
        return statistics.median(times)

    def _measure_alone(self, benchmark: Any, case: Case, build: Callable[[Case, "BenchSession"], Measured],
                       monitor: RowMonitor) -> None:
        """Calls of this row alone: the profile's ``rounds`` (DDP), or exactly ``fixed_pairs``
        in a gate session (:attr:`gate_session`); its speedup divides by the baseline row
        measured earlier in the session, so it carries no interval."""
        p = self.profile
        seed_everything(p.seed)
        side = Side(build(case, self), case.device, self.slowdown, case.optimization)
        benchmark.group = case.group
        try:
            readings = side.warm(p.warmup_rounds) if p.warmup_rounds else {}
            median_s = self._time_alone(benchmark, side, monitor)
            verdict = monitor.finish()
            self._record(benchmark, case, side.describe(), readings, median_s, None, verdict, side)
        finally:
            side.close()

    # --- extra_info ---------------------------------------------------------------------------

    def _record(self, benchmark: Any, case: Case, spec: dict[str, Any], readings: dict[str, Any],
                median_s: float | None, run: PairedRun | None, verdict: Verdict, side: Any,
                reference: str | None = None, control_in: str | None = None) -> None:
        p = self.profile
        samples_per_s = spec["samples_per_round"] / median_s if median_s else None
        dtype = getattr(torch, spec["compute_dtype"]) if spec["compute_dtype"] else None
        estimate = self.peak_flops(case.device, dtype) if samples_per_s and dtype is not None else None
        peak = estimate.flops_per_s if estimate else None
        flops = spec["flops_per_sample"]
        achieved = flops * samples_per_s if flops and samples_per_s else None
        measured = (run.result.pairs if run is not None else self.alone_calls) if median_s else 1
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
            "batch_size": spec["batch_size"],
            "samples_per_round": spec["samples_per_round"],
            "samples_per_s": samples_per_s,
            "flops_per_sample": flops,
            "achieved_flops": achieved,  # FLOP/s
            "peak_flops": peak,  # FLOP/s: matmul peak of compute_dtype (see peak_flops)
            "peak_dtype": spec["compute_dtype"],
            "peak_fraction": achieved / peak if achieved and peak else None,
            "peak_fraction_of": "measured matmul peak of peak_dtype (probe, this machine)",
            # over the cores x rated clock x FLOP/cycle bound where one is known (theoretical_peak_basis)
            "theoretical_peak_fraction": (achieved / estimate.theoretical_flops_per_s
                                          if achieved and estimate and estimate.theoretical_flops_per_s else None),
            "theoretical_peak_basis": (estimate.theoretical_basis if estimate and estimate.theoretical_basis
                                       else "unknown: no rated max clock or no native path for this dtype"),
            "peak_threads": estimate.threads if estimate else None,  # == threads: probed at the row's count
            "theoretical_peak_flops": estimate.theoretical_flops_per_s if estimate else None,  # FLOP/s
            "threads": torch.get_num_threads(),
            "seed": p.seed,
            "source": case.source,
            "rounds": measured if median_s else 0,
            "warmup_rounds": max(1, p.warmup_rounds),
            "planted_slowdown": self.slowdown,
            "fresh_process": bool(case.process_wide),  # measured in fresh processes (hpml.bench.fresh)
        }
        # every registered tracker's metrics over the warm-up calls (per call or per sample:
        # hpml.results.metric_registry.Metric.per); None where not measured
        info.update({name: readings.get(name) for name in tracked_metrics()})
        # per-call costs over the row's own timed calls replace the warm-up's; what stays from
        # the warm-up (peaks, faults) is labelled so
        costs = side.call_costs() if median_s else {}
        info.update({name: value for name, value in costs.items() if name in info})
        warm = (f"warm-up calls ({max(1, p.warmup_rounds)}) of this row's side, the group's baseline "
                "also resident" if run is not None or control_in else
                f"warm-up calls ({max(1, p.warmup_rounds)}) of this row's side")
        info["resource_regions"] = {
            name: (f"this row's timed calls ({measured}), around each call, this process tree" if name in costs
                   else warm) for name in tracked_metrics() if readings.get(name) is not None or name in costs}
        info.update(self._speedup_info(case, samples_per_s, run, reference))
        if control_in is not None:
            info["aa_control_in"] = control_in  # the row holding this phase and model's A/A control
        info.update(verdict.as_extra())
        info["aliases"] = aliases_of(case, p)
        info["dataset_aliases"] = dataset_aliases_of(case, p, self.selected)
        info["stands_for"] = end_to_end_stands_for(case, p, self.selected)  # same kind of data, not measured
        emulated = dtype is torch.bfloat16 and case.device == "cpu" and not cpu_has_bf16()
        info["peak_flags"] = peak_flags(info["peak_fraction"], estimate, emulated=emulated)
        after = getattr(getattr(side, "spec", None), "after", None)
        if after is not None:  # measured elsewhere during the calls (each DDP rank's memory)
            info.update(after(max(1, p.warmup_rounds) + (measured if median_s else 0)))
        phases = side.phases(measured)
        if phases is not None:
            info["phases"] = phases
        info.update(spec["extra"])
        benchmark.extra_info.update(info)

    def _speedup_info(self, case: Case, samples_per_s: float | None, run: PairedRun | None,
                      reference: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "speedup_vs_baseline": None, "speedup_interval": None, "speedup_pairs": 0,
            "speedup_halfwidth": None, "speedup_target_halfwidth": self.precision.target_halfwidth,
            # decided against the phase's noise floor at session end (hpml.bench.plugin)
            "speedup_significant": False,
        }
        if reference is not None:
            out["reference"] = reference  # the speedup is over this (interleaved), not over the baseline row
        if run is None:  # not paired (DDP) or not measured
            if reference is not None:
                return out
            if samples_per_s is not None and case.is_baseline:
                self.book.record(case, samples_per_s)
            out["speedup_vs_baseline"] = 1.0 if case.is_baseline and samples_per_s else self.book.speedup(case, samples_per_s)
            return out
        result = run.result
        if case.is_baseline and reference is None:
            out["speedup_vs_baseline"] = 1.0
            # the baseline paired with a second, separately built baseline: the noise floor
            out["aa_control"] = dict(result.as_dict(), sides="two separately built baselines")
            out["speedup_stop"] = run.stop
            return out
        out.update({
            "speedup_vs_baseline": result.estimate,
            "speedup_interval": list(result.interval) if result.interval is not None else None,
            "speedup_pairs": result.pairs,
            "speedup_halfwidth": result.halfwidth,
            "speedup_stop": run.stop,  # target | budget | max_pairs
            "baseline_interleaved_s": run.base_s,
        })
        return out


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
