"""The report as a small document model, written as Markdown and as HTML; both link the charts
instead of inlining them (docs/report.md)."""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, field
from typing import Callable, Sequence, Union


@dataclass
class Table:
    header: Sequence[str]
    rows: Sequence[Sequence[str]]
    numeric: Sequence[bool] = ()  # right-align these columns
    ids: Sequence[str | None] = ()  # anchor of each row, for links to it


@dataclass
class Image:
    file: str  # file name inside the report folder
    alt: str


@dataclass
class HeatCell:
    text: str  # "1.93x", "~"
    value: float | None  # colours the cell; None: grey (not significant)
    link: str | None = None  # anchor of the row behind the cell
    title: str = ""  # tooltip: the full estimate with its interval


@dataclass
class Heatmap:
    """Speedups: one row per optimization, one column per workload."""

    id: str
    caption: str
    columns: Sequence[str]
    rows: Sequence[str]
    cells: Sequence[Sequence[HeatCell | None]]  # [row][column]; None: not measured
    images: Sequence[str] = ()  # the same matrix drawn as PNG(s), linked from the Markdown


@dataclass
class Details:
    """A titled group of blocks: a heading in Markdown, collapsed ``<details>`` in HTML."""

    title: str
    id: str
    blocks: list["Block"] = field(default_factory=list)


Block = Union[str, Table, Image, Heatmap, Details]  # a str is one paragraph; `backticks` mark code


#: Speedups at or beyond these factors get the full colour (log scale, symmetric around 1x).
HEAT_RANGE = 2.0
_FASTER, _SLOWER, _NEUTRAL = (33, 102, 172), (178, 24, 43), (247, 247, 247)


def heat_colour(value: float | None) -> str:
    """Diverging colour at 1.0: blue faster, red slower, on a log scale; grey for None."""
    if value is None or value <= 0:
        return "#e0e0e0"
    t = max(-1.0, min(1.0, math.log(value) / math.log(HEAT_RANGE)))
    end = _FASTER if t > 0 else _SLOWER
    rgb = [round(n + (e - n) * abs(t)) for n, e in zip(_NEUTRAL, end)]
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def heat_text_colour(value: float | None) -> str:
    """White on the dark ends of the scale, else black."""
    if value is None or value <= 0:
        return "#222222"
    return "#ffffff" if abs(math.log(value) / math.log(HEAT_RANGE)) > 0.6 else "#222222"


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Document:
    title: str
    intro: list[str]
    sections: list[Section]


_CODE = re.compile(r"`([^`]+)`")
_LINK = re.compile(r"\[((?:[^\[\]]|\[[^\[\]]*\])+)\]\((#[\w.:-]+)\)")  # text may hold one [..] level
# What lets text become HTML or a link (emphasis is harmless and keeps `amp_bf16` readable)
_MD_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\\": "\\\\", "[": "\\[", "]": "\\]"}
_MD_SPECIAL = re.compile("|".join(map(re.escape, _MD_ESCAPES)))
# In a link's text, balanced brackets stay ([1.50x [1.40, 1.60]](#row)); parentheses may not open another link.
_MD_LINK_ESCAPES = {**{k: v for k, v in _MD_ESCAPES.items() if k not in "[]"}, "(": "\\(", ")": "\\)"}
_MD_LINK_SPECIAL = re.compile("|".join(map(re.escape, _MD_LINK_ESCAPES)))


def _md_text(text: str) -> str:
    """Literal text: no HTML, no link (a benchmark or machine name may hold either)."""
    return _MD_SPECIAL.sub(lambda m: _MD_ESCAPES[m.group(0)], text)


def _md_inline(text: str) -> str:
    """``text`` for Markdown with only the markup :func:`_inline` gives HTML: `` `code` ``
    and ``[links](#anchor)``; everything else is literal, as in index.html."""
    out, at = [], 0
    text = str(text).replace("\n", " ")
    for m in re.finditer(f"{_CODE.pattern}|{_LINK.pattern}", text):
        out.append(_md_text(text[at:m.start()]))
        if m.group(1) is not None:  # code: literal inside, but an HTML tag is literal too in CommonMark
            out.append(f"`{m.group(1)}`")
        else:
            out.append(f"[{_MD_LINK_SPECIAL.sub(lambda c: _MD_LINK_ESCAPES[c.group(0)], m.group(2))}]({m.group(3)})")
        at = m.end()
    out.append(_md_text(text[at:]))
    return "".join(out)


def _md_cell(text: str) -> str:
    return _md_inline(text).replace("|", "\\|")


def _md_table(table: Table, cell: Callable[[str], str] = _md_cell) -> list[str]:
    align = [("---:" if (i < len(table.numeric) and table.numeric[i]) else ":---") for i in range(len(table.header))]
    out = ["| " + " | ".join(cell(h) for h in table.header) + " |", "| " + " | ".join(align) + " |"]
    for i, row in enumerate(table.rows):
        cells = [cell(c) for c in row]
        anchor = table.ids[i] if i < len(table.ids) else None
        if anchor and cells:
            cells[0] = f'<a id="{anchor}"></a>{cells[0]}'
        out.append("| " + " | ".join(cells) + " |")
    return out


