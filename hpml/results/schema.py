"""The results schema: what identifies a benchmark row (:class:`CaseKey`), the
:class:`Run` and :class:`Benchmark` rows read from pytest-benchmark JSON, convergence
records, and finding them on disk.  ``hpml report`` and ``hpml gate`` read through it.

Three kinds of JSON land under ``.benchmarks/``:

* pytest-benchmark runs (``<machine-id>/NNNN_<commit>_<date>.json`` or ``--benchmark-json``):
  read by :func:`load_run` into a :class:`Run` of :class:`Benchmark` rows;
* hpml run summaries (``summaries/*.json``): read by :mod:`hpml.results.summary`;
* convergence records (``convergence/*.json``): read by :func:`load_convergence`.

Everything a user can get wrong (a missing, empty, truncated or foreign file) raises
:class:`~hpml.errors.HpmlError` with one line that names the file and says how to
produce a good one, so neither command ever shows a traceback for bad input.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from hpml.errors import HpmlError

#: pytest-benchmark major versions whose JSON layout hpml understands (4.x and 5.x
#: share it: ``benchmarks[].stats.{median,rounds,data}``).
SUPPORTED_PYTEST_BENCHMARK_MAJOR = (4, 5)

#: How to produce a run file, appended to error messages.
HOW_TO_RUN = (
    "produce one with `pytest benchmarks --benchmark-save-data --benchmark-json=FILE` (or --benchmark-autosave)"
)

#: The phases a benchmark row can measure (``extra_info["phase"]``), in pipeline order.
from hpml.results.phases import PHASES  # noqa: E402  (re-exported: declared once, in hpml/results/phases.py)

#: Fields of the case key read from ``extra_info``, in the order they are printed.
KEY_FIELDS = ("phase", "dataset", "model", "device", "optimizer", "optimization", "world_size")
#: The text fields of the key (``world_size`` is a number: processes of a DDP row, 1 elsewhere).
TEXT_FIELDS = KEY_FIELDS[:-1]


@dataclass(frozen=True, order=True)
class CaseKey:
    """What identifies one benchmark row across runs.

    hpml rows are keyed by ``(phase, dataset, model, device, optimizer, optimization,
    world_size)`` from ``extra_info``, so renaming a test function does not break a
    trend.  ``world_size`` tells the DDP rows of one and two processes apart (rows
    written before it was recorded, and every single-process row, have 1).  Rows
    without that extra_info (foreign benchmarks) fall back to the benchmark ``name``;
    ``variant`` tells apart rows that would otherwise collide inside one run (e.g. two
    batch sizes of the same case).
    """

    phase: str = ""
    dataset: str = ""
    model: str = ""
    device: str = ""
    optimizer: str = ""
    optimization: str = ""
    world_size: int = 1  # processes (DDP ranks) that measured the row
    name: str = ""  # set only when extra_info lacks the identity fields
    variant: str = ""

    @property
    def is_hpml(self) -> bool:
        """True when the key came from hpml's extra_info (not the name fallback)."""
        return not self.name

    @property
    def label(self) -> str:
        """One short line: ``train:cifar10:resnet50:cpu:sgd:amp_bf16`` (``...:grad_accum:w2``
        for two processes) or the benchmark name."""
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
    # phase, dataset, device and optimization are what make a row an hpml case;
    # model and optimizer may be absent for phases that do not train (load, preprocess).
    if all(fields[f] for f in ("phase", "dataset", "device", "optimization")):
        return CaseKey(**{f: str(v or "") for f, v in fields.items()},
                       world_size=_world_size(extra.get("world_size"), name))
    return CaseKey(name=name)


def unique_keys(keys: Sequence[CaseKey], variants: Sequence[str]) -> list[CaseKey]:
    """The keys of one run's rows, made unique: every key shared by several rows gets that
    row's ``variants`` entry (its benchmark name) as variant, so no row hides another."""
    counts: dict[CaseKey, int] = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    return [dataclasses.replace(key, variant=variant) if counts[key] > 1 else key
            for key, variant in zip(keys, variants)]


def _number(value: Any) -> float | None:
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
    median_s: float  # seconds per call (per iteration of a round)
    rounds: int
    data: tuple[float, ...] | None  # raw seconds per round (per iteration); None without --benchmark-save-data
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def metric(self, name: str) -> float | None:
        """A numeric ``extra_info`` value, or None when absent or not a finite number."""
        return _number(self.extra.get(name))

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
    datetime: str  # ISO-8601 as written by pytest-benchmark (UTC)
    commit: str  # full id, "unversioned" outside git
    dirty: bool
    version: str  # pytest-benchmark version that wrote the file
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


