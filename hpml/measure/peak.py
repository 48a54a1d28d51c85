"""Measured peak matmul FLOP/s of this machine, cached per fingerprint (docs/measurement.md)."""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from hpml.cpuinfo import cpu_flags
from hpml.errors import HpmlError
from hpml.measure.timers import DeviceLike, as_device, synchronize
from hpml.files import write_text_atomic

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}
_DTYPE_ALIASES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "half": "float16"}

#: Largest square size probed per device type (2048^3: 17.2 GFLOP, ~0.2 s on a few CPU cores).
DEFAULT_N = {"cpu": 2048, "cuda": 8192, "mps": 4096}
#: Time spent in timed repetitions (s), after the warm-up, over all repeated probes.
DEFAULT_BUDGET_S = 0.5
#: Best-of-N probes whose median is the measured peak (odd: the median is one probe).
PROBE_REPEATS = 5
#: A re-probe further than this (fraction) from the previous one is flagged.
DRIFT_LIMIT = 0.2
MIN_REPS = 3
MAX_REPS = 50
#: Matmuls per timed repetition on an accelerator, so launch latency is amortized.
_DEVICE_INNER = 10
#: Smallest CPU size: the probe shrinks n until 3 reps fit the budget (emulated fp16 is ~100x slower).
_MIN_CPU_N = 256


def cache_path() -> Path:
    """Where measured peaks are cached: in :func:`hpml.results.machine_facts.cache_dir`."""
    from hpml.results.machine_facts import cache_dir

    return cache_dir() / "peak_flops.json"


def _as_dtype(dtype: torch.dtype | str) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        if dtype in DTYPES.values():
            return dtype
    elif isinstance(dtype, str):
        name = _DTYPE_ALIASES.get(dtype, dtype.removeprefix("torch."))
        if name in DTYPES:
            return DTYPES[name]
    raise HpmlError(f"unsupported dtype {dtype!r} for the peak probe; choose from {', '.join(DTYPES)}")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("model name", "Hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown-cpu"


def machine_fingerprint(device: DeviceLike = "cpu") -> dict[str, Any]:
    """What a peak FLOP/s depends on: hardware, torch version, threads, matmul settings."""
    dev = as_device(device)
    fingerprint: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count() or 0,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "fp32_precision": torch.get_float32_matmul_precision(),
        "gpu": "",
    }
    if dev.type == "cuda":
        fingerprint["gpu"] = torch.cuda.get_device_name(dev)
        fingerprint["tf32"] = bool(torch.backends.cuda.matmul.allow_tf32)
    return fingerprint


def _cache_key(fingerprint: dict[str, Any], device: torch.device, dtype: torch.dtype, n: int) -> str:
    parts = [f"{k}={fingerprint[k]}" for k in sorted(fingerprint)]
    return "|".join([*parts, f"device={device.type}", f"dtype={str(dtype).removeprefix('torch.')}", f"n={n}"])


def _load_cache(path: Path) -> dict[str, Any]:
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):  # corrupt or unreadable: ignored, rewritten on store
        return {}
    return data if isinstance(data, dict) else {}


def _store(path: Path, key: str, entry: dict[str, Any]) -> None:
    """Add ``entry`` under ``key`` atomically (of two concurrent probes one may be lost: re-measured later)."""
    data = _load_cache(path)
    data[key] = entry
    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True), parents=True)


def _cached_value(entry: Any) -> float | None:
    if isinstance(entry, dict):
        value = entry.get("flops_per_s")
        if isinstance(value, (int, float)) and math.isfinite(value) and value > 0:
            return float(value)
    return None


def _time_matmuls(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor, inner: int) -> float:
    """Seconds for ``inner`` back-to-back ``a @ b`` on a's device."""
    dev = a.device
    if dev.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        synchronize(dev)  # host-device sync
        with torch.cuda.device(dev):
            start.record()
            for _ in range(inner):
                torch.matmul(a, b, out=out)
            end.record()
        end.synchronize()  # host waits for the end event
        return start.elapsed_time(end) / 1e3  # ms -> s
    synchronize(dev)  # host-device sync (MPS); no-op on CPU
    t0 = time.perf_counter()
    for _ in range(inner):
        torch.matmul(a, b, out=out)
    synchronize(dev)  # host-device sync (MPS); no-op on CPU
    return time.perf_counter() - t0


