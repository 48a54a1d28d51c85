"""Measurement, apart from workload and launcher: timers, memory, I/O, FLOPs (docs/measurement.md)."""

from hpml.measure.flops import flops_per_sample
from hpml.measure.io import IoStats, IoTracker
from hpml.measure.memory import MemoryStats, MemoryTracker
from hpml.measure.peak import PeakEstimate, machine_fingerprint, measured_peak_flops, peak_estimate, peak_flags
from hpml.measure.phase_stats import PHASES, PhaseStats, measure_phase
from hpml.measure.profiler import profile_trace
from hpml.measure.timers import Timer, synchronize

__all__ = [
    "PHASES",
    "IoStats",
    "IoTracker",
    "MemoryStats",
    "MemoryTracker",
    "PeakEstimate",
    "PhaseStats",
    "Timer",
    "flops_per_sample",
    "machine_fingerprint",
    "measure_phase",
    "measured_peak_flops",
    "peak_estimate",
    "peak_flags",
    "profile_trace",
    "synchronize",
]
