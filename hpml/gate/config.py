"""``[tool.hpml.gate]`` in pyproject.toml, validated once: a typo in a key fails loudly instead of
disabling a check.  The layout and pattern precedence: docs/gate.md."""

from __future__ import annotations

import fnmatch
import math
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpml.errors import HpmlError
from hpml.gate.significance import MIN_SESSION_PAIRS
from hpml.results.phase_names import PHASES
from hpml.results.schema import CaseKey
from hpml.results.metric_registry import gated

DEFAULT_TOLERANCE = 0.15  # relative drop allowed below an expected / reference speedup
DEFAULT_ALPHA = 0.05  # family-wise false-alarm probability of one A/B gate run
DEFAULT_MIN_EFFECT = 0.05  # relative change of the median time below which A/B never flags
DEFAULT_REPEATS = 6  # --base: session pairs, the unit the paired test replicates over
DEFAULT_PAIRS = 3  # --base: fixed pairs per hpml row and session (no adaptive stop; see hpml.bench.pairing)
TESTS = ("quantile", "mannwhitney")
#: The bundled digits set's baseline rows, without end-to-end (~30 s a call on a 2-core CPU): no download.
DEFAULT_BENCH_ARGS: tuple[str, ...] = ("benchmarks", "-k", "digits and baseline and not end_to_end")

PATTERN_FIELDS = ("phase", "dataset", "device", "optimization")
_KNOWN_KEYS = {"tolerance", "alpha", "min_effect", "test", "repeats", "pairs", "bench_args", "min_speedup",
               "reference", "metrics"}
_DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class Expectation:
    """A minimal same-run speedup for the cases matching ``pattern``."""

    pattern: str  # "phase:dataset:device:optimization"
    min_speedup: float | None  # x baseline throughput; None: the low end of the reference run's interval
    tolerance: float | None = None  # overrides the table-wide tolerance when set

    @property
    def describe(self) -> str:
        return "reference interval" if self.min_speedup is None else f"{self.min_speedup:g}x"

    @property
    def fields(self) -> tuple[str, ...]:
        """``(phase, dataset, model, device, optimization)`` (see :func:`split_pattern`)."""
        return split_pattern(self.pattern)

    @property
    def literal_fields(self) -> int:
        """How specific the pattern is: the number of fields without wildcards."""
        return sum(1 for f in self.fields if not any(c in f for c in "*?["))

    def matches(self, key: CaseKey) -> bool:
        values = (key.phase, key.dataset, key.model or "", key.device, key.optimization)
        return key.is_hpml and all(fnmatch.fnmatchcase(v, p) for v, p in zip(values, self.fields))


def split_pattern(pattern: str) -> tuple[str, ...]:
    """``phase:dataset[:model]:device:optimization`` -> five fields; the model may hold colons (``timm:x``)."""
    parts = pattern.split(":")
    if len(parts) < len(PATTERN_FIELDS):
        raise ValueError(pattern)
    model = ":".join(parts[2:-2]) or "*"
    return (parts[0], parts[1], model, parts[-2], parts[-1])


