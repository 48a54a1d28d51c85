"""Every measured quantity, declared once: unit, how processes combine, direction, printing, and what
it is counted per.  Torch-free (gate and report import it); the rules: docs/measurement.md."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

REDUCE_RULES = ("sum", "max", "mean", "weighted", "same")
BETTER = ("higher", "lower", None)
#: What a tracked total is divided by when a benchmark row records it ("": recorded as measured).
PER = ("", "call", "sample")


def plain(value: float) -> str:
    return f"{value:.4g}"


def binary_bytes(value: float) -> str:
    """``1.50 GiB``, ``312 MiB``, ``4.0 KiB``; ``-`` for 0 (nothing allocated: device memory on a CPU row)."""
    if not value:
        return "-"
    if abs(value) >= 1 << 30:
        return f"{value / (1 << 30):.2f} GiB"
    if abs(value) >= 1 << 20:
        return f"{value / (1 << 20):.0f} MiB"
    return f"{value / (1 << 10):.1f} KiB" if abs(value) >= 1 << 10 else f"{value:.0f} B"


def _si(value: float, unit: str) -> str:
    for prefix, scale in (("", 1.0), ("m", 1e-3), ("u", 1e-6)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value * 1e9:.3g} n{unit}"


def seconds(value: float) -> str:
    return _si(value, "s")


def joules(value: float) -> str:
    return _si(value, "J")


@dataclass(frozen=True)
class Metric:
    """One measured quantity; ``per``: what a benchmark row divides its region total by (docs/measurement.md)."""

    name: str
    unit: str
    reduce: str
    better: str | None = None  # "higher" | "lower" | None: not a figure of merit
    format: Callable[[float], str] = plain
    per: str = ""
    report: bool = False
    title: str = ""  # column title in the report (default: the name)
    positive: bool = False  # any real reading is > 0 (a 0 means not measured: peak RSS, CPU time)

    def __post_init__(self) -> None:
        if self.reduce not in REDUCE_RULES:
            raise ValueError(f"metric {self.name}: reduce must be one of {', '.join(REDUCE_RULES)}, "
                             f"got {self.reduce!r}")
        if self.better not in BETTER:
            raise ValueError(f"metric {self.name}: better must be 'higher', 'lower' or None, got {self.better!r}")
        if self.per not in PER:
            raise ValueError(f"metric {self.name}: per must be one of {PER}, got {self.per!r}")

    def text(self, value: Any) -> str:
        """The value as the report prints it; ``-`` when absent or not a finite number."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return "-"
        return self.format(value)

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is no reading of this metric (missing, not finite, <= 0 where readings are > 0), or None."""
        if value is None:
            return "not recorded"
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return f"not a finite number ({value!r})"
        if value < 0 or (self.positive and value == 0):
            return f"{value!r} is no reading of {self.unit}"
        return None

    def worse(self, current: float, reference: float) -> float | None:
        """How much worse ``current`` is than ``reference``, as a fraction of it (< 0: better; None: no direction)."""
        if self.better is None or not reference:
            return None
        change = (current - reference) / abs(reference)
        return -change if self.better == "higher" else change


METRICS: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    if metric.name in METRICS:
        raise ValueError(f"metric {metric.name!r} is declared twice")
    METRICS[metric.name] = metric
    return metric


for _m in (
    Metric("samples", "samples", "sum"),
    Metric("test_samples", "samples", "sum"),
    Metric("train_samples", "samples", "sum"),
    Metric("warmup_samples", "samples", "sum"),
    Metric("steady_samples", "samples", "sum"),
    Metric("samples_per_s", "samples/s", "sum", better="higher"),
    # I/O, memory and faults of each process (workers' folded into their parent's)
    Metric("read_bytes", "bytes", "sum", per="call", format=binary_bytes),
    Metric("read_chars", "bytes", "sum", per="call", format=binary_bytes),
    Metric("dataset_bytes", "bytes", "sum", per="call", format=binary_bytes),
    Metric("minor_faults", "faults", "sum", better="lower", per="call"),
    Metric("major_faults", "faults", "sum", better="lower", per="call"),
    Metric("worker_minor_faults", "faults", "sum", better="lower", per="call"),
    Metric("peak_rss_bytes", "bytes", "max", better="lower", format=binary_bytes, report=True, title="peak RSS",
           positive=True),
    Metric("peak_device_bytes", "bytes", "max", better="lower", format=binary_bytes, report=True,
           title="peak device"),
    # CUDA only (None elsewhere): the caching allocator's reserved peak and the pinned host memory peak
    Metric("peak_reserved_bytes", "bytes", "max", better="lower", format=binary_bytes),
    Metric("peak_pinned_host_bytes", "bytes", "max", better="lower", format=binary_bytes),
    Metric("pinned_host_reason", "text", "same"),
    # the GPU's energy (NVML's counter: the whole device, hpml.measure.gpu), per sample
    Metric("device_energy_j", "J/sample", "mean", better="lower", format=joules, per="sample", report=True,
           title="GPU energy per sample"),
    Metric("device_energy_reason", "text", "same"),
    # CPU time of the process tree (hpml.measure.tracker_registry.CpuTracker), per sample
    Metric("cpu_seconds", "s/sample", "mean", better="lower", format=seconds, per="sample", report=True,
           title="CPU per sample", positive=True),
    Metric("seconds", "s", "max", better="lower", format=seconds),
    Metric("train_seconds", "s", "max", format=seconds),
    Metric("warmup_seconds", "s", "max", format=seconds),
    Metric("steady_seconds", "s", "max", format=seconds),
    Metric("train_loss", "nats", "mean", better="lower"),
    Metric("accuracy", "fraction", "weighted", better="higher"),
    Metric("top5", "fraction", "weighted", better="higher"),
    Metric("loss", "nats", "weighted", better="lower"),
    Metric("test_loss", "nats", "weighted", better="lower"),
    Metric("epoch", "epochs", "same"),
    Metric("step", "steps", "same"),
    Metric("warmup_steps", "steps", "same"),
    Metric("lr", "learning rate", "same"),
    Metric("phase", "name", "same"),
    Metric("rss_method", "name", "same"),
    Metric("counters_cover", "name", "same"),  # the region a phase's CPU/memory/I/O counters ran over
):
    register(_m)


def reduce_rule(name: str) -> str:
    """How ``name`` combines across processes; undeclared keys are rank 0's (tests/measure check there are none)."""
    metric = METRICS.get(name)
    return metric.reduce if metric is not None else "same"


