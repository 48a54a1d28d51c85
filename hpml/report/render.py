"""The report as a small document model, written as Markdown and as self-contained HTML.

One model, two writers: the Markdown links the PNGs next to it (readable on a code
host), the HTML embeds them as base64 ``data:`` URIs so the single file can be
attached to a CI run or mailed and still show every chart.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence, Union


@dataclass
class Table:
    header: Sequence[str]
    rows: Sequence[Sequence[str]]
    numeric: Sequence[bool] = ()  # right-align these columns


@dataclass
class Image:
    file: str  # file name inside the report folder
    alt: str


Block = Union[str, Table, Image]  # a str is one paragraph; `backticks` mark code


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Document:
    title: str
    intro: list[str]
    sections: list[Section]


def fmt_time(seconds: float) -> str:
    """A duration with a unit a human reads at a glance (s, ms or us)."""
    if seconds >= 1.0:
        return f"{seconds:.3g} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} us"


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(doc: Document) -> str:
    out = [f"# {doc.title}", ""]
    out += [line for p in doc.intro for line in (p, "")]
    for section in doc.sections:
        out += [f"## {section.title}", ""]
        for block in section.blocks:
            if isinstance(block, Table):
                align = [("---:" if (i < len(block.numeric) and block.numeric[i]) else ":---")
                         for i in range(len(block.header))]
                out.append("| " + " | ".join(_md_cell(h) for h in block.header) + " |")
                out.append("| " + " | ".join(align) + " |")
                out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
            elif isinstance(block, Image):
                out.append(f"![{block.alt}]({block.file})")
            else:
                out.append(block)
            out.append("")
    return "\n".join(out)


_CODE = re.compile(r"`([^`]+)`")

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 72rem;
       padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.85rem; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: left; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; height: auto; border: 1px solid #eee; margin: 0.6rem 0; }
code { background: #f4f4f4; padding: 0 0.2rem; border-radius: 3px; }
"""


def _inline(text: str) -> str:
    return _CODE.sub(lambda m: f"<code>{m.group(1)}</code>", html.escape(text, quote=False))


def to_html(doc: Document, folder: Path) -> str:
    """HTML with every image inlined from ``folder`` (no external file is referenced)."""
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{html.escape(doc.title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{html.escape(doc.title)}</h1>"]
    parts += [f"<p>{_inline(p)}</p>" for p in doc.intro]
    for section in doc.sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        for block in section.blocks:
            if isinstance(block, Table):
                num = [i < len(block.numeric) and block.numeric[i] for i in range(len(block.header))]
                parts.append("<table><thead><tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in block.header)
                             + "</tr></thead><tbody>")
                for row in block.rows:
                    cells = "".join(f'<td{" class=num" if n else ""}>{html.escape(str(c))}</td>'
                                    for c, n in zip(row, num))
                    parts.append(f"<tr>{cells}</tr>")
                parts.append("</tbody></table>")
            elif isinstance(block, Image):
                data = base64.b64encode((folder / block.file).read_bytes()).decode("ascii")
                parts.append(f'<figure><img alt="{html.escape(block.alt)}" src="data:image/png;base64,{data}">'
                             f"</figure>")
            else:
                parts.append(f"<p>{_inline(block)}</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
