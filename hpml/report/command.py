"""``hpml report``: Markdown + HTML + PNG charts from benchmark runs.  Two reports into one ``--out``
neither crash nor mix: a lock, and every file swapped in whole (docs/report.md)."""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import tempfile
from pathlib import Path

from hpml import argtypes
from hpml.errors import HpmlError, RunFailed
from hpml.files import check_writable_dir, os_error, write_text_atomic
from hpml.results.markdown import STEP_SUMMARY_ENV, check_markdown_path, write_markdown
from hpml.results.runfiles import HOW_TO_RUN, discover

LOCK_FILE = ".hpml-report.lock"


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``hpml report`` (the CLI wires them in with one call)."""
    parser.add_argument("paths", nargs="*", type=argtypes.path, metavar="PATH",
                        help="pytest-benchmark JSON files, convergence records or folders of them "
                             "(default: everything under --storage)")
    parser.add_argument("--storage", type=argtypes.path, default=Path(".benchmarks"), metavar="DIR",
                        help="pytest-benchmark storage to read when no PATH is given (default: .benchmarks)")
    parser.add_argument("--out", type=argtypes.path, default=Path("hpml-report"), metavar="DIR",
                        help="folder to write index.md, index.html and charts/ to (default: hpml-report)")
    parser.add_argument("--config", type=argtypes.path, metavar="PYPROJECT",
                        help="pyproject.toml whose [tool.hpml.gate] says which rows are gated, for the trend "
                             "(default: nearest above cwd)")
    parser.add_argument("--markdown", type=argtypes.path, metavar="FILE",
                        help="also write the at-a-glance part as GitHub Markdown (appended to $GITHUB_STEP_SUMMARY "
                             "when that is set)")


def run_report(args: argparse.Namespace) -> int:
    """Write the report; returns 0.  Raises HpmlError when there is nothing usable to report."""
    paths = list(args.paths) or [args.storage]
    markdown = getattr(args, "markdown", None)
    check_markdown_path(markdown)
    if not args.paths and not args.storage.is_dir():
        raise HpmlError(f"{args.storage}: no benchmark storage here; {HOW_TO_RUN}, or pass PATHs")
    inputs = discover(paths, explicit=[p for p in args.paths if p.is_file()])
    if not inputs.runs:
        why = f" ({len(inputs.skipped)} skipped, e.g. {inputs.skipped[0]})" if inputs.skipped else ""
        raise HpmlError(f"no usable pytest-benchmark run file in {', '.join(map(str, paths))}{why}; {HOW_TO_RUN}")
    for reason in inputs.skipped:  # stdout: the report goes on, and lists them too
        print(f"hpml report: skipped {reason}")
    from hpml.gate.config import load_gate_config

    config = load_gate_config(getattr(args, "config", None))
    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise HpmlError(f"--out {out} is a file; pass a folder")
    check_writable_dir(out, "--out")  # read-only: exit 2 before any chart is drawn
    try:
        charts = write_report(out, inputs, ", ".join(map(str, paths)), config)
    except OSError as exc:  # a full disk while writing: the files there before are intact (atomic writes)
        raise RunFailed(f"could not write the report into {out}: {os_error(exc)}") from None
    if markdown is not None or os.environ.get(STEP_SUMMARY_ENV):
        from hpml.report.glance_markdown import glance_markdown

        write_markdown(markdown, glance_markdown(inputs))
    print(f"hpml report: wrote {out / 'index.md'}, {out / 'index.html'} and {len(charts)} chart(s) "
          f"from {len(inputs.runs)} run(s)")
    return 0


def write_report(out: Path, inputs, source: str, config) -> list[str]:
    """Charts, index.md and index.html into ``out``; returns the chart file names."""
    from hpml.report.rows import CHARTS
    from hpml.report.build import OLD_CHART_FILE, build_document  # matplotlib: only when a report is written
    from hpml.report.render import to_html, to_markdown

    with open(out / LOCK_FILE, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second report into this folder waits here
        fresh = Path(tempfile.mkdtemp(prefix=f".{CHARTS}.", dir=out))
        try:
            doc = build_document(inputs, fresh, source, base=Path.cwd(), config=config)
            for chart in fresh.iterdir():
                chart.chmod(0o644)
            fresh.chmod(0o755)
            old = out / CHARTS
            if old.exists():  # swap the whole folder: no chart of an earlier report survives
                trash = Path(tempfile.mkdtemp(prefix=f".{CHARTS}.old.", dir=out))
                os.replace(old, trash / CHARTS)
                os.replace(fresh, old)
                shutil.rmtree(trash, ignore_errors=True)
            else:
                os.replace(fresh, old)
        finally:
            shutil.rmtree(fresh, ignore_errors=True)
        write_text_atomic(out / "index.md", to_markdown(doc))
        write_text_atomic(out / "index.html", to_html(doc))
        for stale in out.iterdir():  # charts that reports before charts/ wrote next to index.md
            if OLD_CHART_FILE.match(stale.name):
                stale.unlink()
        return sorted(p.name for p in (out / CHARTS).iterdir())