def read_json(path: Path, what: str, how: str) -> Any:
    """Parse ``path`` as JSON; every failure becomes one line naming the file and ``how`` to fix it."""
    path = Path(path)
    if not path.exists():
        raise HpmlError(f"{path}: no such {what}; {how}")
    if path.is_dir():
        raise HpmlError(f"{path}: is a directory, expected a {what} JSON file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise HpmlError(f"{path}: cannot read the {what} ({exc.__class__.__name__}: {exc}); {how}") from None
    if not text.strip():
        raise HpmlError(f"{path}: empty file, expected a {what}; {how}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise HpmlError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}), the {what} is corrupt or truncated; {how}"
        ) from None


def kind_of(obj: Any) -> str:
    """Which hpml input a parsed JSON document is: ``run``, ``summary``, ``convergence`` or ``unknown``."""
    if not isinstance(obj, dict):
        return "unknown"
    if obj.get("kind") == "convergence":
        return "convergence"
    if "benchmarks" in obj and "machine_info" in obj:
        return "run"
    if "rows" in obj and "hpml_schema" in obj:
        return "summary"
    return "unknown"


def _check_version(path: Path, version: Any) -> str:
    if not isinstance(version, str) or not version.split(".")[0].isdigit():
        raise HpmlError(
            f"{path}: no pytest-benchmark 'version' field, so the file's layout is unknown; {HOW_TO_RUN}"
        )
    major = int(version.split(".")[0])
    if major not in SUPPORTED_PYTEST_BENCHMARK_MAJOR:
        supported = "/".join(f"{m}.x" for m in SUPPORTED_PYTEST_BENCHMARK_MAJOR)
        raise HpmlError(
            f"{path}: written by pytest-benchmark {version}, hpml reads the {supported} layout; "
            f"rerun the benchmarks with a supported pytest-benchmark"
        )
    return version


def run_from_json(obj: Any, path: Path, *, check_version: bool = True) -> Run:
    """Validate a parsed pytest-benchmark document and build a :class:`Run`.

    ``check_version=False`` is for rows handed over in-process by the running
    pytest-benchmark (the conftest's summary writer), whose layout is the installed one.
    """
    kind = kind_of(obj)
    if kind != "run":
        found = {"summary": "an hpml run summary", "convergence": "a convergence record"}.get(kind, "something else")
        raise HpmlError(f"{path}: not a pytest-benchmark run file (it is {found}); {HOW_TO_RUN}")
    version = _check_version(path, obj.get("version")) if check_version else str(obj.get("version") or "")
    raw = obj["benchmarks"]
    if not isinstance(raw, list):
        raise HpmlError(f"{path}: 'benchmarks' is not a list; the file is damaged; {HOW_TO_RUN}")
    if not raw:
        raise HpmlError(f"{path}: holds no benchmarks (was every benchmark skipped or deselected?); {HOW_TO_RUN}")
    rows: list[Benchmark] = []
    for i, bench in enumerate(raw):
        if not isinstance(bench, dict):
            raise HpmlError(f"{path}: benchmarks[{i}] is not an object; the file is damaged")
        name = bench.get("name") or bench.get("fullname") or f"benchmarks[{i}]"
        stats = bench.get("stats")
        if not isinstance(stats, dict):
            raise HpmlError(f"{path}: benchmark {name!r} has no 'stats'; the file is damaged; {HOW_TO_RUN}")
        median = _number(stats.get("median"))
        rounds = _number(stats.get("rounds"))
        raw_median = stats.get("median")
        if isinstance(raw_median, float) and not math.isfinite(raw_median):
            raise HpmlError(f"{path}: benchmark {name!r} has stats.median {raw_median}: its timings are not numbers, "
                            f"so nothing can be reported from them; {HOW_TO_RUN}")
        if median == 0:
            raise HpmlError(f"{path}: benchmark {name!r} has stats.median 0 s (all-zero timings): the timer measured "
                            f"nothing, so no speed can be computed; {HOW_TO_RUN}")
        if median is None or median < 0 or rounds is None:
            raise HpmlError(f"{path}: benchmark {name!r} lacks stats.median/stats.rounds; the file is damaged")
        data_raw = stats.get("data")
        data: tuple[float, ...] | None = None
        if isinstance(data_raw, list) and data_raw:
            values = [_number(v) for v in data_raw]
            if any(v is None or v < 0 for v in values):
                raise HpmlError(f"{path}: benchmark {name!r} has non-numeric stats.data; the file is damaged")
            data = tuple(v for v in values if v is not None)
        extra = bench.get("extra_info") if isinstance(bench.get("extra_info"), dict) else {}
        try:
            key = case_key(bench)
        except HpmlError as exc:
            raise HpmlError(f"{path}: {exc}") from None
        rows.append(Benchmark(
            key=key, name=str(name), fullname=str(bench.get("fullname") or name),
            group=bench.get("group"), median_s=median, rounds=int(rounds), data=data, extra=dict(extra),
        ))
    commit = obj.get("commit_info") if isinstance(obj.get("commit_info"), dict) else {}
    machine = obj.get("machine_info") if isinstance(obj.get("machine_info"), dict) else {}
    return Run(
        path=path, datetime=str(obj.get("datetime") or ""), commit=str(commit.get("id") or "unknown"),
        dirty=bool(commit.get("dirty")), version=version, machine_info=machine,
        benchmarks=_unique(rows),
    )


def _unique(rows: list[Benchmark]) -> dict[CaseKey, Benchmark]:
    """Key rows by case; rows that share a case inside one run get their name as a variant."""
    keys = unique_keys([r.key for r in rows], [r.name if r.key.is_hpml else r.fullname for r in rows])
    return {key: row if key == row.key else dataclasses.replace(row, key=key) for key, row in zip(keys, rows)}


def load_run(path: Path | str) -> Run:
    """Read one pytest-benchmark JSON file (raises HpmlError on anything unusable)."""
    path = Path(path)
    return run_from_json(read_json(path, "pytest-benchmark run file", HOW_TO_RUN), path)


def json_files(paths: Iterable[Path | str]) -> list[Path]:
    """Expand files and directories (recursively) into the JSON files they hold, sorted."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(sorted(q for q in p.rglob("*.json") if q.is_file()))
        elif p.exists():
            found.append(p)
        else:
            raise HpmlError(f"{p}: no such file or directory; {HOW_TO_RUN}")
    return found


@dataclass(frozen=True)
class Inputs:
    """Everything found under the given paths, sorted; ``skipped`` explains what was ignored."""

    runs: list[Run]
    convergence: list["ConvergenceRecord"]
    skipped: list[str]


def discover(paths: Iterable[Path | str], explicit: Iterable[Path | str] = ()) -> Inputs:
    """Classify every JSON under ``paths``.

    A file named explicitly (``explicit``) must be readable or the call fails; a file
    merely found while walking a directory is skipped with a note instead, so one
    half-written file in ``.benchmarks/`` does not block a report of everything else.
    """
    explicit_set = {Path(p).resolve() for p in explicit}
    runs: list[Run] = []
    records: list[ConvergenceRecord] = []
    skipped: list[str] = []
    for path in json_files(paths):
        try:
            obj = read_json(path, "JSON input", HOW_TO_RUN)
            kind = kind_of(obj)
            if kind == "run":
                runs.append(run_from_json(obj, path))
            elif kind == "convergence":
                records.append(convergence_from_json(obj, path))
            elif kind == "summary":
                if path.resolve() in explicit_set:
                    run_from_json(obj, path)  # raises: names what the file is and what to pass instead
                continue  # summaries are derived from runs; the report recomputes them
            else:
                raise HpmlError(f"{path}: neither a pytest-benchmark run, a run summary nor a convergence record")
        except HpmlError as exc:
            if path.resolve() in explicit_set:
                raise
            skipped.append(str(exc))  # the caller says so, once, with what it did instead
    runs.sort(key=lambda r: (r.datetime, str(r.path)))
    records.sort(key=lambda r: (r.case, r.seed if r.seed is not None else -1, str(r.path)))
    return Inputs(runs, records, skipped)


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
    error: str | None = None  # why the run stopped early, when it did
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


def _fraction(value: Any) -> float | None:
    """Accuracies as fractions: a value above 1 is read as a percentage."""
    v = _number(value)
    if v is None:
        return None
    return v / 100.0 if v > 1.0 else v


HOW_TO_CONVERGE = "produce one with `pytest -m convergence tests/convergence` (writes .benchmarks/convergence/*.json)"


def convergence_from_json(obj: Any, path: Path) -> ConvergenceRecord:
    """Validate one convergence record; only ``case``-like identity and ``epochs`` are required."""
    if not isinstance(obj, dict) or obj.get("kind") != "convergence":
        raise HpmlError(f"{path}: not a convergence record (no \"kind\": \"convergence\"); {HOW_TO_CONVERGE}")
    case = obj.get("case") or "-".join(
        str(obj[k]) for k in ("model", "dataset", "optimizer", "optimization") if obj.get(k)
    )
    if not case:
        raise HpmlError(f"{path}: convergence record names no case (no 'case' or model/dataset fields)")
    raw_epochs = obj.get("epochs")
    if not isinstance(raw_epochs, list):
        raise HpmlError(f"{path}: convergence record {case!r} has no 'epochs' list; {HOW_TO_CONVERGE}")
    epochs = []
    for i, e in enumerate(raw_epochs):
        if not isinstance(e, dict) or _number(e.get("seconds")) is None:
            raise HpmlError(f"{path}: convergence record {case!r} epochs[{i}] lacks 'seconds'")
        epochs.append(ConvergenceEpoch(
            epoch=int(_number(e.get("epoch")) or i + 1), seconds=float(e["seconds"]),
            accuracy=_fraction(e.get("accuracy")), train_loss=_number(e.get("train_loss")),
            test_loss=_number(e.get("test_loss")),
        ))
    return ConvergenceRecord(
        path=path, case=str(case), target=_fraction(obj.get("target")), metric=str(obj.get("metric") or "accuracy"),
        reached=bool(obj.get("reached")), time_to_target_s=_number(obj.get("time_to_target_s")),
        device=str(obj.get("device") or ""), epochs=tuple(epochs),
        seed=int(obj["seed"]) if _number(obj.get("seed")) is not None else None,
        error=str(obj["error"]) if obj.get("error") else None,
        **{f: str(obj.get(f) or "") for f in ("dataset", "model", "optimizer", "optimization")},
    )


def load_convergence(path: Path | str) -> ConvergenceRecord:
    path = Path(path)
    return convergence_from_json(read_json(path, "convergence record", HOW_TO_CONVERGE), path)
