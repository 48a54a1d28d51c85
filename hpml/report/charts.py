"""The report's PNG charts (matplotlib, Agg): titled, labelled with units, paginated past
:data:`MAX_HEIGHT_PX`, one colour per optimization (docs/report.md)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import matplotlib

matplotlib.use("Agg")  # before pyplot: render to files, never open a window
# Labels are data (benchmark and machine names): a "$" in one is a dollar sign, not mathtext.
matplotlib.rcParams["text.parse_math"] = False
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.colors  # noqa: E402
import matplotlib.patches  # noqa: E402
import matplotlib.ticker  # noqa: E402

from hpml.files import atomic_write  # noqa: E402

#: Inches per bar row and per group heading; chosen so 9-10 pt labels never touch.
ROW_IN, GROUP_IN, BASE_IN = 0.30, 0.55, 1.3
WIDTH_IN = 10.0
DPI = 110
#: No chart is taller than this (px); 2000 is the hard limit the tests hold it to.
MAX_HEIGHT_PX = 1800
#: Bar rows that fit one chart: (MAX_HEIGHT_PX / DPI - room for title, axis, panel headings) / ROW_IN.
MAX_ROWS = 36
#: Colours of the palette PNGs: plenty for flat bars, lines and anti-aliased text.
PNG_COLOURS = 128
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


T = TypeVar("T")


def paginate(groups: Sequence[tuple[str, Sequence[T]]], max_rows: int = MAX_ROWS) -> list[list[tuple[str, list[T]]]]:
    """Split titled groups of rows into pages of at most ``max_rows`` rows.

    Groups stay whole when they fit; a group longer than a page is cut into parts
    titled ``(part k/n)``.
    """
    pieces: list[tuple[str, list[T]]] = []
    for title, rows in groups:
        rows = list(rows)
        parts = max(1, -(-len(rows) // max_rows))
        for k in range(parts):
            chunk = rows[k * max_rows:(k + 1) * max_rows]
            pieces.append((f"{title} (part {k + 1}/{parts})" if parts > 1 else title, chunk))
    pages: list[list[tuple[str, list[T]]]] = []
    used = max_rows
    for title, rows in pieces:
        if used + len(rows) > max_rows:
            pages.append([])
            used = 0
        pages[-1].append((title, rows))
        used += len(rows)
    return pages


def _save(fig: Any, path: Path) -> Path:
    """Write ``fig`` as a palette PNG, atomically (temp file + rename), height capped."""
    from PIL import Image  # matplotlib's own dependency

    width_in, height_in = fig.get_size_inches()
    if height_in * DPI > MAX_HEIGHT_PX:  # a caller forgot to paginate: shrink rather than write a strip
        fig.set_size_inches(width_in, MAX_HEIGHT_PX / DPI)
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=DPI, format="png")
    plt.close(fig)
    buffer.seek(0)
    with Image.open(buffer) as img:
        small = img.convert("RGB").quantize(colors=PNG_COLOURS, method=Image.Quantize.FASTOCTREE)
    atomic_write(path, lambda tmp: small.save(tmp, format="PNG", optimize=True))
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


def heatmap(
    rows: Sequence[str],
    columns: Sequence[str],
    texts: Sequence[Sequence[str]],
    colours: Sequence[Sequence[str]],
    *,
    title: str,
    path: Path,
) -> Path:
    """A table of coloured cells with their text (the colours are computed by the caller,
    so the PNG and the HTML table share one scale)."""
    cell_w, cell_h = 0.95, 0.32  # inches per column / row: fits "1.93x*" at 8 pt
    label_in = min(3.2, 0.4 + 0.07 * max((len(r) for r in rows), default=8))
    header_in = min(1.6, 0.3 + 0.06 * max((len(c) for c in columns), default=8))
    # room right of the cells for the last slanted column label; at least 5 in wide, so no title is cut
    right_in = 0.3 + 0.05 * max((len(c) for c in columns), default=8)
    fig = plt.figure(figsize=(max(5.0, label_in + cell_w * len(columns) + right_in),
                              header_in + cell_h * len(rows) + 0.6))
    ax = fig.add_axes((label_in / fig.get_figwidth(), 0.3 / fig.get_figheight(),
                       cell_w * len(columns) / fig.get_figwidth(), cell_h * len(rows) / fig.get_figheight()))
    for i, row in enumerate(rows):
        for j in range(len(columns)):
            ax.add_patch(matplotlib.patches.Rectangle((j, i), 1, 1, facecolor=colours[i][j], edgecolor="white"))
            if texts[i][j]:
                dark = colours[i][j] not in ("#ffffff",) and _luminance(colours[i][j]) < 0.45
                ax.text(j + 0.5, i + 0.5, texts[i][j], ha="center", va="center", fontsize=8,
                        color="white" if dark else "#222222")
    ax.set_xlim(0, len(columns))
    ax.set_ylim(len(rows), 0)
    ax.set_yticks([i + 0.5 for i in range(len(rows))], rows, fontsize=8)
    ax.set_xticks([j + 0.5 for j in range(len(columns))], columns, fontsize=8, rotation=35, ha="left")
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    fig.suptitle(title, fontsize=10, x=0.01, ha="left", y=1 - 0.08 / fig.get_figheight())
    return _save(fig, path)


def _luminance(colour: str) -> float:
    r, g, b = matplotlib.colors.to_rgb(colour)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


@dataclass
class Metric:
    """One column of a facet chart: a value per bar, its axis label and how to print it."""

    name: str
    xlabel: str
    fmt: Callable[[float], str] = plain


def facet_hbars(
    groups: Sequence[tuple[str, Sequence[Bar]]],
    metrics: Sequence[Metric],
    *,
    title: str,
    path: Path,
) -> Path:
    """Small multiples: one row of panels per group (e.g. phase), one column per metric.

    Each panel has its own x scale (throughput of loading and of training differ by
    orders of magnitude); bars are labelled with their value.  Call it with one page of
    :func:`paginate` at most.
    """
    groups = [(name, bars) for name, bars in groups if bars]
    rows = [len(bars) for _, bars in groups]
    height = BASE_IN + sum(r * ROW_IN + GROUP_IN for r in rows)
    longest = max((len(b.label) for _, bars in groups for b in bars), default=8)
    label_in = 0.3 + 0.075 * longest  # inches for the bar labels
    width = min(14.0, label_in + 3.2 * len(metrics))  # one panel per metric
    # Fixed margins instead of constrained layout: as readable here, and several times faster with many panels.
    fig, axes = plt.subplots(len(groups), len(metrics), figsize=(width, height), squeeze=False,
                             gridspec_kw={"height_ratios": [r + 1.2 for r in rows]})
    mean_panel_in = (height - BASE_IN - GROUP_IN * len(groups)) / max(1, len(groups))
    fig.subplots_adjust(left=min(0.6, label_in / width), right=0.97, top=1 - 0.75 / height, bottom=0.55 / height,
                        wspace=0.25, hspace=GROUP_IN / max(0.3, mean_panel_in))
    headed: set[int] = set()  # metric columns whose heading is drawn (over their first drawn panel)
    for g, (name, bars) in enumerate(groups):
        # A metric none of the group's rows has (loading rows: no FLOP/s) gets no panel, not an empty one;
        # the group's first drawn panel names the bars.
        drawn = [m for m, metric in enumerate(metrics) if any(b.values.get(metric.name) is not None for b in bars)]
        for m, metric in enumerate(metrics):
            ax = axes[g, m]
            if m not in drawn:
                ax.set_axis_off()
                continue
            ys = [i for i, b in enumerate(bars) if b.values.get(metric.name) is not None]
            xs = [bars[i].values[metric.name] for i in ys]
            ax.barh(ys, xs, height=0.7, color=[COLOURS(bars[i].label) for i in ys])
            for y, x in zip(ys, xs):
                ax.annotate(metric.fmt(x), (x, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=7)
            # Only the first drawn column names the bars; the others share its rows and draw no y ticks at all
            # (hundreds of unlabelled tick objects were most of the report's drawing time).
            first = m == drawn[0]
            if first:
                ax.set_yticks(range(len(bars)), [b.label for b in bars], fontsize=8)
            else:
                ax.set_yticks([])
            ax.set_ylim(len(bars) - 0.5, -0.5)
            ax.set_xlim(0, max(xs, default=1.0) * 1.3 or 1.0)
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins=3))  # each bar carries its value
            ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: eng(v)))
            ax.tick_params(axis="x", labelsize=7)
            ax.grid(axis="x", alpha=0.3)
            # the group's name over its first panel, the metric's over the first panel drawn in its column
            heading = "\n".join(([metric.xlabel] if m not in headed else []) + ([name] if first else []))
            headed.add(m)
            if heading:
                ax.set_title(heading, fontsize=9, loc="left" if first else "center")
    fig.suptitle(title, fontsize=11)
    return _save(fig, path)


@dataclass
class TrendPoint:
    run: int  # x: index of the run (commit) in run order
    estimate: float
    interval: tuple[float, float] | None
    failed: bool  # the gate failed this row in this run
    step: bool = False  # a step in the row's series starts here (hpml.results.steps)


def gated_trend(
    panels: Sequence[tuple[str, float | None, dict[str, list[TrendPoint]]]],
    run_labels: Sequence[str],
    *,
    title: str,
    path: Path,
) -> Path:
    """asv-style: one panel per gate expectation, one line per gated row across commits.

    ``panels``: (title, the gate's threshold or None, {row label: points}).  The
    interval is a band around the line; a red cross marks each run where the gate
    failed the row; the dashed line is the threshold.
    """
    fig, axes = plt.subplots(len(panels), 1, figsize=(WIDTH_IN, 0.9 + 2.9 * len(panels)), squeeze=False,
                             layout="constrained")
    for ax, (name, threshold, lines) in zip(axes[:, 0], panels):
        for label, points in lines.items():
            colour = COLOURS(label.rsplit(":", 1)[-1])
            xs = [p.run for p in points]
            ax.plot(xs, [p.estimate for p in points], marker="o", markersize=4, color=colour, label=label)
            banded = [p for p in points if p.interval is not None]
            if banded:
                ax.fill_between([p.run for p in banded], [p.interval[0] for p in banded],
                                [p.interval[1] for p in banded], color=colour, alpha=0.2, linewidth=0)
            for p in points:
                if p.step:  # the first run of a new level (hpml history's step detection)
                    ax.axvline(p.run - 0.5, color=colour, linestyle=":", linewidth=1.2)
                    ax.plot([p.run], [p.estimate], linestyle="none", marker="D", markersize=7, color=colour,
                            markeredgecolor="black")
            failed = [p for p in points if p.failed]
            if failed:
                ax.plot([p.run for p in failed], [p.estimate for p in failed], linestyle="none", marker="X",
                        markersize=10, color="#c0392b")
        if threshold is not None:
            ax.axhline(threshold, color="#c0392b", linestyle="--", linewidth=1)
        ax.axhline(1.0, color="black", linewidth=0.8, alpha=0.6)
        if any(p.failed for points in lines.values() for p in points):
            ax.plot([], [], linestyle="none", marker="X", markersize=8, color="#c0392b", label="gate failed")
        if any(p.step for points in lines.values() for p in points):
            ax.plot([], [], linestyle="none", marker="D", markersize=6, color="grey", markeredgecolor="black",
                    label="step (beyond run-to-run noise)")
        if threshold is not None:
            ax.plot([], [], color="#c0392b", linestyle="--", linewidth=1, label=f"gate threshold {threshold:.2f}x")
        ax.set_title(name, fontsize=10, loc="left")
        ax.set_ylabel("speedup (x baseline)")
        ax.set_xticks(range(len(run_labels)), run_labels, rotation=30, ha="right", fontsize=8)
        ax.set_xlim(-0.5, len(run_labels) - 0.5)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    axes[-1, 0].set_xlabel("commit (run order)")
    fig.suptitle(title, fontsize=12)
    return _save(fig, path)
