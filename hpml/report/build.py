"""What goes into the report: one :class:`~hpml.report.render.Section` per ``*_section`` function, the
answer first; a chart without data says how to produce it (docs/report.md)."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from hpml.gate.config import GateConfig
from hpml.report import charts
from hpml.report.charts import Bar
from hpml.report.speedups import Speedup, speedups
from hpml.report.render import Details, Document, HeatCell, Heatmap, Image, Section, Table, heat_colour
from hpml.results.machine_facts import comparable_machine, machine_line
from hpml.results.metric_registry import METRICS
from hpml.results.phase_names import PHASE_INFO, phase_names, phase_rank, screen_rank
from hpml.results.runfiles import Inputs
from hpml.results.schema import Benchmark, CaseKey, ConvergenceRecord, Run
from hpml.results.steps import find_steps, noise_sigma
from hpml.results.units import fmt_time

#: Phases stacked in the breakdown, in pipeline order (end_to_end and ddp are totals, not parts).
BREAKDOWN_PHASES = phase_names(breakdown=True)
#: Runs listed in the run table; older ones are counted, not listed.
MAX_LISTED_RUNS = 30
MiB, GiB = 1024**2, 1024**3
#: Charts live in this sub-folder of the report, replaced as a whole on every report.
CHARTS = "charts"
#: Chart files that reports before the charts/ folder wrote next to index.md; removed when seen.
OLD_CHART_FILE = re.compile(r"^(speedup-[\w.-]+|phases|throughput|memory|flops|trend|convergence)\.png$")


def _num(value: float | None) -> str:
    """3 significant digits, SI prefix for large values: 1.96M samples/s."""
    return "-" if value is None else charts.eng(value)


def _group_title(key: CaseKey) -> str:
    """Panel title: everything but the optimization (the bars of a panel share it)."""
    if not key.is_hpml:
        return "other benchmarks (no hpml extra_info)"
    parts = [key.phase, key.dataset, key.device, key.model, key.optimizer, key.world_suffix.lstrip(":")]
    title = " · ".join(p for p in parts if p)
    return f"{title} [{key.variant}]" if key.variant else title


def _bar_label(key: CaseKey) -> str:
    return key.optimization if key.is_hpml else key.label


def _slug(text: str) -> str:
    return re.sub(r"[^\w.-]+", "_", text).strip("_") or "x"


def _order(k: CaseKey) -> tuple:
    """Report order: phases in pipeline order, foreign rows last, baseline first within a panel."""
    phase = phase_rank(k.phase)
    return (not k.is_hpml, phase, k.phase, k.dataset, k.device, k.model, k.optimizer, k.world_size, k.name, k.variant,
            k.optimization != "baseline", k.optimization)


def _grouped(keys: Iterable[CaseKey]) -> dict[str, list[CaseKey]]:
    """Cases by panel title, panels and cases in :func:`_order`."""
    groups: dict[str, list[CaseKey]] = defaultdict(list)
    for key in sorted(keys, key=_order):
        groups[_group_title(key)].append(key)
    return groups


# --- sections ---------------------------------------------------------------------------------


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


def _peak_fraction(bench: Benchmark) -> float | None:
    fraction = bench.metric("peak_fraction")
    if fraction is None:
        achieved, peak = bench.metric("achieved_flops"), bench.metric("peak_flops")
        fraction = achieved / peak if achieved is not None and peak else None
    return fraction


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




# --- the first screen: speedup heatmaps and what to use --------------------------------------

#: What-to-use covers the phases a user picks optimizations for.
ADVICE_PHASES = {p.name: p.title for p in PHASE_INFO.values() if p.advice}
#: Below this the best gain is called small in the sentences (x baseline).
SMALL_GAIN = 1.2
#: Columns of one heatmap image; wider matrices are drawn as several images.
MAX_HEAT_COLUMNS = 14


def row_id(key: CaseKey) -> str:
    """Anchor of a row's line in its workload's detail table."""
    return "row-" + _slug(key.label)


def workload_of(key: CaseKey) -> str:
    """A heatmap column: ``dataset · model · optimizer`` (what is left of those), and
    ``· w2`` for a row of two processes (DDP): its baseline is the two-process one."""
    parts = (key.dataset, key.model, key.optimizer, key.world_suffix.lstrip(":"))
    return " · ".join(p for p in parts if p) or key.name


def _heat_row(key: CaseKey) -> str:
    return key.optimization + (f" [{key.variant}]" if key.variant else "")


def _workload_rank(label: str) -> tuple[str, ...]:
    parts = label.split(" · ")
    return (parts[1] if len(parts) > 1 else "", *parts)  # by model, then dataset, then optimizer


@dataclass
class Matrix:
    """The speedups of one device and phase: rows optimizations, columns workloads."""

    device: str
    phase: str
    rows: list[str]
    columns: list[str]
    cells: dict[tuple[str, str], tuple[CaseKey, Speedup]]


def matrices(sp: dict[CaseKey, Speedup]) -> list[Matrix]:
    """One matrix per (device, phase), in heatmap order; rows by mean log speedup, best first."""
    by: dict[tuple[str, str], dict[tuple[str, str], tuple[CaseKey, Speedup]]] = defaultdict(dict)
    for key, s in sp.items():
        by[(key.device, key.phase)][(_heat_row(key), workload_of(key))] = (key, s)
    out = []
    for (device, phase), cells in sorted(by.items(), key=lambda kv: (kv[0][0], screen_rank(kv[0][1]))):
        columns = sorted({c for _, c in cells}, key=_workload_rank)
        score: dict[str, list[float]] = defaultdict(list)
        for (row, _), (_, s) in cells.items():
            score[row].append(math.log(s.estimate))
        rows = sorted(score, key=lambda r: (-sum(score[r]) / len(score[r]), r))
        out.append(Matrix(device, phase, rows, columns, cells))
    return out


def heatmap_block(m: Matrix, run: Run, folder: Path) -> Heatmap:
    """The HTML/Markdown heatmap of one matrix, its PNG(s) drawn into ``folder``."""
    cells: list[list[HeatCell | None]] = []
    for row in m.rows:
        line: list[HeatCell | None] = []
        for column in m.columns:
            found = m.cells.get((row, column))
            if found is None:
                line.append(None)
                continue
            key, s = found
            value = None if s.significant is False else s.estimate
            title = (f"{key.label}: {s.text}" + (f"; busy: {s.busy_reason}" if s.busy_reason else "")
                     + (f"; same settings as {', '.join(s.aliases)} here" if s.aliases else "")
                     + (f"; also {', '.join(s.dataset_aliases)} (same work, measured once)" if s.dataset_aliases else ""))
            line.append(HeatCell(s.cell, value, row_id(key), title))
        cells.append(line)
    twins = {f"{', '.join(s.dataset_aliases)} = {key.dataset}" for key, s in m.cells.values() if s.dataset_aliases}
    paired = any(s.interval is not None for _, s in m.cells.values())
    unknown = any(s.significant is None for _, s in m.cells.values())
    caption = (f"Speedup vs baseline, {m.phase} phase on {m.device} (run {run.short_commit}; x baseline "
               "throughput, blue faster, red slower).")
    if paired:
        caption += " `~`: the 95% interval of the paired estimate does not show a change beyond the noise floor."
    if twins:
        caption += (f" Measured once, same work (their rows were skipped naming it): {'; '.join(sorted(twins))}.")
    if unknown:
        caption += (" `*`: no interval (a run before paired measurement, or too few pairs): the estimate alone, "
                    "significance unknown.")
    images = []
    pages = [(r, c) for r in range(0, len(m.rows), charts.MAX_ROWS)
             for c in range(0, len(m.columns), MAX_HEAT_COLUMNS)]
    for n, (r0, c0) in enumerate(pages, start=1):
        rows = m.rows[r0:r0 + charts.MAX_ROWS]
        columns = m.columns[c0:c0 + MAX_HEAT_COLUMNS]
        sub = [cells[m.rows.index(r)][c0:c0 + MAX_HEAT_COLUMNS] for r in rows]
        part = f" (part {n}/{len(pages)})" if len(pages) > 1 else ""
        path = charts.heatmap(rows, columns, [["" if c is None else c.text for c in line] for line in sub],
                              [["#ffffff" if c is None else heat_colour(c.value) for c in line] for line in sub],
                              title=f"Speedup vs baseline, {m.phase} on {m.device}{part}",
                              path=folder / f"heatmap-{_slug(m.device)}-{_slug(m.phase)}"
                                            f"{'-' + str(n) if len(pages) > 1 else ''}.png")
        images.append(f"{CHARTS}/{path.name}")
    return Heatmap(f"heatmap-{_slug(m.device)}-{_slug(m.phase)}", caption, m.columns, m.rows, cells, images)


def _memory(bench: Benchmark | None) -> tuple[float | None, str]:
    """Peak memory of a row: the device's when it used one, else the host's RSS (bytes)."""
    if bench is None:
        return None, ""
    device = bench.metric("peak_device_bytes")
    if device:
        return device, "device"
    return bench.metric("peak_rss_bytes"), "RSS"


def memory_cost(run: Run, key: CaseKey) -> str:
    """``+12% peak RSS`` of a row against its baseline, or ``-`` when not measured."""
    mine, kind = _memory(run.benchmarks.get(key))
    base, _ = _memory(run.benchmarks.get(key.with_optimization("baseline")))
    if not mine or not base:
        return "-"
    return f"{mine / base - 1:+.0%} ({kind})"


def accuracy_cost(records: Sequence[ConvergenceRecord], key: CaseKey) -> str:
    """Mean final accuracy of the optimization's convergence runs minus the baseline's, in points."""
    def mean(optimization: str) -> tuple[float | None, int, str]:
        found = [r for r in records if r.dataset == key.dataset and r.optimization == optimization
                 and (not key.optimizer or not r.optimizer or r.optimizer == key.optimizer)
                 and r.final_accuracy is not None]
        values = [r.final_accuracy for r in found if r.final_accuracy is not None]
        models = sorted({r.model for r in found if r.model})
        return (sum(values) / len(values) if values else None), len(values), ", ".join(models)

    mine, n, model = mean(key.optimization)
    base, m, _ = mean("baseline")
    if mine is None or base is None:
        return "not measured"
    return f"{(mine - base) * 100:+.1f} pp ({model or 'model ?'}, {n} vs {m} run(s))"


@dataclass
class Best:
    workload: str
    key: CaseKey
    speedup: Speedup

    @property
    def wins(self) -> bool:
        """Faster than baseline, and not shown to be noise."""
        return self.speedup.estimate > 1.0 and self.speedup.significant is not False


def best_per_workload(m: Matrix) -> list[Best]:
    """The largest estimate of each column; rows shown as not significant count only when
    nothing else is measured."""
    out = []
    for column in m.columns:
        found = [(k, s) for (_, c), (k, s) in m.cells.items() if c == column]
        credible = [(k, s) for k, s in found if s.significant is not False] or found
        key, s = max(credible, key=lambda ks: (ks[1].estimate, ks[0].optimization))
        out.append(Best(column, key, s))
    return out


def _link(best: Best) -> str:
    return f"[{best.speedup.estimate:.2f}x](#{row_id(best.key)})"


def advice_sentences(m: Matrix, bests: list[Best], run: Run) -> list[str]:
    """One sentence per model of a matrix, generated from its best rows (each number links to its row)."""
    phase = ADVICE_PHASES.get(m.phase, m.phase)
    by_model: dict[str, list[Best]] = defaultdict(list)
    for b in bests:
        by_model[b.key.model or "-"].append(b)
    sentences = []
    for model, group in sorted(by_model.items()):
        wins = [b for b in group if b.wins]
        top = max(group, key=lambda b: b.speedup.estimate)
        where = f"{phase} {model} on {m.device}"
        if not wins:
            sentences.append(f"{where}: no optimization is measurably faster than baseline on its {len(group)} "
                             f"workload(s); the best estimate is `{top.key.optimization}` at {_link(top)}.")
            continue
        counts: dict[str, list[Best]] = defaultdict(list)
        for b in wins:
            counts[b.key.optimization].append(b)
        name, chosen = max(counts.items(), key=lambda kv: (len(kv[1]), max(b.speedup.estimate for b in kv[1])))
        lo = min(chosen, key=lambda b: b.speedup.estimate)
        hi = max(chosen, key=lambda b: b.speedup.estimate)
        span = _link(hi) if lo is hi else f"{_link(lo)} to {_link(hi)}"
        text = (f"{where}: `{name}` gives the largest gain on {len(chosen)} of {len(group)} workload(s), {span} "
                f"(largest on {hi.workload}: {hi.speedup.text}, peak memory {memory_cost(run, hi.key)})")
        others = sorted({b.key.optimization for b in wins} - {name})
        if others:
            text += f"; elsewhere {', '.join(f'`{o}`' for o in others)}"
        best_gain = max(b.speedup.estimate for b in wins)
        if best_gain < SMALL_GAIN:
            text += f"; nothing beats {best_gain:.2f}x"
        sentences.append(text + ".")
    return sentences


def glance_sections(latest: Run, sp: dict[CaseKey, Speedup], records: Sequence[ConvergenceRecord],
                    folder: Path) -> list[Section]:
    """The first screen: the primary phase's heatmap(s), what to use, then the other heatmaps."""
    mats = matrices(sp)
    if not mats:
        return [Section("Speedup at a glance", [
            "No speedups in the latest run: they need hpml rows (extra_info phase/dataset/device/optimization) "
            "with an `optimization=\"baseline\"` row of the same case in the same run."])]
    first_phase = min((m.phase for m in mats), key=screen_rank)
    glance = Section("Speedup at a glance", [heatmap_block(m, latest, folder) for m in mats if m.phase == first_phase])
    advice = Section("What to use")
    rows, ids = [], []
    for m in mats:
        if m.phase not in ADVICE_PHASES:
            continue
        bests = best_per_workload(m)
        advice.blocks += advice_sentences(m, bests, latest)
        for b in bests:
            rows.append([b.workload, m.phase, m.device, f"`{b.key.optimization}`",
                         f"[{b.speedup.text}](#{row_id(b.key)})", memory_cost(latest, b.key),
                         accuracy_cost(records, b.key)])
    if rows:
        advice.blocks.append(Table(["workload", "phase", "device", "best optimization", "speedup [95% interval]",
                                    "peak memory vs baseline", "accuracy vs baseline (convergence)"], rows,
                                   numeric=[False, False, False, False, True, True, True]))
    else:
        advice.blocks.append("No training or inference speedups in the latest run to choose from.")
    more = Section("Speedup heatmaps, other phases",
                   [heatmap_block(m, latest, folder) for m in mats if m.phase != first_phase])
    return [glance, advice] + ([more] if more.blocks else [])


