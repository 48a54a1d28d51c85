"""Intervals that cover the next run: a row's within-run interval widened by its group of kinds'
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
#: Confidence that a spread reaches the COVERAGE quantile of what its rows need: the quantile read
#: in sample under-covered held-out runs (94-95 %; docs/studies/between-run-coverage.md).
CONFIDENCE = 0.90
#: Fewer rows of a group than this in the calibration runs: no between-run spread for it.
MIN_ROWS = 4
#: The group whose spread every kind of row other than loading shares (:func:`spread_group`).
OTHER = "every kind but loading"
RULE = (f"per group, the {CONFIDENCE:.0%} upper confidence bound on the {COVERAGE:.0%} quantile of the sd "
        "each row needs; loading kinds apart, every other kind pooled")
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


def spread_group(kind: str) -> str:
    """The group whose rows share a between-run spread: each loading kind alone, every other kind pooled."""
    # Per kind, the non-loading kinds had a few rows each, mostly needing no spread, and a row that jumped
    # in a held-out run met a spread of 0 (docs/studies/between-run-coverage.md, leave one pair out).
    return kind if kind.startswith("load") else OTHER


def upper_rank(n: int, coverage: float = COVERAGE, confidence: float = CONFIDENCE) -> int:
    """The smallest rank (1-based) with P(Bin(n, coverage) < rank) >= confidence, else n: its order statistic
    lies at or above the ``coverage`` quantile with that confidence."""
    tail = 0.0  # P(Bin(n, coverage) >= rank)
    for rank in range(n, 0, -1):
        tail += math.exp(math.lgamma(n + 1) - math.lgamma(rank + 1) - math.lgamma(n - rank + 1)
                         + rank * math.log(coverage) + (n - rank) * math.log1p(-coverage))
        if tail > 1 - confidence:
            return min(n, rank + 1)
    return 1


def derive_pairs(pairs: list[tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]],
                 coverage: float = COVERAGE, confidence: float = CONFIDENCE) -> dict[str, dict[str, Any]]:
    """Per :func:`spread_group`: ``sd`` (an upper bound on what ``coverage`` of its rows need), ``rows``, ``kinds``."""
    # A row needs the sd at which |log(a/b)| <= sqrt(h_a^2 + h_b^2 + 2 (z sd)^2) (quiet in both runs of a pair).
    needed: dict[str, list[float]] = {}
    kinds: dict[str, dict[str, int]] = {}
    for a, b in pairs:
        for name in sorted(set(a) & set(b)):
            if not _comparable(a[name], b[name]):
                continue
            d = math.log(a[name]["speedup_vs_baseline"] / b[name]["speedup_vs_baseline"])
            within = log_halfwidth(within_interval(a[name])) ** 2 + log_halfwidth(within_interval(b[name])) ** 2
            kind = kind_of_row(a[name])
            needed.setdefault(spread_group(kind), []).append(math.sqrt(max(0.0, d * d - within) / 2) / Z95)
            counts = kinds.setdefault(spread_group(kind), {})
            counts[kind] = counts.get(kind, 0) + 1
    out = {}
    for group, values in sorted(needed.items()):
        if len(values) >= MIN_ROWS:
            out[group] = {"sd": round(sorted(values)[upper_rank(len(values), coverage, confidence) - 1], 5),
                          "rows": len(values), "kinds": dict(sorted(kinds[group].items()))}
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
    data[machine_key(machine_info)] = {"kinds": kinds, "rule": RULE, "from": list(sources),
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
    """This machine's stored calibration by today's :data:`RULE` (``kinds``: spreads by group), or None."""
    entry = _read(path or calibration_path()).get(machine_key(machine_info))
    ok = isinstance(entry, dict) and isinstance(entry.get("kinds"), dict) and entry.get("rule") == RULE
    return entry if ok else None  # one by an older rule is keyed by other groups: calibrate again


def widen(estimate: float, interval: tuple[float, float], sd: float) -> tuple[float, float]:
    """Each side of ``interval`` widened in log space by the between-run ``sd``; lopsided stays lopsided."""
    extra = (Z95 * sd) ** 2
    lo = estimate * math.exp(-math.sqrt(math.log(estimate / interval[0]) ** 2 + extra))
    hi = estimate * math.exp(math.sqrt(math.log(interval[1] / estimate) ** 2 + extra))
    return lo, hi


def apply(rows: Iterable[dict[str, Any]], calibration: Mapping[str, Any] | None) -> None:
    """Widen each row's interval and its control's by its group's spread, keeping the within-run ones; say which it carries."""
    # A control is judged with the interval of the rows it stands for (docs/studies/between-run-coverage.md).
    groups = (calibration or {}).get("kinds") or {}
    for info in rows:
        group = spread_group(kind_of_row(info))
        entry = groups.get(group)
        sd = float(entry["sd"]) if isinstance(entry, dict) and isinstance(entry.get("sd"), (int, float)) else None
        if sd is not None:
            for key in ("aa_control", "fresh_control"):
                control = info.get(key)
                if isinstance(control, dict) and _widen_into(control, "speedup", "interval", "interval_within", sd):
                    lo, hi = control["interval"]
                    control["halfwidth"] = round((hi - lo) / 2 / control["speedup"], 5)
        interval, estimate = info.get("speedup_interval"), info.get("speedup_vs_baseline")
        if not (isinstance(interval, (list, tuple)) and len(interval) == 2) or not isinstance(estimate, (int, float)):
            continue
        if calibration is None:
            info.update(interval_kind=WITHIN, interval_note="this machine has no between-run calibration: run hpml calibrate")
        elif sd is None:
            info.update(interval_kind=WITHIN, interval_note=f"this machine's calibration has no '{group}' rows")
        elif _widen_into(info, "speedup_vs_baseline", "speedup_interval", "speedup_interval_within", sd):
            lo, hi = info["speedup_interval"]
            info.update(speedup_halfwidth=(hi - lo) / 2 / estimate, interval_kind=BETWEEN,
                        interval_note=f"'{group}' between-run sd {sd:.3f} (log) from {entry.get('rows')} rows")


def _widen_into(info: dict[str, Any], estimate_key: str, key: str, within_key: str, sd: float) -> bool:
    """``info[key]`` widened by ``sd`` (:func:`widen`), the within-run interval kept in ``info[within_key]``."""
    interval, estimate = info.get(key), info.get(estimate_key)
    if not (isinstance(interval, (list, tuple)) and len(interval) == 2 and min(interval) > 0
            and isinstance(estimate, (int, float)) and estimate > 0):
        return False
    within = (float(interval[0]), float(interval[1]))
    lo, hi = widen(float(estimate), within, sd)
    info[within_key], info[key] = list(within), [round(lo, 5), round(hi, 5)]
    return True


def _short(kind: str) -> str:
    """A kind as the screen names it: ``train (fresh)``, ``load (workers)``."""
    return (kind.replace(", fresh processes", " (fresh)").replace(", worker processes", " (workers)")
            .replace(", in process", " (in process)"))


def describe(rows: Iterable[Mapping[str, Any]]) -> str | None:
    """One line for the screen: which interval rows and controls carry, by which rule, and the kinds left within-run."""
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
    rule = f"hpml calibrate: {CONFIDENCE:.0%} upper bound on each group's {COVERAGE:.0%} spread"
    if within:
        return f"intervals: {BETWEEN} ({rule}); {WITHIN} for " + ", ".join(map(_short, within)) + " (not calibrated)"
    return f"intervals: {BETWEEN} for every row and control ({rule})"


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
