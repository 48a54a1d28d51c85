"""``hpml report``: Markdown + self-contained HTML + PNG charts from benchmark runs.

Reads every pytest-benchmark run and convergence record under ``--storage`` (or
the files/folders given), and writes ``index.md``, ``index.html`` and the charts to
``--out``.  Bad input raises HpmlError (the CLI prints it and exits 2).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hpml.errors import HpmlError
from hpml.report.load import HOW_TO_RUN, discover


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``hpml report`` (the CLI wires them in with one call)."""
    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                        help="pytest-benchmark JSON files, convergence records or folders of them "
                             "(default: everything under --storage)")
    parser.add_argument("--storage", type=Path, default=Path(".benchmarks"), metavar="DIR",
                        help="pytest-benchmark storage to read when no PATH is given (default: .benchmarks)")
    parser.add_argument("--out", type=Path, default=Path("hpml-report"), metavar="DIR",
                        help="folder to write index.md, index.html and the charts to (default: hpml-report)")


def run_report(args: argparse.Namespace) -> int:
    """Write the report; returns 0.  Raises HpmlError when there is nothing usable to report."""
    paths = list(args.paths) or [args.storage]
    if not args.paths and not args.storage.is_dir():
        raise HpmlError(f"{args.storage}: no benchmark storage here; {HOW_TO_RUN}, or pass PATHs")
    inputs = discover(paths, explicit=[p for p in args.paths if p.is_file()])
    if not inputs.runs:
        raise HpmlError(f"no pytest-benchmark run file in {', '.join(map(str, paths))}; {HOW_TO_RUN}")
    from hpml.report.build import CHART_FILE, build_document  # matplotlib: only when a report is written
    from hpml.report.render import to_html, to_markdown

    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise HpmlError(f"--out {out} is a file; pass a folder")
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.iterdir():  # a chart from an earlier report that this one may not redraw
        if CHART_FILE.match(stale.name):
            stale.unlink()
    source = ", ".join(map(str, paths))
    doc = build_document(inputs, out, source, base=Path.cwd())
    (out / "index.md").write_text(to_markdown(doc), encoding="utf-8")
    (out / "index.html").write_text(to_html(doc, out), encoding="utf-8")
    charts = sorted(p.name for p in out.iterdir() if CHART_FILE.match(p.name))
    print(f"hpml report: wrote {out / 'index.md'}, {out / 'index.html'} and {len(charts)} chart(s) "
          f"from {len(inputs.runs)} run(s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m hpml.report``: the same as ``hpml report`` (one parser, one error handler)."""
    import sys

    from hpml.cli import main as cli_main

    return cli_main(["report", *(sys.argv[1:] if argv is None else argv)])