# --- per-workload detail -------------------------------------------------------------------


def _detail_metrics(benches: Sequence[Benchmark]) -> list[tuple[charts.Metric, Callable[[Benchmark], float | None]]]:
    """The metrics worth a chart for these rows: present on some row and not the same on all."""
    peak = max((v for b in benches for v in (b.metric("peak_rss_bytes"), b.metric("peak_device_bytes")) if v),
               default=0.0)
    unit, scale = ("GiB", GiB) if peak >= 2 * GiB else ("MiB", MiB)
    candidates = [
        (charts.Metric("samples/s", "throughput (samples/s)", charts.eng), lambda b: b.samples_per_s),
        (charts.Metric(f"RSS {unit}", f"peak host RSS ({unit})", charts.plain),
         lambda b: b.metric("peak_rss_bytes") / scale if b.metric("peak_rss_bytes") else None),
        (charts.Metric(f"device {unit}", f"peak device memory ({unit})", charts.plain),
         lambda b: b.metric("peak_device_bytes") / scale if b.metric("peak_device_bytes") else None),
        (charts.Metric("% of matmul peak", "achieved / measured matmul peak FLOP/s (%)", lambda v: f"{v:.3g}%"),
         lambda b: _peak_fraction(b) * 100 if _peak_fraction(b) is not None else None),
    ]
    out = []
    for metric, value in candidates:
        values = [v for v in (value(b) for b in benches) if v is not None]
        if len(set(values)) > 1:  # empty or constant: no chart
            out.append((metric, value))
    return out


