"""The report's PNG charts (matplotlib, Agg backend: no display needed).

Every chart has a title, axis labels with units, a legend when it shows more than
one series, and a size that grows with the number of bars, so that labels never
overlap.  Bars are horizontal: long case labels then read left to right instead of
being rotated.  Colours follow the series name (an optimization keeps its colour
across charts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import matplotlib

matplotlib.use("Agg")  # before pyplot: render to files, never open a window
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

#: Inches per bar row and per group heading; chosen so 9-10 pt labels never touch.
ROW_IN, GROUP_IN, BASE_IN = 0.30, 0.55, 1.3
WIDTH_IN = 10.0
DPI = 110
_PALETTE = plt.get_cmap("tab10").colors + plt.get_cmap("Dark2").colors


class Colours:
    """A stable colour per name, in first-seen order (baseline is always grey)."""

    def __init__(self) -> None:
        self._known: dict[str, Any] = {"baseline": "#7f7f7f"}

    def __call__(self, name: str) -> Any:
        if name not in self._known:
            used = len(self._known) - 1
            self._known[name] = _PALETTE[used % len(_PALETTE)]
        return self._known[name]


COLOURS = Colours()


@dataclass
class Bar:
    """One row of a horizontal bar chart: a value per series, optional error interval."""

    label: str
    values: dict[str, float | None]
    intervals: dict[str, tuple[float, float] | None] = field(default_factory=dict)  # absolute (low, high)


def _save(fig: Any, path: Path) -> Path:
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def eng(value: float) -> str:
    """3 significant digits with an SI prefix: 158122 -> '158k' (samples/s spans 1 to 1e7)."""
    for size, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{prefix}"
    return f"{value:.3g}"


def plain(value: float) -> str:
    """3 significant digits without exponent notation: 1130.4 -> '1,130', 2.43 -> '2.43'."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def grouped_hbars(
    groups: Sequence[tuple[str, Sequence[Bar]]],
    series: Sequence[str],
    *,
    title: str,
    xlabel: str,
    path: Path,
    fmt: Callable[[float], str] = plain,
    reference: float | None = None,
    sharex: bool = True,
    engineering: bool = False,
) -> Path:
    """One panel per group (stacked vertically), one bar per row and series.

    ``sharex``: one scale for all panels (ratios, percentages); False when groups differ
    by orders of magnitude (throughput of loading vs training).  ``reference`` draws a
    dashed vertical line (e.g. 1.0x for speedups).  Values are written at the end of
    each bar so the chart reads without a ruler.  Error bars wider than the chart (a
    few disturbed rounds) are cut at the edge: the axis follows the bars, not the
    noise.
    """
    groups = [(name, bars) for name, bars in groups if bars]
    rows = [len(bars) * max(1, len(series)) for _, bars in groups]
    height = BASE_IN + sum(r * ROW_IN + GROUP_IN for r in rows) + (0.3 if len(series) > 1 else 0.0)
    fig, axes = plt.subplots(len(groups), 1, figsize=(WIDTH_IN, height), sharex=sharex, squeeze=False,
                             gridspec_kw={"height_ratios": [r + 1.2 for r in rows]}, layout="constrained")
    bar_h = 0.8 / max(1, len(series))
    overall = 0.0
    labels: list[tuple[Any, float, float, bool, str]] = []  # axes, y, bar end, has error bar, text
    for ax, (name, bars) in zip(axes[:, 0], groups):
        largest = 0.0
        for s_i, s in enumerate(series):
            ys, xs, lows, highs = [], [], [], []
            for b_i, bar in enumerate(bars):
                value = bar.values.get(s)
                if value is None:
                    continue
                interval = bar.intervals.get(s)
                ys.append(b_i + (s_i - (len(series) - 1) / 2) * bar_h)
                xs.append(value)
                lows.append(max(0.0, value - interval[0]) if interval else 0.0)
                highs.append(max(0.0, interval[1] - value) if interval else 0.0)
                # an interval at most 1.5x the bar widens the axis; a wider one is cut at the edge
                largest = max(largest, value, min(interval[1], 1.5 * value) if interval else 0.0)
            if not xs:
                continue
            has_err = any(lows) or any(highs)
            ax.barh(ys, xs, height=bar_h * 0.9, color=COLOURS(s) if len(series) > 1 else "#4c72b0",
                    label=s if len(series) > 1 else None, xerr=[lows, highs] if has_err else None,
                    error_kw={"capsize": 3, "elinewidth": 1, "ecolor": "#333333"})
            labels += [(ax, y, x, has_err, fmt(x)) for y, x in zip(ys, xs)]
        ax.set_yticks(range(len(bars)), [bar.label for bar in bars], fontsize=9)
        ax.set_ylim(len(bars) - 0.5, -0.5)  # first bar on top, like a table
        ax.set_title(name, fontsize=10, loc="left")
        ax.grid(axis="x", alpha=0.3)
        if engineering:  # 24.6k, 3.08M; below 1000 plain decimals ("200m" would read as millions)
            ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: eng(v)))
        if reference is not None:
            ax.axvline(reference, color="black", linestyle="--", linewidth=1)
            largest = max(largest, reference)
        if not sharex:
            ax.set_xlim(0, largest * 1.2 if largest > 0 else 1)  # room for the value labels
        overall = max(overall, largest)
    if sharex:
        axes[0, 0].set_xlim(0, overall * 1.2 if overall > 0 else 1)
    axes[-1, 0].set_xlabel(xlabel)
    for ax, y, end, has_err, text in labels:
        # Next to the bar's end; with an error bar, just above its whisker so the two never cross.
        ax.annotate(text, (end, y), xytext=(3, 2 if has_err else 0), textcoords="offset points",
                    va="bottom" if has_err else "center", fontsize=8, clip_on=True)
    fig.suptitle(title, fontsize=12)
    if len(series) > 1:
        fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside upper right", ncols=len(series),
                   fontsize=9)
    return _save(fig, path)


