"""What goes into the report: one :class:`~hpml.report.render.Section` per ``*_section`` function, the
answer first; a chart without data says how to produce it (docs/report.md)."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Sequence

from hpml.gate.config import GateConfig
from hpml.report import charts
from hpml.report.details import details_sections
from hpml.report.glance import glance_sections
from hpml.report.render import Document, Image, Section, Table
from hpml.report.rows import CHARTS, report_order
from hpml.report.speedups import speedups
from hpml.report.trend import trend_section
from hpml.results.machine_facts import machine_line
from hpml.results.phase_names import phase_names
from hpml.results.runfiles import Inputs
from hpml.results.schema import Benchmark, CaseKey, ConvergenceRecord, Run
from hpml.results.units import fmt_time


#: Phases stacked in the breakdown, in pipeline order (end_to_end and ddp are totals, not parts).
BREAKDOWN_PHASES = phase_names(breakdown=True)
#: Runs listed in the run table; older ones are counted, not listed.
MAX_LISTED_RUNS = 30
#: Chart files that reports before the charts/ folder wrote next to index.md; removed when seen.
OLD_CHART_FILE = re.compile(r"^(speedup-[\w.-]+|phases|throughput|memory|flops|trend|convergence)\.png$")


def _group_title(key: CaseKey) -> str:
    """Panel title: everything but the optimization (the bars of a panel share it)."""
    if not key.is_hpml:
        return "other benchmarks (no hpml extra_info)"
    parts = [key.phase, key.dataset, key.device, key.model, key.optimizer, key.world_suffix.lstrip(":")]
    title = " · ".join(p for p in parts if p)
    return f"{title} [{key.variant}]" if key.variant else title


def _bar_label(key: CaseKey) -> str:
    return key.optimization if key.is_hpml else key.label


def _grouped(keys: Iterable[CaseKey]) -> dict[str, list[CaseKey]]:
    """Cases by panel title, panels and cases in :func:`report_order`."""
    groups: dict[str, list[CaseKey]] = defaultdict(list)
    for key in sorted(keys, key=report_order):
        groups[_group_title(key)].append(key)
    return groups


def runs_section(runs: Sequence[Run], base: Path) -> Section:
    listed = runs[-MAX_LISTED_RUNS:]
    rows = []
    for i, run in enumerate(listed, start=len(runs) - len(listed) + 1):
        try:
            name = str(run.path.resolve().relative_to(base.resolve()))
        except ValueError:
            name = str(run.path)
        rows.append([str(i), run.datetime[:19].replace("T", " "), run.short_commit, machine_line(run.machine_info),
                     ", ".join(sorted(run.profiles)) or "-", str(len(run.benchmarks)),
                     "yes" if run.has_data else "no", name])
    blocks: list[Any] = [Table(["#", "date (UTC)", "commit", "machine", "profile", "benchmarks", "raw data", "file"],
                               rows, numeric=[True, False, False, False, False, True])]
    if len(runs) > len(listed):
        blocks.insert(0, f"{len(runs) - len(listed)} older run(s) not listed.")
    return Section("Runs", blocks)


def _phase_seconds_per_sample(bench: Benchmark) -> dict[str, float]:
    """Seconds per sample of each phase of an end-to-end row's ``phases`` dict."""
    phases = bench.extra.get("phases")
    out: dict[str, float] = {}
    if not isinstance(phases, dict):
        return out
    for phase, info in phases.items():
        if not isinstance(info, dict):
            continue
        rate = info.get("samples_per_s")
        seconds = info.get("seconds")
        if isinstance(rate, (int, float)) and rate > 0:
            out[phase] = 1.0 / rate
        elif isinstance(seconds, (int, float)) and bench.samples_per_round:
            out[phase] = seconds / bench.samples_per_round
    return out


def phase_breakdown(latest: Run) -> tuple[dict[str, dict[str, float]], str]:
    """Seconds per sample per phase, per configuration label; and where the numbers came from."""
    configs: dict[str, dict[str, float]] = {}
    for key, bench in latest.benchmarks.items():
        parts = _phase_seconds_per_sample(bench)
        if parts:
            configs[f"{key.dataset} · {key.device} · {key.model} · {key.optimization}"] = parts
    if configs:
        return configs, "the `phases` of the end-to-end rows"
    # Else assemble each configuration from its per-phase rows.  load/preprocess rows may not
    # name a model: they then belong to every model of their dataset/device/optimization.
    per: dict[tuple[str, str, str, str], dict[str, float]] = defaultdict(dict)
    modelless: list[tuple[CaseKey, float]] = []
    for key, bench in latest.benchmarks.items():
        if not key.is_hpml or key.phase not in BREAKDOWN_PHASES or not bench.samples_per_s:
            continue
        seconds = 1.0 / bench.samples_per_s
        if key.model:
            per[(key.dataset, key.device, key.optimization, key.model)][key.phase] = seconds
        else:
            modelless.append((key, seconds))
    for key, seconds in modelless:
        targets = [c for c in per if c[:3] == (key.dataset, key.device, key.optimization)]
        for target in targets or [(key.dataset, key.device, key.optimization, "")]:
            per[target].setdefault(key.phase, seconds)
    for (dataset, device, optimization, model), parts in sorted(per.items()):
        if len(parts) >= 2:  # one phase alone is not a breakdown
            label = " · ".join(p for p in (dataset, device, model, optimization) if p)
            configs[label] = parts
    return configs, "the per-phase benchmark rows (each phase measured on its own)"


