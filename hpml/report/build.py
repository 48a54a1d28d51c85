"""What goes into the report: tables and charts computed from the loaded inputs.

Each ``*_section`` function turns the inputs into one :class:`~hpml.report.render.Section`,
writing its charts into the report folder.  When the data for a chart is absent the
section says so, and how to produce it, instead of showing an empty plot.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from hpml.gate.summary import summary_from_run
from hpml.report import charts
from hpml.report.charts import Bar
from hpml.report.load import PHASES, Benchmark, CaseKey, ConvergenceRecord, Inputs, Run, machine_fingerprint
from hpml.report.render import Document, Image, Section, Table, fmt_time

#: Phases stacked in the breakdown, in pipeline order (end_to_end and ddp are totals, not parts).
BREAKDOWN_PHASES = ("preprocess", "load", "train", "inference")
#: Runs listed in the run table; older ones are counted, not listed.
MAX_LISTED_RUNS = 30
MiB, GiB = 1024**2, 1024**3
#: Every file name a chart of this module may have; stale ones are removed before a rewrite.
CHART_FILE = re.compile(r"^(speedup-[\w.-]+|phases|throughput|memory|flops|trend|convergence)\.png$")


def _num(value: float | None) -> str:
    """3 significant digits, SI prefix for large values: 1.96M samples/s."""
    return "-" if value is None else charts.eng(value)


def _bytes(value: float | None) -> str:
    if not value:  # None, or 0 where nothing was allocated (device memory on CPU)
        return "-"
    return f"{value / GiB:.2f} GiB" if value >= GiB else f"{value / MiB:.0f} MiB"


def _group_title(key: CaseKey) -> str:
    """Panel title: everything but the optimization (the bars of a panel share it)."""
    if not key.is_hpml:
        return "other benchmarks (no hpml extra_info)"
    parts = [key.phase, key.dataset, key.device, key.model, key.optimizer]
    title = " · ".join(p for p in parts if p)
    return f"{title} [{key.variant}]" if key.variant else title


def _bar_label(key: CaseKey) -> str:
    return key.optimization if key.is_hpml else key.label


def _slug(text: str) -> str:
    return re.sub(r"[^\w.-]+", "_", text).strip("_") or "x"


def _order(k: CaseKey) -> tuple:
    """Report order: phases in pipeline order, foreign rows last, baseline first within a panel."""
    phase = PHASES.index(k.phase) if k.phase in PHASES else len(PHASES)
    return (not k.is_hpml, phase, k.phase, k.dataset, k.device, k.model, k.optimizer, k.name, k.variant,
            k.optimization != "baseline", k.optimization)


def _grouped(keys: Iterable[CaseKey]) -> dict[str, list[CaseKey]]:
    """Cases by panel title, panels and cases in :func:`_order`."""
    groups: dict[str, list[CaseKey]] = defaultdict(list)
    for key in sorted(keys, key=_order):
        groups[_group_title(key)].append(key)
    return groups


def machine_line(run: Run) -> str:
    info = run.machine_info
    cpu = info.get("cpu") if isinstance(info.get("cpu"), dict) else {}
    hpml = info.get("hpml") if isinstance(info.get("hpml"), dict) else {}
    gpu = info.get("gpu") or hpml.get("gpu")
    parts = [str(cpu.get("brand_raw") or info.get("processor") or info.get("machine") or "?")]
    if cpu.get("count"):
        parts.append(f"{cpu['count']} cores")
    if gpu:
        parts.append(str(gpu))
    return ", ".join(parts)


# --- sections ---------------------------------------------------------------------------------


def runs_section(runs: Sequence[Run], base: Path) -> Section:
    listed = runs[-MAX_LISTED_RUNS:]
    rows = []
    for i, run in enumerate(listed, start=len(runs) - len(listed) + 1):
        try:
            name = str(run.path.resolve().relative_to(base.resolve()))
        except ValueError:
            name = str(run.path)
        rows.append([str(i), run.datetime[:19].replace("T", " "), run.short_commit, machine_line(run),
                     ", ".join(sorted(run.profiles)) or "-", str(len(run.benchmarks)),
                     "yes" if run.has_data else "no", name])
    blocks: list[Any] = [Table(["#", "date (UTC)", "commit", "machine", "profile", "benchmarks", "raw data", "file"],
                               rows, numeric=[True, False, False, False, False, True])]
    if len(runs) > len(listed):
        blocks.insert(0, f"{len(runs) - len(listed)} older run(s) not listed.")
    return Section("Runs", blocks)


def speedup_section(latest: Run, out: Path) -> Section:
    """Same-run speedups of the latest run, one chart per phase, error bars = 68 % bootstrap interval."""
    summary = summary_from_run(latest)
    rows = [r for r in summary["rows"] if r.get("speedup") is not None and r.get("optimization") != "baseline"]
    section = Section("Speedup vs baseline (latest run)")
    if not rows:
        section.blocks.append(
            "No speedups in the latest run: they need hpml rows (extra_info phase/dataset/device/optimization) "
            "with an `optimization=\"baseline\"` row of the same case in the same run."
        )
        return section
    section.blocks.append(
        f"Throughput of each optimization divided by the baseline's, both measured in run {latest.short_commit} "
        "(samples/s, so grad_accum's larger calls count fairly). Error bars: central 68% bootstrap interval of the "
        "ratio of medians over the rounds (only with `--benchmark-save-data`); a bar cut at the chart's edge is "
        "wider than shown (see the table). Dashed line: no change (1x)."
    )
    by_key = dict(zip(latest.benchmarks, summary["rows"]))  # summary rows follow the run's row order
    by_phase: dict[str, list[CaseKey]] = defaultdict(list)
    for key, row in by_key.items():
        if row.get("speedup") is not None and key.optimization != "baseline":
            by_phase[key.phase].append(key)
    table_rows = []
    for phase in sorted(by_phase, key=lambda p: PHASES.index(p) if p in PHASES else len(PHASES)):
        groups = []
        for title, keys in _grouped(by_phase[phase]).items():
            bars = []
            for key in keys:
                row = by_key[key]
                spread = row.get("speedup_spread")
                bars.append(Bar(_bar_label(key), {"speedup": row["speedup"]},
                                 {"speedup": tuple(spread) if spread else None}))
                table_rows.append([key.label, _num(row.get("samples_per_s")), _num(row.get("baseline_samples_per_s")),
                                   f"{row['speedup']:.2f}x",
                                   f"{spread[0]:.2f}-{spread[1]:.2f}" if spread else "-", str(row.get("rounds"))])
            groups.append((title, bars))
        path = charts.grouped_hbars(groups, ["speedup"], title=f"Speedup vs baseline, {phase} phase "
                                     f"(run {latest.short_commit})", xlabel="speedup (x baseline throughput)",
                                     path=out / f"speedup-{_slug(phase)}.png", fmt=lambda v: f"{v:.2f}x",
                                     reference=1.0)
        section.blocks.append(Image(path.name, f"speedup vs baseline, {phase}"))
    section.blocks.append(Table(["case", "samples/s", "baseline samples/s", "speedup", "68% interval", "rounds"],
                                table_rows, numeric=[False, True, True, True, True, True]))
    return section


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
    segments = {p: [configs[label].get(p, 0.0) * scale for label in labels] for p in order}
    path = charts.stacked_hbars(labels, segments, title=f"Time per sample by phase (run {latest.short_commit})",
                                xlabel=f"time per sample ({unit}), stacked by phase", path=out / "phases.png")
    section.blocks += [
        f"Time per sample in each phase, from {source}. Where phases were measured as separate benchmarks the "
        "stack shows where time per sample goes, not one wall-clock run.",
        Image(path.name, "phase breakdown"),
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


def resources_section(latest: Run, out: Path) -> Section:
    """Throughput, peak memory and achieved FLOP/s of every row of the latest run."""
    section = Section("Throughput, memory and FLOP/s (latest run)")
    groups = _grouped(latest.benchmarks)

    def chart(name: str, series: Sequence[str], values: Callable[[Benchmark], dict[str, float | None]],
              title: str, xlabel: str, fmt: Callable[[float], str], missing: str, **kw: Any) -> None:
        panels = []
        for group_title, keys in groups.items():
            bars = [Bar(_bar_label(k), values(latest.benchmarks[k])) for k in keys]
            bars = [b for b in bars if any(v is not None for v in b.values.values())]
            if bars:
                panels.append((group_title, bars))
        if not panels:
            section.blocks.append(missing)
            return
        path = charts.grouped_hbars(panels, series, title=f"{title} (run {latest.short_commit})", xlabel=xlabel,
                                    path=out / f"{name}.png", fmt=fmt, **kw)
        section.blocks.append(Image(path.name, title))

    chart("throughput", ["samples/s"], lambda b: {"samples/s": b.samples_per_s}, "Throughput",
          "throughput (samples/s, from the median round)", charts.eng,
          "No throughput: rows lack `extra_info[\"samples_per_round\"]`.", sharex=False, engineering=True)
    peak = max((v for b in latest.benchmarks.values()
                for v in (b.metric("peak_rss_bytes"), b.metric("peak_device_bytes")) if v), default=0.0)
    unit, scale = ("GiB", GiB) if peak >= 2 * GiB else ("MiB", MiB)

    def memory(b: Benchmark) -> dict[str, float | None]:
        rss, device = b.metric("peak_rss_bytes"), b.metric("peak_device_bytes")
        return {"host RSS": rss / scale if rss else None, "device": device / scale if device else None}

    has_device = any(b.metric("peak_device_bytes") for b in latest.benchmarks.values())
    chart("memory", ["host RSS", "device"] if has_device else ["host RSS"], memory, "Peak memory",
          f"peak memory ({unit})", lambda v: f"{charts.plain(v)} {unit}",
          "No memory numbers: rows lack `extra_info[\"peak_rss_bytes\"]`/`[\"peak_device_bytes\"]`.")
    chart("flops", ["% of peak"],
          lambda b: {"% of peak": _peak_fraction(b) * 100 if _peak_fraction(b) is not None else None},
          "Achieved FLOP/s as a share of the measured peak", "achieved / measured peak FLOP/s (%)",
          lambda v: f"{v:.3g}%",
          "No FLOP/s numbers: rows lack `extra_info[\"achieved_flops\"]` and `[\"peak_flops\"]` (or "
          "`[\"peak_fraction\"]`).")
    rows = []
    for keys in groups.values():
        for key in keys:
            b = latest.benchmarks[key]
            achieved = b.metric("achieved_flops")
            fraction = _peak_fraction(b)
            rows.append([key.label, _num(b.samples_per_s), fmt_time(b.median_s), _bytes(b.metric("peak_rss_bytes")),
                         _bytes(b.metric("peak_device_bytes")), _num(achieved),
                         "-" if fraction is None else f"{fraction:.1%}", str(b.rounds)])
    section.blocks.append(Table(
        ["case", "samples/s", "median per call", "peak RSS", "peak device", "FLOP/s", "% of peak", "rounds"],
        rows, numeric=[False] + [True] * 7))
    return section


def trend_section(runs: Sequence[Run], latest: Run, out: Path) -> Section:
    """Each case across the runs of the latest run's machine and profile (other machines
    would mix hardware in, other profiles other workload sizes)."""
    section = Section("Trend across commits")
    machine = machine_fingerprint(latest.machine_info)
    on_machine = [r for r in runs if machine_fingerprint(r.machine_info) == machine]
    same = [r for r in on_machine if r.profiles == latest.profiles]
    notes = []
    if len(runs) > len(on_machine):
        notes.append(f"{len(runs) - len(on_machine)} run(s) from other machines left out: their seconds are not comparable.")
    if len(on_machine) > len(same):
        notes.append(f"{len(on_machine) - len(same)} run(s) with another benchmark profile left out: "
                     "their workload sizes differ.")
    note = f" ({' '.join(notes)})" if notes else ""
    if len(same) < 2:
        section.blocks.append(
            f"Only one run (commit {latest.short_commit}) on this machine with this profile, and a trend needs "
            f"at least two: rerun the benchmarks after a change (`pytest benchmarks --benchmark-autosave`) and "
            f"the report will plot each benchmark across commits.{note}"
        )
        return section
    labels, seen = [], defaultdict(int)
    for run in same:
        seen[run.short_commit] += 1
        labels.append(run.short_commit + (f" ({seen[run.short_commit]})" if seen[run.short_commit] > 1 else ""))
    panels: dict[tuple[str, str], dict[str, list[tuple[int, float]]]] = defaultdict(lambda: defaultdict(list))
    for i, run in enumerate(same):
        for key, bench in sorted(run.benchmarks.items(), key=lambda kv: _order(kv[0])):
            title = _group_title(key)
            if bench.samples_per_s:
                panels[(title, "throughput (samples/s)")][_bar_label(key)].append((i, bench.samples_per_s))
            else:
                panels[(title, "median time per call (ms)")][_bar_label(key)].append((i, bench.median_s * 1e3))
    path = charts.trend_lines([(t, unit, dict(lines)) for (t, unit), lines in panels.items()], labels,
                               title=f"Benchmarks across {len(same)} runs (x: commit, in run order)",
                               path=out / "trend.png")
    first, last = same[0], same[-1]
    rows = []
    for key, bench in last.benchmarks.items():
        before = first.benchmarks.get(key)
        if before is None:
            continue
        now_v, then_v = (bench.samples_per_s, before.samples_per_s) if bench.samples_per_s and before.samples_per_s \
            else (1 / bench.median_s if bench.median_s else None, 1 / before.median_s if before.median_s else None)
        change = f"{now_v / then_v - 1:+.1%}" if now_v and then_v else "-"
        rows.append([key.label, fmt_time(before.median_s), fmt_time(bench.median_s), change])
    section.blocks += [
        f"{len(same)} runs on this machine with profile {', '.join(sorted(latest.profiles)) or '?'}, "
        f"oldest to newest.{note}", Image(path.name, "trend across commits"),
        f"First ({first.short_commit}) vs latest ({last.short_commit}) run; change in throughput (+ is faster):",
        Table(["case", f"median {first.short_commit}", f"median {last.short_commit}", "throughput change"], rows,
              numeric=[False, True, True, True]),
    ]
    return section


def convergence_section(records: Sequence[ConvergenceRecord], out: Path) -> Section:
    section = Section("Time to accuracy")
    usable = [r for r in records if any(e.accuracy is not None for e in r.epochs)]
    if not usable:
        section.blocks.append(
            "No convergence records found (`.benchmarks/convergence/*.json`). Produce them on a GPU node with "
            "`pytest benchmarks -m convergence`; each run trains to its accuracy target and records the "
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
        Image(path.name, "time to accuracy"),
        Table(["case", "seed", "device", "target", "reached", "time to target", "best accuracy", "epochs"], rows,
              numeric=[False, True, False, True, False, True, True, True]),
    ]
    return section


def build_document(inputs: Inputs, out: Path, source: str, base: Path) -> Document:
    """All sections; the charts are written into ``out`` on the way."""
    latest = inputs.runs[-1]
    profiles = ", ".join(sorted(latest.profiles)) or "?"
    intro = [
        f"Generated by `hpml report` from {len(inputs.runs)} pytest-benchmark run(s) and "
        f"{len(inputs.convergence)} convergence record(s) in {source}.",
        f"Latest run: commit {latest.short_commit}, {latest.datetime[:19].replace('T', ' ')} UTC, "
        f"{machine_line(latest)}, profile {profiles}, pytest-benchmark {latest.version}.",
    ]
    sections = [
        speedup_section(latest, out),
        phases_section(latest, out),
        resources_section(latest, out),
        trend_section(inputs.runs, latest, out),
        convergence_section(inputs.convergence, out),
        runs_section(inputs.runs, base),
    ]
    if inputs.skipped:
        sections.append(Section("Skipped inputs", [Table(["reason"], [[s] for s in inputs.skipped])]))
    return Document("hpml benchmark report", intro, sections)