@dataclass(frozen=True)
class GateConfig:
    """The validated ``[tool.hpml.gate]`` table (defaults when absent)."""

    tolerance: float = DEFAULT_TOLERANCE
    alpha: float = DEFAULT_ALPHA
    min_effect: float = DEFAULT_MIN_EFFECT
    test: str = "quantile"
    repeats: int = DEFAULT_REPEATS
    pairs: int = DEFAULT_PAIRS
    bench_args: tuple[str, ...] = DEFAULT_BENCH_ARGS
    expectations: tuple[Expectation, ...] = ()
    # summaries whose intervals "reference" expectations come from, by CPU class ("*": any machine)
    references: tuple[tuple[str, Path], ...] = ()
    # metrics held to the reference summary (hpml.results.metric_registry, those with a direction)
    metrics: tuple[str, ...] = ()
    source: Path | None = None  # the pyproject.toml read, for messages

    def __post_init__(self) -> None:
        where = f" in {self.source}" if self.source else ""
        if not 0.0 <= self.tolerance < 1.0:
            raise HpmlError(f"[tool.hpml.gate] tolerance must be in [0, 1), got {self.tolerance}{where}")
        if not 0.0 < self.alpha < 1.0:
            raise HpmlError(f"[tool.hpml.gate] alpha must be in (0, 1), got {self.alpha}{where}")
        if not 0.0 <= self.min_effect < 1.0:
            raise HpmlError(f"[tool.hpml.gate] min_effect must be in [0, 1), got {self.min_effect}{where}")
        if self.test not in TESTS:
            raise HpmlError(f"[tool.hpml.gate] test must be one of {', '.join(TESTS)}, got {self.test!r}{where}")
        if self.repeats < MIN_SESSION_PAIRS:  # checked here, before --base runs a single session
            raise HpmlError(f"[tool.hpml.gate] repeats must be >= {MIN_SESSION_PAIRS} (the paired test's "
                            f"session pairs), got {self.repeats}{where}")
        if self.pairs < 1:
            raise HpmlError(f"[tool.hpml.gate] pairs must be >= 1, got {self.pairs}{where}")
        allowed = [m.name for m in gated()]
        for name in self.metrics:
            if name not in allowed:
                raise HpmlError(f"[tool.hpml.gate] metrics: {name!r} is not a metric with a direction{where}; "
                                f"choose from {', '.join(allowed)}")

    @property
    def reference(self) -> Path | None:
        """The reference for any machine (a plain ``reference = "path"``), if one is configured."""
        return dict(self.references).get("*")

    def reference_for(self, cpu_class: str | None) -> Path | None:
        """The reference summary measured on this CPU class (or the any-machine one)."""
        refs = dict(self.references)
        return refs.get(cpu_class) if cpu_class in refs else refs.get("*")

    def expectation_for(self, key: CaseKey) -> Expectation | None:
        """The most specific expectation matching ``key`` (None: report, do not gate)."""
        best: Expectation | None = None
        for exp in self.expectations:
            if exp.matches(key) and (best is None or exp.literal_fields > best.literal_fields):
                best = exp
        return best

    def tolerance_for(self, exp: Expectation | None) -> float:
        return exp.tolerance if exp is not None and exp.tolerance is not None else self.tolerance


def find_pyproject(start: Path | None = None) -> Path | None:
    """The first ``pyproject.toml`` in ``start`` (default: cwd) or one of its parents."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def _number(table: str, name: str, value: Any, source: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise HpmlError(f"{source}: [{table}] {name} must be a number, got {value!r}")
    return float(value)


def _expectation(pattern: Any, value: Any, source: Path) -> Expectation:
    table = "tool.hpml.gate.min_speedup"
    if not isinstance(pattern, str) or len(pattern.split(":")) < len(PATTERN_FIELDS):
        raise HpmlError(
            f"{source}: [{table}] key {pattern!r} must have the form {':'.join(PATTERN_FIELDS)} "
            f"(use * for any), e.g. \"train:*:cpu:amp_bf16\", or name the model after the dataset "
            f"(\"train:cifar10:timm:resnet18:cpu:amp_bf16\")"
        )
    phase, _, _, device, _ = split_pattern(pattern)
    if not fnmatch.filter(PHASES, phase):
        raise HpmlError(f"{source}: [{table}] {pattern!r}: phase {phase!r} matches none of {', '.join(PHASES)}")
    if not fnmatch.filter(_DEVICES, device):
        raise HpmlError(f"{source}: [{table}] {pattern!r}: device {device!r} matches none of {', '.join(_DEVICES)}")
    tolerance = None
    if isinstance(value, dict):
        unknown = set(value) - {"min", "tolerance"}
        if unknown or "min" not in value:
            raise HpmlError(
                f"{source}: [{table}] {pattern!r} must be a number or {{ min = X, tolerance = Y }}, "
                f"got keys {', '.join(sorted(value))}"
            )
        minimum = _minimum(table, pattern, value["min"], source)
        if "tolerance" in value:
            tolerance = _number(table, f"{pattern}.tolerance", value["tolerance"], source)
            if not 0.0 <= tolerance < 1.0:
                raise HpmlError(f"{source}: [{table}] {pattern!r} tolerance must be in [0, 1), got {tolerance}")
    else:
        minimum = _minimum(table, pattern, value, source)
    if minimum is not None and not (math.isfinite(minimum) and minimum > 0):
        raise HpmlError(f"{source}: [{table}] {pattern!r} must be a positive speedup, got {minimum}")
    return Expectation(pattern, minimum, tolerance)


def _minimum(table: str, pattern: str, value: Any, source: Path) -> float | None:
    """A number, or ``"reference"`` (None): the low end of the reference summary's interval."""
    if value == "reference":
        return None
    if isinstance(value, str):
        raise HpmlError(f"{source}: [{table}] {pattern!r} must be a number or \"reference\", got {value!r}")
    return _number(table, pattern, value, source)


