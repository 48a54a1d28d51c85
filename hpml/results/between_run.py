"""Intervals that cover the next run: a row's within-run interval widened by its kind of row's
between-run spread, calibrated per machine by ``hpml calibrate`` (docs/studies/between-run-coverage.md)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

from hpml.errors import HpmlError
from hpml.files import write_text_atomic
from hpml.results.machine_facts import cache_dir, comparable_machine
from hpml.results.runfiles import hpml_rows, load_run

#: z of a two-sided 95 % interval (the paired intervals' level).
Z95 = 1.959964
#: Share of a calibration's rows whose run-to-run difference the widened intervals must cover.
COVERAGE = 0.95
#: Fewer rows of a kind than this in the calibration runs: no between-run spread for it.
MIN_ROWS = 4
WITHIN = "within-run"
BETWEEN = "within + between-run"
FILE = "between_run.json"


def kind_of_row(info: Mapping[str, Any]) -> str:
    """The kind a row's run-to-run spread is calibrated under: its phase, loading rows split by worker
    processes, fresh-process rows apart (docs/studies/: loading-drift, process-spread)."""
    phase = str(info.get("phase", "?"))
    if info.get("fresh_process"):
        return f"{phase}, fresh processes"
    if phase == "load":
        return "load, worker processes" if info.get("num_workers") else "load, in process"
    return phase


def within_interval(info: Mapping[str, Any]) -> tuple[float, float] | None:
    """The row's within-run interval: ``speedup_interval_within`` where :func:`apply` widened it."""
    interval = info.get("speedup_interval_within") or info.get("speedup_interval")
    if not (isinstance(interval, (list, tuple)) and len(interval) == 2 and min(interval) > 0):
        return None
    return float(interval[0]), float(interval[1])


def log_halfwidth(interval: tuple[float, float] | list[float]) -> float:
    """``h``: half the interval's width in log space."""
    return math.log(interval[1] / interval[0]) / 2


