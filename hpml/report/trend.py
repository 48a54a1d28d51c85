"""The gated rows across commits, with the gate's threshold and detected steps."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Sequence

from hpml.gate.config import GateConfig
from hpml.report import charts
from hpml.report.render import Image, Section, Table
from hpml.report.rows import CHARTS
from hpml.report.speedups import speedups
from hpml.results.machine_facts import comparable_machine
from hpml.results.schema import CaseKey, Run
from hpml.results.steps import find_steps, noise_sigma


#: Gate patterns drawn in one trend image; more become further images.
TREND_PANELS_PER_IMAGE = 5


def gate_threshold(config: GateConfig, key: CaseKey) -> tuple[str, float | None] | None:
    """(pattern, the speedup below which ``hpml gate`` fails the row), None for an ungated row.

    The one place the report reads the gate's rules: its expectation and tolerance.  A
    ``"reference"`` expectation's threshold comes from a reference summary of the run's
    CPU class, which the report does not read: the row is drawn, with no threshold line.
    """
    exp = config.expectation_for(key)
    if exp is None:
        return None
    if exp.min_speedup is None:
        return exp.pattern, None
    return exp.pattern, exp.min_speedup * (1 - config.tolerance_for(exp))


def trend_section(runs: Sequence[Run], latest: Run, config: GateConfig, folder: Path) -> Section:
    """The gated rows across the runs of the latest run's machine and profile (other machines
    would mix hardware in, other profiles other workload sizes)."""
    section = Section("Trend of the gated rows across commits")
    machine = comparable_machine(latest.machine_info)
    on_machine = [r for r in runs if comparable_machine(r.machine_info) == machine]
    same = [r for r in on_machine if r.profiles == latest.profiles]
    notes = []
    if len(runs) > len(on_machine):
        notes.append(f"{len(runs) - len(on_machine)} run(s) from other machines left out: their speedups come from "
                     "other hardware.")
    if len(on_machine) > len(same):
        notes.append(f"{len(on_machine) - len(same)} run(s) with another benchmark profile left out: "
                     "their workload sizes differ.")
    note = f" ({' '.join(notes)})" if notes else ""
    if not config.expectations:
        section.blocks.append("No row is gated: `[tool.hpml.gate.min_speedup]` in pyproject.toml sets no "
                              f"expectation, so there is no trend of gated rows to draw.{note}")
        return section
    if len(same) < 2:
        section.blocks.append(
            f"Only one run (commit {latest.short_commit}) on this machine with this profile, and a trend needs "
            f"at least two: rerun the benchmarks after a change (`pytest benchmarks --benchmark-autosave`) and "
            f"the report will plot each gated row across commits.{note}")
        return section
    labels, seen = [], defaultdict(int)
    for run in same:
        seen[run.short_commit] += 1
        labels.append(run.short_commit + (f" ({seen[run.short_commit]})" if seen[run.short_commit] > 1 else ""))
    panels: dict[str, tuple[float, dict[str, list[charts.TrendPoint]]]] = {}
    for i, run in enumerate(same):
        for key, s in speedups(run).items():
            gated = gate_threshold(config, key)
            if gated is None:
                continue
            pattern, threshold = gated
            lines = panels.setdefault(pattern, (threshold, defaultdict(list)))[1]
            failed = threshold is not None and s.estimate < threshold
            lines[key.label].append(charts.TrendPoint(i, s.estimate, s.interval, failed))
    steps = mark_steps(panels, same)
    if not panels:
        section.blocks.append(f"No row of these {len(same)} runs matches a `[tool.hpml.gate.min_speedup]` "
                              f"pattern ({', '.join(e.pattern for e in config.expectations)}).{note}")
        return section
    items = sorted(panels.items())
    section.blocks.append(
        f"{len(same)} runs on this machine with profile {', '.join(sorted(latest.profiles)) or '?'}, oldest to "
        f"newest: each gated row's speedup, its 95% interval as a band (runs before paired measurement have none), "
        f"the gate's threshold dashed, a red cross where the gate failed the row, a diamond and a dotted line "
        f"where a step starts (a level change beyond that kind of row's run-to-run noise, as `hpml history` "
        f"finds them).{note}")
    for n in range(0, len(items), TREND_PANELS_PER_IMAGE):
        page = items[n:n + TREND_PANELS_PER_IMAGE]
        suffix = f"-{n // TREND_PANELS_PER_IMAGE + 1}" if len(items) > TREND_PANELS_PER_IMAGE else ""
        path = charts.gated_trend([(f"{p} (fails below {t:.2f}x)" if t is not None else f"{p} (reference interval)",
                                    t, dict(lines)) for p, (t, lines) in page],
                                  labels, title=f"Gated speedups across {len(same)} runs", path=folder /
                                  f"trend{suffix}.png")
        section.blocks.append(Image(f"{CHARTS}/{path.name}", "gated rows across commits"))
    rows = []
    for pattern, (threshold, lines) in items:
        for label, points in lines.items():
            last = points[-1]
            fails_below = f"{threshold:.2f}x" if threshold is not None else "reference interval (per CPU class)"
            rows.append([label, pattern, fails_below, f"{sum(p.failed for p in points)} of {len(points)}",
                         f"{last.estimate:.2f}x" + (f" [{last.interval[0]:.2f}, {last.interval[1]:.2f}]"
                                                    if last.interval else ""), steps.get(label, "-")])
    section.blocks.append(Table(["gated row", "gate pattern", "fails below", "runs failed", "latest speedup",
                                 "steps"], rows, numeric=[False, False, True, True, True, False]))
    return section


def mark_steps(panels: dict[str, tuple[float | None, dict[str, list[charts.TrendPoint]]]],
               runs: Sequence[Run]) -> dict[str, str]:
    """Mark the steps of each gated row's speedup series (``TrendPoint.step``); per row, its steps as text.

    The noise a step must exceed is measured per kind of row from these series (:mod:`hpml.results.steps`)."""
    from hpml.results.between_run import kind_of_row

    kinds: dict[str, str] = {}
    for run in runs:
        for key, bench in run.benchmarks.items():
            kinds.setdefault(key.label, kind_of_row(bench.extra))
    lines = {label: points for _, (_, by_label) in panels.items() for label, points in by_label.items()}
    sigmas = {kind: noise_sigma([[math.log(p.estimate) for p in pts] for label, pts in lines.items()
                                 if kinds.get(label) == kind]) for kind in set(kinds.values())}
    found: dict[str, str] = {}
    for label, points in lines.items():
        sigma = sigmas.get(kinds.get(label, ""))
        if sigma is None:
            continue
        texts = []
        for step in find_steps([math.log(p.estimate) for p in points], sigma):
            point = points[step.index]
            point.step = True
            texts.append(f"{runs[point.run].short_commit}: x{step.ratio:.2f} [{step.interval[0]:.2f}, "
                         f"{step.interval[1]:.2f}]")
        if texts:
            found[label] = "; ".join(texts)
    return found