def _operands(n: int, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    return a, b, torch.empty(n, n, device=device, dtype=dtype)


def _matmul_probe(device: torch.device, dtype: torch.dtype, n: int, budget_s: float) -> tuple[float, int]:
    """Best FLOP/s of n x n matmuls over ~``budget_s`` seconds; returns (FLOP/s, n used)."""
    inner = 1 if device.type == "cpu" else _DEVICE_INNER
    if device.type == "cpu" and n > _MIN_CPU_N:
        # size the probe from a small matmul, so a slow dtype cannot take minutes
        small = _operands(_MIN_CPU_N, device, dtype)
        _time_matmuls(*small, inner=1)  # warm-up
        rate = 2 * _MIN_CPU_N**3 / max(_time_matmuls(*small, inner=1), 1e-9)  # FLOP/s
        while n > _MIN_CPU_N and 2 * n**3 / rate > budget_s / MIN_REPS:
            n //= 2
    a, b, out = _operands(n, device, dtype)
    _time_matmuls(a, b, out, inner=1)  # warm-up: allocation, kernel selection, lazy init
    best, spent, reps = math.inf, 0.0, 0
    while reps < MIN_REPS or (spent < budget_s and reps < MAX_REPS):
        seconds = _time_matmuls(a, b, out, inner)
        best, spent, reps = min(best, seconds), spent + seconds, reps + 1
    return 2 * n**3 * inner / best, n  # 2 FLOPs per multiply-add


@dataclass(frozen=True)
class PeakEstimate:
    """A peak FLOP/s and how it was obtained."""

    flops_per_s: float  # median of the best-of-N probes
    threads: int
    probes: tuple[float, ...] = ()  # each probe's FLOP/s (empty: read from the cache)
    previous: float | None = None  # the cached value this probe replaced
    theoretical_flops_per_s: float | None = None
    theoretical_basis: str | None = None
    flags: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {
            "peak_flops": self.flops_per_s, "peak_threads": self.threads, "peak_probes": list(self.probes),
            "peak_previous": self.previous, "theoretical_peak_flops": self.theoretical_flops_per_s,
            "theoretical_peak_basis": self.theoretical_basis, "peak_flags": list(self.flags),
        }


def _cpu_flags_and_mhz() -> tuple[set[str], float | None]:
    """The CPU's flags and its rated maximum clock (MHz, cpufreq's; None without it: docs/measurement.md)."""
    flags = set(cpu_flags())
    try:
        with open("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq") as f:
            return flags, int(f.read()) / 1e3  # kHz
    except (OSError, ValueError):
        return flags, None


#: FLOPs per cycle per core, an upper bound (two full-width FMA pipes); the first match wins, so
#: AMX comes first.  The table's basis: docs/measurement.md.
_FLOPS_PER_CYCLE: dict[str, list[tuple[frozenset[str], int, str]]] = {
    "float32": [(frozenset({"avx512f"}), 64, "2 FMA pipes"), (frozenset({"avx2", "fma"}), 32, "2 FMA pipes")],
    "bfloat16": [(frozenset({"amx_bf16", "amx_tile"}), 1024, "AMX tiles"),
                 (frozenset({"avx512_bf16"}), 128, "2 FMA pipes")],
    "float16": [(frozenset({"amx_fp16", "amx_tile"}), 1024, "AMX tiles"),
                (frozenset({"avx512_fp16"}), 128, "2 FMA pipes")],
}


def theoretical_cpu_peak(dtype: torch.dtype | str, threads: int | None = None,
                         cpuinfo: tuple[set[str], float | None] | None = None) -> tuple[float, str] | None:
    """(FLOP/s, basis) = cores x rated max clock x FLOPs/cycle for ``threads`` cores, where derivable."""
    name = str(_as_dtype(dtype)).removeprefix("torch.")
    flags, mhz = cpuinfo if cpuinfo is not None else _cpu_flags_and_mhz()
    cores = min(threads or torch.get_num_threads(), os.cpu_count() or 1)
    if not mhz:
        return None
    for needed, per_cycle, unit in _FLOPS_PER_CYCLE.get(name, []):
        if needed <= flags:
            basis = (f"{cores} cores x {mhz:.0f} MHz (cpufreq cpuinfo_max_freq) x {per_cycle} {name} FLOP/cycle "
                     f"({'+'.join(sorted(needed))}, {unit})")
            return cores * mhz * 1e6 * per_cycle, basis
    return None


def peak_flags(peak_fraction: float | None, estimate: PeakEstimate | None = None,
               emulated: bool = False) -> list[str]:
    """Why a peak-relative figure is suspect: the estimate's own flags, plus a fraction above 1."""
    out = list(estimate.flags) if estimate is not None else []
    if peak_fraction is not None and peak_fraction > 1:
        cause = ("the dtype is emulated on this CPU: its matmul peak is the emulation's and the step ran much "
                 "of its work in fp32" if emulated else "the measured peak is too low")
        out.append(f"peak_fraction {peak_fraction:.2f} > 1: {cause}")
    return out


def peak_estimate(
    device: DeviceLike,
    dtype: torch.dtype | str = torch.float32,
    *,
    refresh: bool = False,
    n: int | None = None,
    budget_s: float = DEFAULT_BUDGET_S,
    repeats: int = PROBE_REPEATS,
) -> PeakEstimate:
    """Peak matmul FLOP/s of ``device`` in ``dtype`` at this thread count: cached, or probed (``refresh``)."""
    dev = as_device(device)
    dt = _as_dtype(dtype)
    size = n if n is not None else DEFAULT_N.get(dev.type, DEFAULT_N["cpu"])
    if size < 1:
        raise HpmlError(f"probe size n must be positive, got {size}")
    if repeats < 1:
        raise HpmlError(f"peak probe repeats must be >= 1, got {repeats}")
    fingerprint = machine_fingerprint(dev)
    threads = fingerprint["threads"]
    theory = theoretical_cpu_peak(dt, threads) if dev.type == "cpu" else None
    key = _cache_key(fingerprint, dev, dt, size)
    path = cache_path()
    cached = _cached_value(_load_cache(path).get(key))
    flags: list[str] = []
    if cached is not None and not refresh:
        value, probes = cached, ()
    else:
        # the first probe sizes n; the others reuse it, so the median compares like with like
        results = [_matmul_probe(dev, dt, size, budget_s / repeats)]
        results += [_matmul_probe(dev, dt, results[0][1], budget_s / repeats) for _ in range(repeats - 1)]
        probes = tuple(r[0] for r in results)
        value = statistics.median(probes)
        if cached is not None and abs(value / cached - 1) > DRIFT_LIMIT:
            flags.append(f"probe drift: {value / 1e9:.1f} GFLOP/s vs {cached / 1e9:.1f} previously "
                         f"(> {DRIFT_LIMIT:.0%} apart)")
        entry = {
            "flops_per_s": value,
            "probes": list(probes),
            "previous": cached,
            "n": results[len(results) // 2][1],
            "machine": fingerprint,
            "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        try:
            _store(path, key, entry)
        except OSError as exc:  # a read-only home must not lose the measurement
            warnings.warn(f"could not cache peak FLOP/s in {path}: {exc}", stacklevel=2)
    if theory is not None and value > theory[0]:
        flags.append(f"measured peak {value / 1e9:.1f} GFLOP/s above the theoretical {theory[0] / 1e9:.1f}")
    return PeakEstimate(
        flops_per_s=value, threads=threads, probes=probes, previous=cached if probes else None,
        theoretical_flops_per_s=theory[0] if theory else None, theoretical_basis=theory[1] if theory else None,
        flags=tuple(flags),
    )


def measured_peak_flops(
    device: DeviceLike,
    dtype: torch.dtype | str = torch.float32,
    *,
    refresh: bool = False,
    n: int | None = None,
    budget_s: float = DEFAULT_BUDGET_S,
) -> float:
    """Peak matmul FLOP/s of ``device`` in ``dtype`` (see :func:`peak_estimate`)."""
    return peak_estimate(device, dtype, refresh=refresh, n=n, budget_s=budget_s).flops_per_s