def stacked_hbars(
    labels: Sequence[str],
    segments: dict[str, Sequence[float | None]],
    *,
    title: str,
    xlabel: str,
    path: Path,
) -> Path:
    """One horizontal bar per label, split into coloured segments (e.g. pipeline phases)."""
    height = BASE_IN + 0.6 + len(labels) * ROW_IN * 1.3
    fig, ax = plt.subplots(figsize=(WIDTH_IN, height), layout="constrained")
    left = [0.0] * len(labels)
    for name, values in segments.items():
        widths = [v or 0.0 for v in values]
        ax.barh(range(len(labels)), widths, left=left, height=0.7, label=name, color=COLOURS(f"phase:{name}"))
        left = [lo + w for lo, w in zip(left, widths)]
    for y, total in enumerate(left):
        ax.text(total, y, f" {plain(total)}", va="center", ha="left", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=9)
    ax.set_ylim(len(labels) - 0.5, -0.5)
    ax.set_xlim(0, max(left, default=1.0) * 1.15 or 1.0)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=12)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, fontsize=9, title="phase")
    return _save(fig, path)


def trend_lines(
    panels: Sequence[tuple[str, str, dict[str, list[tuple[int, float]]]]],
    run_labels: Sequence[str],
    *,
    title: str,
    path: Path,
) -> Path:
    """Small multiples: one panel per (group, unit), one line per case across runs.

    ``panels``: (panel title, y label, {case label: [(run index, value)]});
    ``run_labels``: the x tick label of each run index (commit ids in run order).
    """
    ncols = 1 if len(panels) == 1 else 2
    nrows = math.ceil(len(panels) / ncols)
    longest = max((len(case) for _, _, lines in panels for case in lines), default=10)
    legend_in = min(3.5, 0.5 + 0.065 * longest)
    panel_w = 5.2 + legend_in
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_w * ncols, 3.6 * nrows + 0.8), squeeze=False,
                             layout="constrained")
    for ax, (name, ylabel, lines) in zip(axes.flat, panels):
        for case, points in lines.items():
            xs, ys = zip(*points)
            ax.plot(xs, ys, marker="o", markersize=4, label=case, color=COLOURS(case.rsplit(":", 1)[-1]))
        ax.set_title(name + (f" · {next(iter(lines))}" if len(lines) == 1 else ""), fontsize=10, loc="left")
        ax.set_ylabel(ylabel)
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: eng(v)))
        ax.set_xlabel("commit (run order)")
        ax.set_xticks(range(len(run_labels)), run_labels, rotation=45, ha="right", fontsize=8)
        ax.set_xlim(-0.5, len(run_labels) - 0.5)
        top = max((v for points in lines.values() for _, v in points), default=1.0)
        ax.set_ylim(0, top * 1.12 or 1.0)  # from zero, so a 5 % wiggle does not look like a cliff
        ax.grid(alpha=0.3)
        if len(lines) > 1:
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=12)
    return _save(fig, path)


@dataclass
class Curve:
    """One time-to-accuracy run: accuracy (fraction) after each epoch's cumulative seconds."""

    label: str
    seconds: Sequence[float]
    accuracy: Sequence[float]
    target: float | None
    time_to_target_s: float | None


def convergence_curves(curves: Sequence[Curve], *, title: str, path: Path) -> Path:
    """Accuracy vs wall time, one panel per accuracy target (dashed), one line per run.

    Runs with different targets (a CPU digits sweep, a CIFAR-10 GPU run) get separate
    panels: their time scales differ by orders of magnitude and one dashed line per
    panel cannot be confused with another.
    """
    by_target: dict[float | None, list[Curve]] = {}
    for c in curves:
        by_target.setdefault(c.target, []).append(c)
    panels = sorted(by_target.items(), key=lambda kv: (kv[0] is None, kv[0] or 0.0))
    fig, axes = plt.subplots(len(panels), 1, figsize=(WIDTH_IN, 1.0 + 4.6 * len(panels)), squeeze=False,
                             layout="constrained")
    for ax, (target, group) in zip(axes[:, 0], panels):
        longest = max((c.seconds[-1] for c in group if c.seconds), default=0.0)
        scale, unit = (60.0, "min") if longest > 180 else (1.0, "s")  # seconds read badly past a few minutes
        for i, c in enumerate(group):
            colour = _PALETTE[i % len(_PALETTE)]
            ax.plot([s / scale for s in c.seconds], [a * 100 for a in c.accuracy], marker="o", markersize=3,
                    label=c.label, color=colour)
            if c.time_to_target_s is not None and c.target is not None:
                ax.plot([c.time_to_target_s / scale], [c.target * 100], marker="*", markersize=12, color=colour,
                        linestyle="none")
        if target is not None:
            ax.axhline(target * 100, color="black", linestyle="--", linewidth=1, label=f"target {target:.1%}")
        if any(c.time_to_target_s is not None for c in group):
            ax.plot([], [], marker="*", markersize=10, color="#555555", linestyle="none", label="target reached")
        ax.set_title("no target" if target is None else f"target {target:.1%}", fontsize=10, loc="left")
        ax.set_xlabel(f"wall time ({unit}, cumulative)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_xlim(left=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(title, fontsize=12)
    return _save(fig, path)
