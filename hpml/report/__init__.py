"""Benchmark reports: ``hpml report`` (Markdown, HTML, PNG charts in ``charts/``).

* :mod:`hpml.report.speedups` -- each row's speedup: the paired estimate and interval, or the old ratio;
* :mod:`hpml.report.build` -- the sections: heatmaps, what to use, trend, details; which charts to draw;
* :mod:`hpml.report.charts` -- matplotlib charts (imported only when drawing);
* :mod:`hpml.report.render` -- the document model, Markdown and HTML writers;
* :mod:`hpml.report.command` -- argparse wiring: :func:`add_report_arguments`, :func:`run_report`;
* :mod:`hpml.report.browser` -- headless Chromium over the DevTools pipe (browser test, screenshots);

Runs and convergence records are read through :mod:`hpml.results.schema`.  Of the gate,
the report reads only which rows are gated (:mod:`hpml.gate.config`), and nothing of the
report is imported by the gate.  The names below load on first use.
"""

from typing import Any

__all__ = ["add_report_arguments", "run_report"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from hpml.report import command

        return getattr(command, name)
    raise AttributeError(f"module 'hpml.report' has no attribute {name!r}")