def per_unit(totals: Mapping[str, Any], calls: int, samples: int) -> dict[str, Any]:
    """Region totals from the trackers as a benchmark row records them: per call or per sample."""
    out: dict[str, Any] = {}
    for name, value in totals.items():
        per = METRICS[name].per if name in METRICS else ""
        divisor = {"call": calls, "sample": samples}.get(per, 1)
        if value is None or not per:
            out[name] = value
        elif isinstance(value, int) and per == "call":
            out[name] = value // max(1, divisor)  # whole units per call, as always recorded
        else:
            out[name] = value / max(1, divisor)
    return out


def gated(names: Iterable[str] | None = None) -> list[Metric]:
    """The metrics with a direction, in declaration order (those of ``names`` when given)."""
    wanted = None if names is None else set(names)
    return [m for m in METRICS.values() if m.better is not None and (wanted is None or m.name in wanted)]


#: Summary rows carry these per-row metrics (the throughput is the speedup's business).
SUMMARY_EXCLUDE = ("samples_per_s", "seconds")


def summary_metrics(extra: Mapping[str, Any]) -> dict[str, float]:
    """The directed metrics a benchmark row's ``extra_info`` holds, for the run summary."""
    out: dict[str, float] = {}
    for metric in gated():
        value = extra.get(metric.name)
        if metric.name in SUMMARY_EXCLUDE or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(value):
            out[metric.name] = value
    return out
