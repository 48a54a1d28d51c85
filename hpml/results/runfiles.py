"""Run files on disk: finding them, and the one reader of runs and convergence records.  Anything
unusable is a one-line :class:`~hpml.errors.HpmlError` naming the file and how to produce a good one."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from hpml.errors import HpmlError
from hpml.results.schema import Benchmark, CaseKey, ConvergenceEpoch, ConvergenceRecord, Run, case_key, finite_number, unique_keys

#: pytest-benchmark major versions whose JSON layout hpml reads (``benchmarks[].stats.{median,rounds,data}``).
SUPPORTED_PYTEST_BENCHMARK_MAJOR = (4, 5)

HOW_TO_RUN = (
    "produce one with `pytest benchmarks --benchmark-save-data --benchmark-json=FILE` (or --benchmark-autosave)"
)


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
    """Validate a parsed pytest-benchmark document and build a :class:`Run`."""
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
        median = finite_number(stats.get("median"))
        rounds = finite_number(stats.get("rounds"))
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
            values = [finite_number(v) for v in data_raw]
            if any(v is None or v < 0 for v in values):
                raise HpmlError(f"{path}: benchmark {name!r} has non-numeric stats.data; the file is damaged")
            data = tuple(v for v in values if v is not None)
        extra = bench.get("extra_info") if isinstance(bench.get("extra_info"), dict) else {}
        check_speedups(path, str(bench.get("fullname") or name), extra)
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


def _positive(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and 0 < value < math.inf


def check_speedups(path: Path, name: str, info: dict[str, Any]) -> None:
    """A row's speedup and its interval are absent or positive finite numbers, else the file is broken."""
    speedup, interval = info.get("speedup_vs_baseline"), info.get("speedup_interval")
    if speedup is not None and not _positive(speedup):
        raise HpmlError(f"{path}: row {name}: speedup_vs_baseline {speedup!r} is not a positive number")
    if interval is not None and not (isinstance(interval, list) and len(interval) == 2
                                     and all(map(_positive, interval))):
        raise HpmlError(f"{path}: row {name}: speedup_interval {interval!r} is not two positive numbers")


def hpml_rows(run: Run) -> dict[str, dict[str, Any]]:
    """A run's hpml rows: ``extra_info`` by benchmark fullname (rows without a phase are foreign)."""
    rows = {b.fullname: b.extra for b in run.benchmarks.values() if "phase" in b.extra}
    if not rows:
        raise HpmlError(f"{run.path}: holds no hpml benchmark rows")
    return rows


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
    """Classify every JSON under ``paths``; a file found in a folder, not named in ``explicit``, may be skipped."""
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
            skipped.append(str(exc))
    runs.sort(key=lambda r: (r.datetime, str(r.path)))
    records.sort(key=lambda r: (r.case, r.seed if r.seed is not None else -1, str(r.path)))
    return Inputs(runs, records, skipped)




def _fraction(value: Any) -> float | None:
    """Accuracies as fractions: a value above 1 is read as a percentage."""
    v = finite_number(value)
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
        if not isinstance(e, dict) or finite_number(e.get("seconds")) is None:
            raise HpmlError(f"{path}: convergence record {case!r} epochs[{i}] lacks 'seconds'")
        epochs.append(ConvergenceEpoch(
            epoch=int(finite_number(e.get("epoch")) or i + 1), seconds=float(e["seconds"]),
            accuracy=_fraction(e.get("accuracy")), train_loss=finite_number(e.get("train_loss")),
            test_loss=finite_number(e.get("test_loss")),
        ))
    return ConvergenceRecord(
        path=path, case=str(case), target=_fraction(obj.get("target")), metric=str(obj.get("metric") or "accuracy"),
        reached=bool(obj.get("reached")), time_to_target_s=finite_number(obj.get("time_to_target_s")),
        device=str(obj.get("device") or ""), epochs=tuple(epochs),
        seed=int(obj["seed"]) if finite_number(obj.get("seed")) is not None else None,
        error=str(obj["error"]) if obj.get("error") else None,
        **{f: str(obj.get(f) or "") for f in ("dataset", "model", "optimizer", "optimization")},
    )


def load_convergence(path: Path | str) -> ConvergenceRecord:
    path = Path(path)
    return convergence_from_json(read_json(path, "convergence record", HOW_TO_CONVERGE), path)