def phases_section(latest: Run, out: Path) -> Section:
    section = Section("Phase breakdown (latest run)")
    configs, source = phase_breakdown(latest)
    if not configs:
        section.blocks.append(
            "No configuration has two or more phases measured: the breakdown needs end-to-end rows with "
            "`extra_info[\"phases\"]`, or preprocess/load/train/inference rows of the same dataset, device and "
            "optimization (run the full benchmark matrix: `pytest benchmarks`)."
        )
        return section
    order = [p for p in BREAKDOWN_PHASES if any(p in c for c in configs.values())]
    order += sorted({p for c in configs.values() for p in c} - set(order))
    labels = list(configs)
    longest = max(sum(c.values()) for c in configs.values())  # s per sample
    unit, scale = ("s", 1.0) if longest >= 1 else ("ms", 1e3) if longest >= 1e-3 else ("us", 1e6)
    section.blocks.append(
        f"Time per sample in each phase, from {source}. Where phases were measured as separate benchmarks the "
        "stack shows where time per sample goes, not one wall-clock run.")
    pages = charts.paginate([("", labels)], charts.MAX_ROWS)
    for n, page in enumerate(pages, start=1):
        names = page[0][1]
        part = f", part {n}/{len(pages)}" if len(pages) > 1 else ""
        path = charts.stacked_hbars(names, {p: [configs[label].get(p, 0.0) * scale for label in names] for p in order},
                                    title=f"Time per sample by phase (run {latest.short_commit}{part})",
                                    xlabel=f"time per sample ({unit}), stacked by phase",
                                    path=out / f"phases{'-' + str(n) if len(pages) > 1 else ''}.png")
        section.blocks.append(Image(f"{CHARTS}/{path.name}", "phase breakdown"))
    section.blocks += [
        Table(["configuration", *[f"{p} ({unit}/sample)" for p in order], f"total ({unit}/sample)"],
              [[label, *[charts.plain(configs[label][p] * scale) if p in configs[label] else "-" for p in order],
                charts.plain(sum(configs[label].values()) * scale)] for label in labels],
              numeric=[False] + [True] * (len(order) + 1)),
    ]
    return section


def convergence_section(records: Sequence[ConvergenceRecord], out: Path) -> Section:
    section = Section("Time to accuracy")
    usable = [r for r in records if any(e.accuracy is not None for e in r.epochs)]
    if not usable:
        section.blocks.append(
            "No convergence records found (`.benchmarks/convergence/*.json`). Produce them on a GPU node with "
            "`pytest -m convergence tests/convergence`; each run trains to its accuracy target and records the "
            "accuracy after every epoch with the cumulative wall time."
        )
        return section
    curves = []
    for r in usable:
        points = [(e.seconds, e.accuracy) for e in r.epochs if e.accuracy is not None]
        curves.append(charts.Curve(r.label, [p[0] for p in points],
                                    [p[1] for p in points], r.target, r.time_to_target_s))
    path = charts.convergence_curves(curves, title="Test accuracy vs wall time", path=out / "convergence.png")
    rows = []
    for r in usable:
        best = max((e.accuracy for e in r.epochs if e.accuracy is not None), default=None)
        rows.append([r.case, "-" if r.seed is None else str(r.seed), r.device or "-",
                     "-" if r.target is None else f"{r.target:.1%}",
                     "yes" if r.reached else f"no (stopped: {r.error})" if r.error else "no",
                     "-" if r.time_to_target_s is None else fmt_time(r.time_to_target_s),
                     "-" if best is None else f"{best:.2%}", str(len(r.epochs))])
    section.blocks += [
        "Accuracy after each epoch against cumulative wall time; dashed: the target, star: when it was reached.",
        Image(f"{CHARTS}/{path.name}", "time to accuracy"),
        Table(["case", "seed", "device", "target", "reached", "time to target", "best accuracy", "epochs"], rows,
              numeric=[False, True, False, True, False, True, True, True]),
    ]
    return section


def build_document(inputs: Inputs, folder: Path, source: str, base: Path, config: GateConfig) -> Document:
    """All sections; the charts are written into ``folder`` (the report's charts/) on the way."""
    latest = inputs.runs[-1]
    profiles = ", ".join(sorted(latest.profiles)) or "?"
    intro = [
        f"Latest run: commit {latest.short_commit}, {latest.datetime[:19].replace('T', ' ')} UTC, "
        f"{machine_line(latest.machine_info)}, profile {profiles}; from {len(inputs.runs)} run(s) and "
        f"{len(inputs.convergence)} convergence record(s) in {source}.",
    ]
    sp = speedups(latest)
    sections = [
        *glance_sections(latest, sp, inputs.convergence, folder),
        trend_section(inputs.runs, latest, config, folder),
        phases_section(latest, folder),
        *details_sections(latest, sp, folder),
        convergence_section(inputs.convergence, folder),
        runs_section(inputs.runs, base),
    ]
    if inputs.skipped:
        sections.append(Section("Skipped inputs", [Table(["reason"], [[s] for s in inputs.skipped])]))
    return Document("hpml benchmark report", intro, sections)
