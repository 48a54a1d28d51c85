"""GitHub Markdown out of hpml: escaping untrusted text, tables, writing the file and the job summary."""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

from hpml.errors import HpmlError
from hpml.files import check_writable_file, write_text_atomic

#: GitHub Actions sets this to a file whose Markdown is shown on the job's summary page.
STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~#!()])")


def escape(text: object) -> str:
    """``text`` as inert Markdown/HTML: one line, HTML entities, Markdown punctuation backslash-escaped."""
    one_line = " ".join(str(text).split())
    return _MD_SPECIAL.sub(r"\\\1", html.escape(one_line, quote=True))


def table(header: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> list[str]:
    """A GFM table; cells are used as given (escape untrusted parts before)."""
    align = ["---:" if i in numeric else ":---" for i in range(len(header))]
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    return out + ["| " + " | ".join(row) + " |" for row in rows]


def details(summary: str, lines: list[str]) -> list[str]:
    """A folded block (blank lines around the body, or GitHub renders it as raw text)."""
    return [f"<details><summary>{escape(summary)}</summary>", "", *lines, "", "</details>"]


def check_markdown_path(path: Path | None, flag: str = "--markdown") -> None:
    """Refuse an unwritable Markdown file before any work is done (:func:`hpml.files.check_writable_file`)."""
    if path is not None:
        check_writable_file(path, flag, create=False)


def write_markdown(path: Path | None, text: str, flag: str = "--markdown") -> None:
    """Write ``text`` to ``path`` and append it to ``$GITHUB_STEP_SUMMARY`` when that is set."""
    if not text.endswith("\n"):
        text += "\n"
    if path is not None:
        try:
            write_text_atomic(path, text)
        except OSError as exc:
            raise HpmlError(f"{flag} {path}: cannot write it ({exc.strerror or exc})") from None
    summary = os.environ.get(STEP_SUMMARY_ENV)
    if summary:
        try:
            with open(summary, "a", encoding="utf-8") as f:
                f.write(text + "\n")
        except OSError as exc:
            raise HpmlError(f"${STEP_SUMMARY_ENV} {summary}: cannot append to it ({exc.strerror or exc})") from None
