"""The first screen: speedup heatmaps per device and phase, and what to use (docs/report.md)."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from hpml.report import charts
from hpml.report.render import HeatCell, Heatmap, Section, Table, heat_colour
from hpml.report.rows import CHARTS, heat_row, row_id, slug, workload_of, workload_rank
from hpml.report.speedups import Speedup
from hpml.results.phase_names import PHASE_INFO, screen_rank
from hpml.results.schema import Benchmark, CaseKey, ConvergenceRecord, Run


#: What-to-use covers the phases a user picks optimizations for.
ADVICE_PHASES = {p.name: p.title for p in PHASE_INFO.values() if p.advice}
#: Below this the best gain is called small in the sentences (x baseline).
SMALL_GAIN = 1.2
#: Columns of one heatmap image; wider matrices are drawn as several images.
MAX_HEAT_COLUMNS = 14


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
        by[(key.device, key.phase)][(heat_row(key), workload_of(key))] = (key, s)
    out = []
    for (device, phase), cells in sorted(by.items(), key=lambda kv: (kv[0][0], screen_rank(kv[0][1]))):
        columns = sorted({c for _, c in cells}, key=workload_rank)
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
                              path=folder / f"heatmap-{slug(m.device)}-{slug(m.phase)}"
                                            f"{'-' + str(n) if len(pages) > 1 else ''}.png")
        images.append(f"{CHARTS}/{path.name}")
    return Heatmap(f"heatmap-{slug(m.device)}-{slug(m.phase)}", caption, m.columns, m.rows, cells, images)


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
