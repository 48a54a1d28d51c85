"""How the report names, orders and files a row: anchors, heatmap labels, chart folder."""

from __future__ import annotations

import re

from hpml.report import charts
from hpml.results.phase_names import phase_rank
from hpml.results.schema import Benchmark, CaseKey


MiB, GiB = 1024**2, 1024**3


#: Charts live in this sub-folder of the report, replaced as a whole on every report.
CHARTS = "charts"


def num(value: float | None) -> str:
    """3 significant digits, SI prefix for large values: 1.96M samples/s."""
    return "-" if value is None else charts.eng(value)


def slug(text: str) -> str:
    return re.sub(r"[^\w.-]+", "_", text).strip("_") or "x"


def report_order(k: CaseKey) -> tuple:
    """Report order: phases in pipeline order, foreign rows last, baseline first within a panel."""
    phase = phase_rank(k.phase)
    return (not k.is_hpml, phase, k.phase, k.dataset, k.device, k.model, k.optimizer, k.world_size, k.name, k.variant,
            k.optimization != "baseline", k.optimization)


def peak_fraction(bench: Benchmark) -> float | None:
    fraction = bench.metric("peak_fraction")
    if fraction is None:
        achieved, peak = bench.metric("achieved_flops"), bench.metric("peak_flops")
        fraction = achieved / peak if achieved is not None and peak else None
    return fraction


def row_id(key: CaseKey) -> str:
    """Anchor of a row's line in its workload's detail table."""
    return "row-" + slug(key.label)


def workload_of(key: CaseKey) -> str:
    """A heatmap column: ``dataset · model · optimizer`` (what is left of those), and
    ``· w2`` for a row of two processes (DDP): its baseline is the two-process one."""
    parts = (key.dataset, key.model, key.optimizer, key.world_suffix.lstrip(":"))
    return " · ".join(p for p in parts if p) or key.name


def heat_row(key: CaseKey) -> str:
    return key.optimization + (f" [{key.variant}]" if key.variant else "")


def workload_rank(label: str) -> tuple[str, ...]:
    parts = label.split(" · ")
    return (parts[1] if len(parts) > 1 else "", *parts)  # by model, then dataset, then optimizer
