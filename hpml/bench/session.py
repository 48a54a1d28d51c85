"""Runs one benchmark row and records what it measured: pairing, controls, skips, ``extra_info``
(the rules: ``benchmarks/README.md``, "Paired rows")."""

from __future__ import annotations

import dataclasses
import statistics
from typing import Any, Callable

import pytest
import torch

from hpml.bench.busy import RowMonitor, Verdict
from hpml.bench.compat import mark_unmeasured, record_rounds
from hpml.bench.fresh import FreshSide
from hpml.bench.matrix import BASELINE, Case
from hpml.bench.skips import Selection, aliases_of, dataset_aliases_of, end_to_end_stands_for, skip_reason
from hpml.bench.pairing import PairedRun, Precision, measure_pairs
from hpml.bench.profiles import Profile
from hpml.bench.sides import Measured, NotApplicable, Side, release_memory
from hpml.errors import HpmlError
from hpml.errors import one_line_message as _first_line
from hpml.machine import cpu_has_bf16
from hpml.measure import PeakEstimate, machine_fingerprint, peak_estimate, peak_flags
from hpml.measure.tracker_registry import tracked_metrics
from hpml.results.record import SCHEMA, flops_fields
from hpml.train.build import seed_everything
from hpml.train.optimizations import OPTIMIZATIONS, expand

#: The paired-measurement keys (the shared contract of the gate and the report).
PAIRED_KEYS = (
    "speedup_vs_baseline", "speedup_interval", "speedup_pairs", "speedup_halfwidth", "speedup_target_halfwidth",
    "speedup_significant", "busy", "busy_reason", "busy_evidence", "aliases",
)


class BaselineBook:
    """Baseline throughputs measured so far, for rows that are not paired (DDP) and DDP's scaling."""

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


def baseline_case(case: Case) -> Case:
    """The row ``case`` is compared with: same phase, data, device, optimizer; ``baseline``."""
    return dataclasses.replace(case, optimization=BASELINE)


def control_key(case: Case) -> tuple:
    """Baseline rows that share an A/A control: same phase, device and model (data phases: dataset).
    One per group cost 90.5 s of an 11.5 min default run (docs/studies/default-runs.md)."""
    return (case.phase, case.device, case.model or case.label)