def _md_heatmap(heat: Heatmap) -> list[str]:
    out = [_md_inline(heat.caption), ""]
    out += [line for image in heat.images for line in (f"![speedup heatmap]({image})", "")]
    rows = []
    for name, cells in zip(heat.rows, heat.cells):
        # a code span shows anything literally, unless a backtick in the name would end it early
        rows.append([f"`{name}`" if "`" not in name else _md_text(name)] + ["" if c is None else f"[{_md_text(c.text)}](#{c.link})" if c.link
                                        else _md_text(c.text) for c in cells])
    table = Table(["optimization", *map(_md_text, heat.columns)], rows, numeric=[False] + [True] * len(heat.columns))
    return out + _md_table(table, cell=lambda text: text.replace("|", "\\|"))


def _md_blocks(blocks: Sequence[Block], level: int) -> list[str]:
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Table):
            out += _md_table(block)
        elif isinstance(block, Heatmap):
            out.append(f'<a id="{block.id}"></a>')
            out.append("")
            out += _md_heatmap(block)
        elif isinstance(block, Details):
            out += [f'<a id="{block.id}"></a>', "", f"{'#' * level} {_md_inline(block.title)}", ""]
            out += _md_blocks(block.blocks, level + 1)
            continue
        elif isinstance(block, Image):
            out.append(f"![{_md_text(block.alt)}]({block.file})")  # file: a slug of ours
        else:
            out.append(_md_inline(block))
        out.append("")
    return out


def to_markdown(doc: Document) -> str:
    out = [f"# {_md_inline(doc.title)}", ""]
    out += [line for p in doc.intro for line in (_md_inline(p), "")]
    for section in doc.sections:
        out += [f"## {_md_inline(section.title)}", ""]
        out += _md_blocks(section.blocks, 3)
    return "\n".join(out)


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 72rem;
       padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.85rem; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: left; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; height: auto; border: 1px solid #eee; margin: 0.6rem 0; }
code { background: #f4f4f4; padding: 0 0.2rem; border-radius: 3px; }
table.heatmap td { text-align: center; font-variant-numeric: tabular-nums; min-width: 3.2rem; padding: 0.15rem 0.4rem; }
table.heatmap td a { color: inherit; text-decoration: none; } table.heatmap th { font-size: 0.78rem; }
table.heatmap td.name { text-align: left; background: #fff; }
.heatwrap { overflow-x: auto; } figure { margin: 0.4rem 0; } figcaption { font-size: 0.85rem; color: #444; }
details { margin: 0.4rem 0; border: 1px solid #e4e4e4; border-radius: 4px; padding: 0.2rem 0.6rem; }
summary { cursor: pointer; font-weight: 600; } summary h3 { display: inline; font-size: 1.05rem; }
tr:target, details:target { outline: 2px solid #f0a500; }
"""


def _inline(text: str) -> str:
    out = _CODE.sub(lambda m: f"<code>{m.group(1)}</code>", html.escape(str(text), quote=False))
    return _LINK.sub(lambda m: f'<a href="{m.group(2)}">{m.group(1)}</a>', out)


def _html_table(table: Table) -> list[str]:
    num = [i < len(table.numeric) and table.numeric[i] for i in range(len(table.header))]
    parts = ["<table><thead><tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in table.header)
             + "</tr></thead><tbody>"]
    for i, row in enumerate(table.rows):
        anchor = table.ids[i] if i < len(table.ids) else None
        cells = "".join(f'<td{" class=num" if n else ""}>{_inline(c)}</td>' for c, n in zip(row, num))
        parts.append(f'<tr id="{anchor}">{cells}</tr>' if anchor else f"<tr>{cells}</tr>")
    parts.append("</tbody></table>")
    return parts


def _html_heatmap(heat: Heatmap) -> list[str]:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in heat.columns)
    parts = [f'<figure class="heatmap" id="{heat.id}"><figcaption>{_inline(heat.caption)}</figcaption>',
             f'<div class="heatwrap"><table class="heatmap"><thead><tr><th>optimization</th>{head}</tr></thead><tbody>']
    for name, cells in zip(heat.rows, heat.cells):
        tds = [f'<td class="name"><code>{html.escape(name)}</code></td>']
        for c in cells:
            if c is None:
                tds.append('<td title="not measured"></td>')
                continue
            text = html.escape(c.text)
            if c.link:
                text = f'<a href="#{c.link}">{text}</a>'
            tds.append(f'<td style="background:{heat_colour(c.value)};color:{heat_text_colour(c.value)}" '
                       f'title="{html.escape(c.title)}">{text}</td>')
        parts.append(f"<tr>{''.join(tds)}</tr>")
    parts.append("</tbody></table></div></figure>")
    return parts


def _html_blocks(blocks: Sequence[Block]) -> list[str]:
    parts: list[str] = []
    for block in blocks:
        if isinstance(block, Table):
            parts += _html_table(block)
        elif isinstance(block, Heatmap):
            parts += _html_heatmap(block)
        elif isinstance(block, Details):
            parts.append(f'<details id="{block.id}"><summary><h3>{html.escape(block.title)}</h3></summary>')
            parts += _html_blocks(block.blocks)
            parts.append("</details>")
        elif isinstance(block, Image):
            parts.append(f'<figure><img alt="{html.escape(block.alt)}" src="{html.escape(block.file)}" '
                         f'loading="lazy"></figure>')
        else:
            parts.append(f"<p>{_inline(block)}</p>")
    return parts


def to_html(doc: Document) -> str:
    """HTML linking the charts by relative path (open it inside the report folder)."""
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{html.escape(doc.title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{html.escape(doc.title)}</h1>"]
    parts += [f"<p>{_inline(p)}</p>" for p in doc.intro]
    for section in doc.sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts += _html_blocks(section.blocks)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