def config_from_table(table: dict[str, Any], source: Path) -> GateConfig:
    """Validate a parsed ``[tool.hpml.gate]`` table."""
    unknown = set(table) - _KNOWN_KEYS
    if unknown:
        raise HpmlError(
            f"{source}: unknown key(s) {', '.join(sorted(unknown))} in [tool.hpml.gate]; "
            f"allowed: {', '.join(sorted(_KNOWN_KEYS))}"
        )
    kwargs: dict[str, Any] = {"source": source}
    for name in ("tolerance", "alpha", "min_effect"):
        if name in table:
            kwargs[name] = _number("tool.hpml.gate", name, table[name], source)
    if "test" in table:
        kwargs["test"] = str(table["test"])
    for name in ("repeats", "pairs"):
        if name in table:
            if not isinstance(table[name], int) or isinstance(table[name], bool):
                raise HpmlError(f"{source}: [tool.hpml.gate] {name} must be an integer, got {table[name]!r}")
            kwargs[name] = table[name]
    if "bench_args" in table:
        kwargs["bench_args"] = parse_bench_args(table["bench_args"], source)
    if "reference" in table:
        ref = table["reference"]
        paths = ref if isinstance(ref, dict) else {"*": ref}
        if not paths or not all(isinstance(v, str) and v for v in paths.values()):
            raise HpmlError(f"{source}: [tool.hpml.gate] reference must be a path to a run summary, or a table "
                            f"of CPU class (\"AVX2\", \"AVX512+bf16\") = path, got {ref!r}")
        # relative to the pyproject.toml
        kwargs["references"] = tuple((cls, source.parent / path) for cls, path in paths.items())
    if "metrics" in table:
        names = table["metrics"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise HpmlError(f"{source}: [tool.hpml.gate] metrics must be a list of metric names, got {names!r}")
        kwargs["metrics"] = tuple(names)
    speedups = table.get("min_speedup", {})
    if not isinstance(speedups, dict):
        raise HpmlError(f"{source}: [tool.hpml.gate.min_speedup] must be a table of \"pattern\" = speedup")
    kwargs["expectations"] = tuple(_expectation(k, v, source) for k, v in speedups.items())
    return GateConfig(**kwargs)


def parse_bench_args(value: Any, source: Path | str = "--bench-args") -> tuple[str, ...]:
    """A pytest argument list from a shell-like string or a list of strings."""
    if isinstance(value, str):
        try:
            return tuple(shlex.split(value))
        except ValueError as exc:
            raise HpmlError(f"{source}: bench_args {value!r} is not a valid shell-like string ({exc})") from None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise HpmlError(f"{source}: bench_args must be a string or a list of strings, got {value!r}")


def load_gate_config(pyproject: Path | None = None, start: Path | None = None) -> GateConfig:
    """Read ``[tool.hpml.gate]`` from ``pyproject`` or the nearest pyproject.toml above ``start``."""
    path = pyproject if pyproject is not None else find_pyproject(start)
    if path is None:
        return GateConfig()
    if not path.is_file():
        raise HpmlError(f"{path}: no such pyproject.toml")
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise HpmlError(f"{path}: cannot parse TOML ({exc})") from None
    table = data.get("tool", {}).get("hpml", {}).get("gate")
    if table is None:
        return GateConfig(source=path)
    if not isinstance(table, dict):
        raise HpmlError(f"{path}: [tool.hpml.gate] must be a table")
    return config_from_table(table, path)


__all__ = ["GateConfig", "Expectation", "load_gate_config", "find_pyproject", "parse_bench_args"]