class BenchSession:
    """Per-pytest-session state: profile, precision, the group's built baseline, real-format data, caches."""

    def __init__(self, profile: Profile, real_data: Any, slowdown: float = 0.0,
                 precision: Precision | None = None, selected: Selection | None = None) -> None:
        self.profile = profile
        self.selected = selected  # the session's rows (dataset twins resolve against them); None: all
        self.real_data = real_data
        self.slowdown = slowdown
        self.precision = precision or profile.precision()
        self.book = BaselineBook()
        self.flops_cache: dict[tuple, int] = {}
        self._peaks: dict[tuple, PeakEstimate] = {}
        self._baseline: tuple[tuple, Any] | None = None  # (baseline_key, Side or FreshSide)
        self._controls: dict[tuple, str] = {}  # control_key -> the baseline row holding that A/A control

    @property
    def gate_session(self) -> bool:
        """A session of ``hpml gate --base`` (``HPML_BENCH_PAIRS``): its rows pair with the other
        revision's calls, so each is timed alone (fresh-process rows stay paired)."""
        return self.precision.fixed_pairs is not None

    @property
    def alone_calls(self) -> int:
        """Measured calls of a row timed alone: ``fixed_pairs`` in a gate session, else the profile's ``rounds``."""
        return self.precision.fixed_pairs or self.profile.rounds

    def peak_flops(self, device: str, dtype: torch.dtype) -> PeakEstimate:
        """Peak matmul FLOP/s of ``device`` in ``dtype``, probed once per session and machine
        fingerprint (which holds the thread count)."""
        key = (device, str(dtype), tuple(sorted(machine_fingerprint(device).items())))
        if key not in self._peaks:
            self._peaks[key] = peak_estimate(device, dtype, refresh=True)
        return self._peaks[key]

    def run(self, benchmark: Any, case: Case, build: Callable[[Case, "BenchSession"], Measured],
            paired: bool = True, reference: Callable[[Case, "BenchSession"], Measured] | None = None) -> None:
        """Build ``case``, measure it (paired with its baseline, or ``reference``, unless ``paired`` is
        False), record ``extra_info``, or skip with the reason."""
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
        # outside the except block: the traceback, and the workload it holds, are released
        release_memory(case.device)
        pytest.skip(reason)

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

    def _measure_paired(self, benchmark: Any, case: Case, build: Callable[[Case, "BenchSession"], Measured],
                        monitor: RowMonitor) -> None:
        def in_process(c: Case) -> Side:
            seed_everything(self.profile.seed)
            return Side(build(c, self), c.device, self.slowdown, c.optimization)

        in_process.__name__ = f"in_process:{getattr(build, '__name__', id(build))}"
        base = self._baseline_side(case, in_process)
        holder = self._controls.get(control_key(case)) if case.is_baseline else None
        if holder is not None:
            self._time_baseline(benchmark, case, base, monitor, holder)
            return
        # A second, separately built baseline: one object paired with itself shares its caches.
        opt = in_process(case)
        try:
            self._pair(benchmark, case, base, opt, monitor)
        finally:
            opt.close()
        if case.is_baseline and benchmark.enabled:
            self._controls[control_key(case)] = case.id

    def _measure_fresh(self, benchmark: Any, case: Case, build: Callable[[Case, "BenchSession"], Measured],
                       monitor: RowMonitor) -> None:
        def fresh(c: Case) -> FreshSide:
            return FreshSide(c, self, build)

        fresh.__name__ = f"fresh:{getattr(build, '__name__', id(build))}"
        # the baseline's process changes nothing, so the group shares it; each row gets its own
        base = self._baseline_side(case, fresh)
        # not in a gate session: both revisions must make the same calls
        control = self._fresh_control(case, base, build) if benchmark.enabled and not self.gate_session else None
        opt = FreshSide(case, self, build)
        try:
            self._pair(benchmark, case, base, opt, monitor, control=control)
        finally:
            opt.close()

    def _fresh_control(self, case: Case, base: Any, build: Callable[[Case, "BenchSession"], Measured]) -> dict[str, Any]:
        """The first fresh row of a phase and device pairs the baseline process with a second one
        (process-to-process spread); later rows name it."""
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
        """The row paired with the same case built by ``reference`` (a hand-written step); its
        speedup is over that side."""
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
        """A baseline row whose A/A control another row holds: the kept baseline timed alone."""
        benchmark.group = case.group
        readings = base.warm(max(1, self.profile.warmup_rounds))
        median_s = self._time_alone(benchmark, base, monitor)
        self._record(benchmark, case, base.describe(), readings, median_s, None, monitor.finish(), base,
                     control_in=control_in)

    def _time_alone(self, benchmark: Any, side: Any, monitor: RowMonitor) -> float | None:
        """:attr:`alone_calls` timed calls of ``side`` as the row's rounds; their median (None when disabled)."""
        if not benchmark.enabled:
            mark_unmeasured(benchmark)
            return None
        monitor.measuring()
        times = [side() for _ in range(self.alone_calls)]
        record_rounds(benchmark, times)
        return statistics.median(times)

    def _measure_alone(self, benchmark: Any, case: Case, build: Callable[[Case, "BenchSession"], Measured],
                       monitor: RowMonitor) -> None:
        """This row alone (DDP, gate sessions): its speedup is over the session's baseline row, no interval."""
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

    def _record(self, benchmark: Any, case: Case, spec: dict[str, Any], readings: dict[str, Any],
                median_s: float | None, run: PairedRun | None, verdict: Verdict, side: Any,
                reference: str | None = None, control_in: str | None = None) -> None:
        p = self.profile
        samples_per_s = spec["samples_per_round"] / median_s if median_s else None
        dtype = getattr(torch, spec["compute_dtype"]) if spec["compute_dtype"] else None
        estimate = self.peak_flops(case.device, dtype) if samples_per_s and dtype is not None else None
        flops = flops_fields(spec["flops_per_sample"], samples_per_s, estimate.flops_per_s if estimate else None,
                             spec["compute_dtype"])
        achieved = flops["achieved_flops"]
        measured = (run.result.pairs if run is not None else self.alone_calls) if median_s else 1
        info: dict[str, Any] = {  # hpml.results.record.BenchRow
            "hpml_schema": SCHEMA,
            "phase": case.phase,
            "optimization": case.optimization,
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
            "flops_per_sample": spec["flops_per_sample"],
            **flops,
            "theoretical_peak_fraction": (achieved / estimate.theoretical_flops_per_s
                                          if achieved and estimate and estimate.theoretical_flops_per_s else None),
            "theoretical_peak_basis": (estimate.theoretical_basis if estimate and estimate.theoretical_basis
                                       else "unknown: no rated max clock or no native path for this dtype"),
            "peak_threads": estimate.threads if estimate else None,
            "theoretical_peak_flops": estimate.theoretical_flops_per_s if estimate else None,
            "threads": torch.get_num_threads(),
            "seed": p.seed,
            "source": case.source,
            "rounds": measured if median_s else 0,
            "warmup_rounds": max(1, p.warmup_rounds),
            "planted_slowdown": self.slowdown,
            "fresh_process": bool(case.process_wide),
        }
        # every tracker's metrics over the warm-up calls; None where not measured
        info.update({name: readings.get(name) for name in tracked_metrics()})
        # per-call costs of the timed calls replace the warm-up's; resource_regions labels which
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
            info["aa_control_in"] = control_in
        info.update(verdict.as_extra())
        info["aliases"] = aliases_of(case, p)
        info["dataset_aliases"] = dataset_aliases_of(case, p, self.selected)
        info["stands_for"] = end_to_end_stands_for(case, p, self.selected)
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
            out["reference"] = reference
        if run is None:
            if reference is not None:
                return out
            if samples_per_s is not None and case.is_baseline:
                self.book.record(case, samples_per_s)
            out["speedup_vs_baseline"] = 1.0 if case.is_baseline and samples_per_s else self.book.speedup(case, samples_per_s)
            return out
        result = run.result
        if case.is_baseline and reference is None:
            out["speedup_vs_baseline"] = 1.0
            out["aa_control"] = dict(result.as_dict(), sides="two separately built baselines")
            out["speedup_stop"] = run.stop
            return out
        out.update({
            "speedup_vs_baseline": result.estimate,
            "speedup_interval": list(result.interval) if result.interval is not None else None,
            "speedup_pairs": result.pairs,
            "speedup_halfwidth": result.halfwidth,
            "speedup_stop": run.stop,
            "baseline_interleaved_s": run.base_s,
        })
        return out

