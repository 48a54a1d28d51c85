"""The results schema: the case key, the :class:`Run` and :class:`Benchmark` rows of a pytest-benchmark
run, and convergence records (read from disk by :mod:`hpml.results.runfiles`)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from hpml.errors import HpmlError

#: Fields of the case key read from ``extra_info``, in the order they are printed.
KEY_FIELDS = ("phase", "dataset", "model", "device", "optimizer", "optimization", "world_size")
#: The text fields of the key (``world_size`` is a number: processes of a DDP row, 1 elsewhere).
TEXT_FIELDS = KEY_FIELDS[:-1]


@dataclass(frozen=True, order=True)
class CaseKey:
    """What identifies one row across runs (so renaming a test keeps its trend); foreign rows use ``name``."""

    phase: str = ""
    dataset: str = ""
    model: str = ""
    device: str = ""
    optimizer: str = ""
    optimization: str = ""
    world_size: int = 1
    name: str = ""  # only for foreign rows
    variant: str = ""

    @property
    def is_hpml(self) -> bool:
        """True when the key came from hpml's extra_info (not the name fallback)."""
        return not self.name

    @property
    def label(self) -> str:
        """``train:cifar10:resnet50:cpu:sgd:amp_bf16`` (``...:w2`` for two processes), or the benchmark name."""
        if not self.is_hpml:
            text = self.name
        else:
            text = ":".join(getattr(self, f) or "-" for f in TEXT_FIELDS) + self.world_suffix
        return f"{text} [{self.variant}]" if self.variant else text

    @property
    def world_suffix(self) -> str:
        """``:w2`` for a row of several processes, nothing for a single-process one."""
        return f":w{self.world_size}" if self.world_size != 1 else ""

    @property
    def config(self) -> tuple[str, ...]:
        """The key without the optimization: rows sharing it are compared to one baseline."""
        return (self.phase, self.dataset, self.model, self.device, self.optimizer, str(self.world_size), self.name,
                self.variant)

    @property
    def group(self) -> str:
        """``phase:dataset:device`` -- the pytest-benchmark group hpml benchmarks use."""
        return f"{self.phase}:{self.dataset}:{self.device}" if self.is_hpml else "other"

    def with_optimization(self, optimization: str) -> "CaseKey":
        """The same case with another optimization (``"baseline"``: the row it is compared with)."""
        return dataclasses.replace(self, optimization=optimization)


def _world_size(value: Any, name: str) -> int:
    """A row's ``world_size``: absent or null (older runs, single-process rows) is 1."""
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise HpmlError(f"row {name}: world_size is {value!r}, expected a whole number of processes >= 1; "
                        "the file is damaged, rerun the benchmarks")
    return value


def case_key(bench: dict[str, Any]) -> CaseKey:
    """The :class:`CaseKey` of one pytest-benchmark row (a ``benchmarks[]`` dict)."""
    extra = bench.get("extra_info") or {}
    name = str(bench.get("name") or bench.get("fullname") or "?")
    fields = {f: extra.get(f) for f in TEXT_FIELDS}
    # model and optimizer may be absent: phases that do not train (load, preprocess) have none
    if all(fields[f] for f in ("phase", "dataset", "device", "optimization")):
        return CaseKey(**{f: str(v or "") for f, v in fields.items()},
                       world_size=_world_size(extra.get("world_size"), name))
    return CaseKey(name=name)


def unique_keys(keys: Sequence[CaseKey], variants: Sequence[str]) -> list[CaseKey]:
    """The keys of one run's rows, made unique: a key shared by several rows gets its ``variants`` entry."""
    counts: dict[CaseKey, int] = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    return [dataclasses.replace(key, variant=variant) if counts[key] > 1 else key
            for key, variant in zip(keys, variants)]


def finite_number(value: Any) -> float | None:
    """A finite float, or None for anything else (missing, null, NaN, a string)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class Benchmark:
    """One benchmark row of one run, with the numbers hpml uses already checked."""

    key: CaseKey
    name: str
    fullname: str
    group: str | None
    median_s: float  # per call
    rounds: int
    data: tuple[float, ...] | None  # raw seconds per round (per iteration); None without --benchmark-save-data
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def metric(self, name: str) -> float | None:
        """A numeric ``extra_info`` value, or None when absent or not a finite number."""
        return finite_number(self.extra.get(name))

    @property
    def samples_per_round(self) -> float | None:
        """Samples processed by one measured call (grad_accum processes more per call)."""
        value = self.metric("samples_per_round")
        return value if value and value > 0 else None

    @property
    def samples_per_s(self) -> float | None:
        """Throughput from the median call time; extra_info's own value when samples are unknown."""
        spr = self.samples_per_round
        if spr is not None and self.median_s > 0:
            return spr / self.median_s
        return self.metric("samples_per_s")

    @property
    def profile(self) -> str | None:
        value = self.extra.get("profile")
        return str(value) if value else None


@dataclass(frozen=True)
class Run:
    """One pytest-benchmark session: provenance plus its rows keyed by :class:`CaseKey`."""

    path: Path
    datetime: str  # ISO-8601, UTC
    commit: str  # full id, "unversioned" outside git
    dirty: bool
    version: str  # pytest-benchmark's
    machine_info: dict[str, Any]
    benchmarks: dict[CaseKey, Benchmark]

    @property
    def short_commit(self) -> str:
        return (self.commit[:8] + ("*" if self.dirty else "")) if self.commit else "?"

    @property
    def has_data(self) -> bool:
        """True when every row carries raw per-round timings (``--benchmark-save-data``)."""
        return bool(self.benchmarks) and all(b.data for b in self.benchmarks.values())

    @property
    def profiles(self) -> set[str]:
        return {b.profile for b in self.benchmarks.values() if b.profile}


@dataclass(frozen=True)
class ConvergenceEpoch:
    epoch: int
    seconds: float  # cumulative wall time at the end of this epoch
    accuracy: float | None  # fraction in [0, 1] (percentages are rescaled on load)
    train_loss: float | None
    test_loss: float | None


@dataclass(frozen=True)
class ConvergenceRecord:
    """One time-to-accuracy run (``.benchmarks/convergence/*.json``)."""

    path: Path
    case: str
    target: float | None  # fraction in [0, 1]
    metric: str
    reached: bool
    time_to_target_s: float | None
    device: str
    epochs: tuple[ConvergenceEpoch, ...]
    seed: int | None = None  # one record per seed; several seeds of a case draw several curves
    error: str | None = None  # why the run stopped early
    dataset: str = ""  # the case's identity, matched against benchmark rows for the accuracy cost
    model: str = ""
    optimizer: str = ""
    optimization: str = ""

    @property
    def final_accuracy(self) -> float | None:
        """Accuracy after the last epoch (fraction); None when the run stopped early."""
        if self.error:
            return None
        last = [e.accuracy for e in self.epochs if e.accuracy is not None]
        return last[-1] if last else None

    @property
    def label(self) -> str:
        seed = f" seed {self.seed}" if self.seed is not None else ""
        device = f" ({self.device})" if self.device else ""
        return f"{self.case}{seed}{device}"
