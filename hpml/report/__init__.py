"""Benchmark reports: ``hpml report`` (Markdown, HTML, PNG charts in ``charts/``).

* :mod:`hpml.results.schema` -- reading and validating runs and convergence records;
* :mod:`hpml.report.paired` -- each row's speedup: the paired estimate and interval, or the old ratio;
* :mod:`hpml.report.build` -- the sections: heatmaps, what to use, trend, details; which charts to draw;
* :mod:`hpml.report.charts` -- matplotlib charts (imported only when drawing);
* :mod:`hpml.report.render` -- the document model, Markdown and HTML writers;
* :mod:`hpml.report.command` -- argparse wiring: :func:`add_report_arguments`, :func:`run_report`;
* :mod:`hpml.report.browser` -- headless Chromium over the DevTools pipe (browser test, screenshots);
* :mod:`hpml.report.screenshots` -- ``python -m hpml.report.screenshots STORAGE DOCS``.
"""

from hpml.report.command import add_report_arguments, run_report

__all__ = ["add_report_arguments", "run_report"]
