"""Per-workload detail: a chart per metric worth one, and a table of every row."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Sequence

from hpml.report import charts
from hpml.report.charts import Bar
from hpml.report.render import Details, Image, Section, Table
from hpml.report.rows import CHARTS, GiB, MiB, heat_row, num, peak_fraction, report_order, row_id, slug, workload_rank
from hpml.report.speedups import Speedup
from hpml.results.metric_registry import METRICS
from hpml.results.schema import Benchmark, CaseKey, Run
from hpml.results.units import fmt_time


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
         lambda b: peak_fraction(b) * 100 if peak_fraction(b) is not None else None),
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
    labels = [heat_row(k) if k.is_hpml else k.label for k in keys]
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
    for key in sorted(latest.benchmarks, key=report_order):
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
                                                                            workload_rank(kv[0][1]))):
        benches = [latest.benchmarks[k] for k in keys]
        name = f"{title} ({device})" if device else title
        anchor = slug(f"{device}-{title}")
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
                    path=folder / f"workload-{anchor}{'-' + str(n) if len(pages) > 1 else ''}.png")
                blocks.append(Image(f"{CHARTS}/{path.name}", f"{name}, details"))
        else:
            blocks.append("No metric varies between these rows: no chart.")
        rows = []
        # the declared resource metrics (hpml.results.metric_registry, report=True) some row of the workload has
        resources = [m for m in METRICS.values() if m.report and any(b.metric(m.name) for b in benches)]
        flagged = []
        for key, bench in zip(keys, benches):
            s = sp.get(key)
            fraction = peak_fraction(bench)
            flags = bench.extra.get("peak_flags") if isinstance(bench.extra.get("peak_flags"), list) else []
            if flags:
                flagged.append(f"{key.label}: " + "; ".join(map(str, flags)))
            rows.append([key.label, "1 (baseline)" if key.optimization == "baseline" else s.text if s else "-",
                         num(bench.samples_per_s), fmt_time(bench.median_s),
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
        section.blocks.append(Details(name, f"workload-{anchor}", blocks))
    return [section]