#: What may tell two bars of one panel apart, in the order it is named.
_DIFFERS = (("world_size", lambda k: f"{k.world_size} process{'es' if k.world_size != 1 else ''}"),
            ("model", lambda k: k.model or "no model"), ("dataset", lambda k: k.dataset),
            ("optimizer", lambda k: k.optimizer or "no optimizer"), ("variant", lambda k: k.variant or "default"))


def bar_labels(keys: Sequence[CaseKey]) -> list[str]:
    """A panel's bar labels: the optimization, and where several bars would share it, what differs
    between them (the DDP panel's two ``baseline`` bars: ``baseline (1 process)``, ``baseline (2 processes)``)."""
    labels = [_heat_row(k) if k.is_hpml else k.label for k in keys]
    out = list(labels)
    for label in {x for x in labels if labels.count(x) > 1}:
        same = [i for i, x in enumerate(labels) if x == label]
        parts = [[describe(keys[i]) for i in same] for field_, describe in _DIFFERS
                 if len({getattr(keys[i], field_) for i in same}) > 1]
        for n, i in enumerate(same):
            out[i] = f"{label} ({', '.join(p[n] for p in parts) or keys[i].label})"
    return out


def details_sections(latest: Run, sp: dict[CaseKey, Speedup], folder: Path) -> list[Section]:
    """One collapsed block per workload (dataset · model on a device): chart pages and the table of its rows.

    Loading and pre-processing rows name no model and may name the synthetic twin
    (``cifar10-synthetic``): they join the workload of their dataset.
    """
    by_dataset: dict[tuple[str, str], list[CaseKey]] = defaultdict(list)
    for key in sorted(latest.benchmarks, key=_order):
        if key.is_hpml:
            by_dataset[(key.device, key.dataset.removesuffix("-synthetic"))].append(key)
        else:
            by_dataset[("", "")].append(key)
    workloads: dict[tuple[str, str], list[CaseKey]] = {}
    for (device, dataset), keys in by_dataset.items():
        models = sorted({k.model for k in keys if k.model})
        title = " · ".join([dataset, *(["/".join(models)] if models else [])]) if dataset \
            else "other benchmarks (no hpml extra_info)"
        workloads[(device, title)] = keys
    section = Section("Details per workload", [
        "Every row of the latest run, per workload: throughput, peak memory and achieved FLOP/s by phase "
        "(a metric that is missing or the same on every row gets no chart). Click a workload to open it."])
    for (device, title), keys in sorted(workloads.items(), key=lambda kv: (kv[0][0] == "", kv[0][0],
                                                                            _workload_rank(kv[0][1]))):
        benches = [latest.benchmarks[k] for k in keys]
        name = f"{title} ({device})" if device else title
        slug = _slug(f"{device}-{title}")
        blocks: list[Any] = []
        metrics = _detail_metrics(benches)
        if metrics:
            grouped: dict[str, list[CaseKey]] = defaultdict(list)
            for key in keys:
                twin = key.dataset if key.dataset.endswith("-synthetic") else ""
                grouped[" · ".join(p for p in (key.phase, twin, key.optimizer) if p) or "rows"].append(key)
            groups: dict[str, list[Bar]] = {
                group: [Bar(label, {m.name: value(latest.benchmarks[k]) for m, value in metrics})
                        for k, label in zip(members, bar_labels(members))]
                for group, members in grouped.items()}
            pages = charts.paginate(list(groups.items()), charts.MAX_ROWS)
            for n, page in enumerate(pages, start=1):
                part = f", part {n}/{len(pages)}" if len(pages) > 1 else ""
                path = charts.facet_hbars(
                    page, [m for m, _ in metrics], title=f"{name}: run {latest.short_commit}{part}",
                    path=folder / f"workload-{slug}{'-' + str(n) if len(pages) > 1 else ''}.png")
                blocks.append(Image(f"{CHARTS}/{path.name}", f"{name}, details"))
        else:
            blocks.append("No metric varies between these rows: no chart.")
        rows = []
        # the declared resource metrics (hpml.results.metric_registry, report=True) some row of the workload has
        resources = [m for m in METRICS.values() if m.report and any(b.metric(m.name) for b in benches)]
        flagged = []
        for key, bench in zip(keys, benches):
            s = sp.get(key)
            fraction = _peak_fraction(bench)
            flags = bench.extra.get("peak_flags") if isinstance(bench.extra.get("peak_flags"), list) else []
            if flags:
                flagged.append(f"{key.label}: " + "; ".join(map(str, flags)))
            rows.append([key.label, "1 (baseline)" if key.optimization == "baseline" else s.text if s else "-",
                         _num(bench.samples_per_s), fmt_time(bench.median_s),
                         *(m.text(bench.metric(m.name)) for m in resources),
                         "-" if fraction is None else f"{fraction:.1%}" + (" (flagged)" if flags else ""),
                         str(bench.rounds)])
        regions = sorted({str(r) for b in benches for r in (b.extra.get("resource_regions") or {}).values()})
        blocks.append(Table(["case", "speedup", "samples/s", "median per call",
                             *(m.title or m.name for m in resources), "% of measured matmul peak", "rounds"], rows,
                            numeric=[False] + [True] * (5 + len(resources)), ids=[row_id(k) for k in keys]))
        if regions:
            blocks.append("Measured over: " + "; ".join(regions) + ".")
        if flagged:
            blocks.append("Peak flags: " + " | ".join(flagged))
        section.blocks.append(Details(name, f"workload-{slug}", blocks))
    return [section]


# --- trend of the gated rows ---------------------------------------------------------------

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