def _comparable(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Both rows paired against their baseline (not its A/A control), quiet, with intervals."""
    for info in (a, b):
        if info.get("busy") or not isinstance(info.get("speedup_vs_baseline"), (int, float)):
            return False
        if info.get("optimization") == "baseline" and not info.get("reference"):
            return False
        if within_interval(info) is None or info["speedup_vs_baseline"] <= 0:
            return False
    return True


def derive(runs: list[dict[str, dict[str, Any]]], coverage: float = COVERAGE) -> dict[str, dict[str, Any]]:
    """:func:`derive_pairs` over each run and the next (runs of one commit, in the order they ran)."""
    return derive_pairs(list(zip(runs, runs[1:])), coverage)


def derive_pairs(pairs: list[tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]],
                 coverage: float = COVERAGE) -> dict[str, dict[str, Any]]:
    """Per kind of row, the smallest between-run ``sd`` (log) at which ``coverage`` of the quiet rows satisfy
    ``|log(a/b)| <= sqrt(h_a^2 + h_b^2 + 2 (z sd)^2)``: an order statistic, so heavy tails are covered."""
    needed: dict[str, list[float]] = {}
    for a, b in pairs:
        for name in sorted(set(a) & set(b)):
            if not _comparable(a[name], b[name]):
                continue
            d = math.log(a[name]["speedup_vs_baseline"] / b[name]["speedup_vs_baseline"])
            within = log_halfwidth(within_interval(a[name])) ** 2 + log_halfwidth(within_interval(b[name])) ** 2
            needed.setdefault(kind_of_row(a[name]), []).append(math.sqrt(max(0.0, d * d - within) / 2) / Z95)
    out = {}
    for kind, values in sorted(needed.items()):
        if len(values) < MIN_ROWS:
            continue
        ordered = sorted(values)
        out[kind] = {"sd": round(ordered[min(len(ordered), math.ceil(coverage * len(ordered))) - 1], 5),
                     "rows": len(ordered)}
    return out


def machine_key(machine_info: Mapping[str, Any] | None) -> str:
    return " | ".join(comparable_machine(dict(machine_info or {})))


def calibration_path() -> Path:
    return cache_dir() / FILE


def store(machine_info: Mapping[str, Any], kinds: dict[str, dict[str, Any]], sources: Iterable[str],
          path: Path | None = None) -> Path:
    """Keep ``kinds`` as this machine's between-run spreads (replacing an older calibration of it)."""
    path = path or calibration_path()
    data = _read(path)
    data[machine_key(machine_info)] = {"kinds": kinds, "from": list(sources),
                                       "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True) + "\n", parents=True)
    return path


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, json.JSONDecodeError) as err:
        raise HpmlError(f"{path}: unreadable between-run calibration ({err}); delete it and run hpml calibrate") from None
    if not isinstance(data, dict):
        raise HpmlError(f"{path}: not a between-run calibration; delete it and run hpml calibrate")
    return data


def load(machine_info: Mapping[str, Any] | None, path: Path | None = None) -> dict[str, Any] | None:
    """This machine's stored calibration (``kinds``, ``from``, ``written``), or None."""
    entry = _read(path or calibration_path()).get(machine_key(machine_info))
    return entry if isinstance(entry, dict) and isinstance(entry.get("kinds"), dict) else None


def widen(estimate: float, interval: tuple[float, float], sd: float) -> tuple[float, float]:
    """Each side of ``interval`` widened in log space by the between-run ``sd``; lopsided stays lopsided."""
    extra = (Z95 * sd) ** 2
    lo = estimate * math.exp(-math.sqrt(math.log(estimate / interval[0]) ** 2 + extra))
    hi = estimate * math.exp(math.sqrt(math.log(interval[1] / estimate) ** 2 + extra))
    return lo, hi


def apply(rows: Iterable[dict[str, Any]], calibration: Mapping[str, Any] | None) -> None:
    """Widen each paired row's interval where its kind has a between-run spread (``speedup_interval_within``
    kept), and say which it carries (``interval_kind``, ``interval_note``)."""
    kinds = (calibration or {}).get("kinds") or {}
    for info in rows:
        interval, estimate = info.get("speedup_interval"), info.get("speedup_vs_baseline")
        if not (isinstance(interval, (list, tuple)) and len(interval) == 2) or not isinstance(estimate, (int, float)):
            continue
        kind = kind_of_row(info)
        entry = kinds.get(kind)
        if calibration is None:
            info.update(interval_kind=WITHIN, interval_note="this machine has no between-run calibration: run hpml calibrate")
        elif not isinstance(entry, dict) or not isinstance(entry.get("sd"), (int, float)):
            info.update(interval_kind=WITHIN, interval_note=f"this machine's calibration has no '{kind}' rows")
        else:
            within = (float(interval[0]), float(interval[1]))
            lo, hi = widen(float(estimate), within, float(entry["sd"]))
            info.update(speedup_interval_within=list(within), speedup_interval=[round(lo, 5), round(hi, 5)],
                        speedup_halfwidth=(hi - lo) / 2 / estimate, interval_kind=BETWEEN,
                        interval_note=f"'{kind}' between-run sd {entry['sd']:.3f} (log) from {entry.get('rows')} rows")


def _short(kind: str) -> str:
    """A kind as the screen names it: ``train (fresh)``, ``load (workers)``."""
    return (kind.replace(", fresh processes", " (fresh)").replace(", worker processes", " (workers)")
            .replace(", in process", " (in process)"))


def describe(rows: Iterable[Mapping[str, Any]]) -> str | None:
    """One line for the screen: which interval the rows carry, naming the kinds left within-run."""
    kinds: dict[str, set[str]] = {}
    notes: list[str] = []
    for info in rows:
        if info.get("interval_kind"):
            kinds.setdefault(str(info["interval_kind"]), set()).add(kind_of_row(info))
            if info["interval_kind"] == WITHIN and not notes:
                notes.append(str(info.get("interval_note") or ""))
    if not kinds:
        return None
    if BETWEEN not in kinds:
        return f"intervals: {WITHIN} only, need not cover the next run ({notes[0]})"
    within = sorted(kinds.get(WITHIN, ()))
    rest = f"; {WITHIN} for " + ", ".join(map(_short, within)) + " (not calibrated)" if within else " for every row"
    return f"intervals: {BETWEEN} (hpml calibrate){rest}"


def calibrate(paths: list[Path], path: Path | None = None) -> tuple[Path, dict[str, dict[str, Any]], int]:
    """``hpml calibrate``: derive and store this machine's between-run spreads from stored runs, each
    paired with the next of the same commit; (file, spreads, pairs used)."""
    loaded = []
    for p in paths:
        run = load_run(p)
        loaded.append((p, hpml_rows(run), run.machine_info, run.commit))
    keys = {machine_key(m) for _, _, m, _ in loaded}
    if len(keys) != 1:
        raise HpmlError(f"the runs come from {len(keys)} machines ({'; '.join(sorted(keys))}): calibrate each machine "
                        "from its own runs")
    pairs = [(a[1], b[1]) for a, b in zip(loaded, loaded[1:]) if a[3] == b[3]]
    if not pairs:
        raise HpmlError("no two consecutive runs of one commit: give runs of one commit, in the order they ran")
    spreads = derive_pairs(pairs)
    if not spreads:
        raise HpmlError(f"no kind of row has {MIN_ROWS} rows quiet in both runs of a pair: nothing to calibrate")
    return store(loaded[0][2], spreads, [p.name for p in paths], path), spreads, len(pairs)
