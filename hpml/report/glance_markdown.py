"""``hpml report --markdown FILE``: the report's at-a-glance part as GitHub Markdown (no charts), the
visible part short and the rest folded."""

from __future__ import annotations

from hpml.report.glance import ADVICE_PHASES, Matrix, best_per_workload, matrices, memory_cost
from hpml.report.speedups import speedups
from hpml.results.machine_facts import machine_line
from hpml.results.markdown import details, escape, table
from hpml.results.phase_names import screen_rank
from hpml.results.runfiles import Inputs

#: Rows of a table shown outside a folded block.
MAX_SHOWN = 20


def _matrix_table(m: Matrix) -> list[str]:
    rows = []
    for row in m.rows:
        cells = [m.cells.get((row, c)) for c in m.columns]
        rows.append([escape(row), *("·" if f is None else escape(f[1].cell) for f in cells)])
    return table(["optimization", *(escape(c) for c in m.columns)], rows, numeric=set(range(1, len(m.columns) + 1)))


def _folded(lines: list[str], what: str) -> list[str]:
    """A table of more than :data:`MAX_SHOWN` rows: the first ones shown, the whole table folded below."""
    if len(lines) <= MAX_SHOWN + 2:
        return lines
    return lines[:MAX_SHOWN + 2] + ["", *details(f"all {len(lines) - 2} {what}", lines)]


def glance_markdown(inputs: Inputs) -> str:
    """The at-a-glance Markdown of ``inputs`` (its latest run)."""
    latest = inputs.runs[-1]
    sp = speedups(latest)
    profiles = ", ".join(sorted(latest.profiles)) or "?"
    lines = ["## hpml report", "",
             f"Latest run: commit {escape(latest.short_commit)}{' (uncommitted changes)' if latest.dirty else ''}, "
             f"{escape(latest.datetime[:19].replace('T', ' '))} UTC, {escape(machine_line(latest.machine_info))}, "
             f"profile {escape(profiles)}; {len(inputs.runs)} run(s) read.", ""]
    mats = matrices(sp)
    if not mats:
        lines.append("No speedups in the latest run: no hpml row has its baseline in the same run.")
        return "\n".join(lines) + "\n"
    first = min((m.phase for m in mats), key=screen_rank)
    lines.append("Speedup vs baseline (x baseline throughput; `~`: not beyond the noise floor, `*`: no interval, "
                 "`·`: not run):")
    for m in (m for m in mats if m.phase == first):
        lines += ["", f"**{escape(m.phase)} on {escape(m.device)}**", ""] + _folded(_matrix_table(m), "rows")
    best = []
    for m in mats:
        if m.phase in ADVICE_PHASES:
            best += [[escape(b.workload), escape(m.phase), escape(b.key.optimization), escape(b.speedup.text),
                      escape(memory_cost(latest, b.key))] for b in best_per_workload(m)]
    if best:
        lines += ["", "Best optimization per workload:", ""]
        lines += _folded(table(["workload", "phase", "best", "speedup [95% interval]", "peak memory vs baseline"],
                               best, numeric={3, 4}), "workloads")
    others = [m for m in mats if m.phase != first]
    if others:
        body = [line for m in others for line in ("", f"**{escape(m.phase)} on {escape(m.device)}**", "",
                                                  *_matrix_table(m))]
        lines += [""] + details(f"other phases: {', '.join(m.phase for m in others)}", body)
    return "\n".join(lines) + "\n"
