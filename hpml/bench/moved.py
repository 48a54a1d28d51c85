"""The screen's "moved since <run>" block under ``--benchmark-compare``: rows whose median changed by more
than their kind's run-to-run noise on this machine (unpaired; ``hpml gate --base`` gives the paired verdict)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

from hpml.results.between_run import kind_of_row
from hpml.results.schema import case_key
from hpml.results.steps import spread

#: Moved rows listed by name; the others are counted.
MAX_LISTED = 8


def _median(bench: Mapping[str, Any]) -> float | None:
    stats = bench.get("stats")
    value = stats.get("median") if isinstance(stats, Mapping) else None
    return float(value) if isinstance(value, (int, float)) and value > 0 and math.isfinite(value) else None


def _per_sample(bench: Mapping[str, Any], median: float, other: Mapping[str, Any]) -> float:
    """Seconds per sample when the two runs' rows process different samples per call."""
    mine = (bench.get("extra_info") or {}).get("samples_per_round")
    theirs = (other.get("extra_info") or {}).get("samples_per_round")
    if isinstance(mine, (int, float)) and isinstance(theirs, (int, float)) and mine > 0 and mine != theirs:
        return median / mine
    return median


def moved_block(current: list[Mapping[str, Any]], compared: Mapping[str, Mapping[str, Any]], name: str,
                sigmas: Mapping[str, float | None]) -> list[str]:
    """The block's lines: ``current`` rows (pytest-benchmark dicts) against ``compared`` (by fullname)."""
    moved, within, unjudged = [], 0, set()
    for bench in current:
        old = compared.get(str(bench.get("fullname")))
        now_s, then_s = _median(bench), _median(old) if old else None
        if old is None or now_s is None or then_s is None:
            continue
        kind = kind_of_row(bench.get("extra_info") or {}) if case_key(dict(bench)).is_hpml else "other"
        sigma = sigmas.get(kind)
        if sigma is None:
            unjudged.add(kind)
            continue
        ratio = _per_sample(bench, now_s, old) / _per_sample(old, then_s, bench)
        noise = spread(sigma)
        if abs(math.log(ratio)) > math.log1p(noise):
            moved.append((abs(math.log(ratio)), case_key(dict(bench)).label, ratio, kind, noise))
        else:
            within += 1
    lines = [f"moved since {name} (unpaired across runs: time beyond its kind's run-to-run noise; "
             "`hpml gate --base REV` gives a paired verdict):"]
    for _, label, ratio, kind, noise in sorted(moved, reverse=True)[:MAX_LISTED]:
        lines.append(f"  {label}  time {ratio - 1:+.1%} ({kind} noise {noise:.1%})")
    if len(moved) > MAX_LISTED:
        lines.append(f"  ... and {len(moved) - MAX_LISTED} more")
    if not moved:
        lines.append("  none")
    tail = f"  {within} row(s) within their kind's noise"
    if unjudged:
        tail += (f"; not judged: {', '.join(sorted(unjudged))} (no run-to-run noise measured yet: it needs 4 stored "
                 "runs of this machine and profile)")
    return lines + [tail]


def stored_sigmas(storage: Path, machine_info: Mapping[str, Any], profiles: set[str]) -> dict[str, float | None]:
    """Each kind's run-to-run noise sigma from the runs stored in ``storage`` of this machine and profile."""
    from hpml.history import find_all, ordered, series
    from hpml.results.machine_facts import comparable_machine
    from hpml.results.runfiles import discover

    if not storage.is_dir():
        return {}
    machine = comparable_machine(dict(machine_info))
    runs = [r for r in discover([storage]).runs
            if comparable_machine(r.machine_info) == machine and (not profiles or r.profiles == profiles)]
    if len(runs) < 2:
        return {}
    _, sigmas = find_all(series(ordered(runs, Path.cwd()), lambda name: True))
    return sigmas
